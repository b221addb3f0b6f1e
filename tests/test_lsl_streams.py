"""``streamstage streams`` lists what LSL can see, as a table or as tab-separated lines when piped."""

from __future__ import annotations

import argparse
import uuid

import pylsl

from streamstage.commands import streams


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    streams.register(parser.add_subparsers())
    return parser.parse_args(["streams", *argv])


def test_lists_a_visible_stream(capsys) -> None:
    name = f"test-streams-{uuid.uuid4().hex[:10]}"
    _outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 4, 256.0, "float32", f"sid-{name}"))
    args = parse("--timeout", "1")
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == list(streams.COLUMNS)  # captured output is not a terminal: plain rows
    row = next(line.split("\t") for line in lines if line.startswith(name))
    assert row[:5] == [name, "EEG", "4", "256 Hz", f"sid-{name}"] and row[5]


def test_says_so_when_nothing_is_visible(capsys, monkeypatch) -> None:
    monkeypatch.setattr(streams, "list_streams", lambda wait_s: [])
    args = parse("--timeout", "0.2")
    assert args.handler(args) == 0
    assert "no LSL stream seen within 0.2 s" in capsys.readouterr().err


def test_a_terminal_gets_a_table(capsys, monkeypatch) -> None:
    name = f"tbl-[b]{uuid.uuid4().hex[:4]}"  # brackets stay text, not Rich markup
    _outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 2, 128.0, "float32", f"sid-{name}"))
    monkeypatch.setattr(streams.sys.stdout, "isatty", lambda: True)
    args = parse("--timeout", "1")
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "LSL streams" in out and name in out and "128 Hz" in out
