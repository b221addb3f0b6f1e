"""Reading hypnogram.csv (mid-write or after a crash too), summary.txt, report.png, `streamstage report`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from streamstage import STAGES
from streamstage.commands import report as report_command
from streamstage.errors import HypnogramError, InputFileError
from streamstage.output import HYPNOGRAM_COLUMNS
from streamstage.report import read_night, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
START = datetime(2026, 5, 9, 23, 0, tzinfo=timezone.utc)
# 10 min wake, 20 min N2, 6 min REM, 2 min wake, 2 min N1: 40 minutes of 30-s epochs
PREDICTED = [0] * 20 + [2] * 40 + [4] * 12 + [0] * 4 + [1] * 4
TRUTH = [0] * 18 + [1] * 2 + [2] * 40 + [4] * 12 + [0] * 4 + [2] * 4


def csv_row(index: int, stage: int, truth: int | None, quality: str = "good") -> str:
    probs = np.full(len(STAGES), 0.05)
    probs[stage] = 0.8
    wall = (START + timedelta(seconds=30 * index)).isoformat()
    fields = [
        str(index),
        f"{500.0 + 30 * index:.3f}",
        wall,
        STAGES[stage],
        *(f"{p:.5f}" for p in probs),
        quality,
        "12.500",
        "" if truth is None else STAGES[truth],
    ]
    return ",".join(fields) + "\n"


def write_night(folder: Path, stages: list[int], truth: list[int] | None = None, tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [csv_row(i, s, None if truth is None else truth[i]) for i, s in enumerate(stages)]
    (folder / "hypnogram.csv").write_text(",".join(HYPNOGRAM_COLUMNS) + "\n" + "".join(rows) + tail)
    return folder


def test_reads_every_column(tmp_path: Path) -> None:
    night = read_night(write_night(tmp_path, PREDICTED, TRUTH) / "hypnogram.csv")
    assert night.n_epochs == len(PREDICTED)
    assert night.stages.tolist() == PREDICTED
    assert night.truth.tolist() == TRUTH
    assert night.epoch.tolist() == list(range(len(PREDICTED)))
    assert night.epoch_s == 30.0
    assert night.started == START
    assert night.probs[0].tolist() == pytest.approx([0.8, 0.05, 0.05, 0.05, 0.05])
    assert set(night.quality) == {"good"} and np.all(night.latency_ms == 12.5)
    assert not night.dropped_partial_line and night.has_truth


def test_every_cut_through_the_last_line_drops_only_that_line(tmp_path: Path) -> None:
    path = write_night(tmp_path, PREDICTED[:5]) / "hypnogram.csv"
    complete = path.read_bytes()
    last_line_start = complete.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last_line_start + 1, len(complete)):
        path.write_bytes(complete[:cut])
        night = read_night(path)
        assert night.n_epochs == 4 and night.dropped_partial_line, cut
    path.write_bytes(complete + b"\x00" * 16)  # zero-filled tail left by a power cut
    assert read_night(path).n_epochs == 5


def test_missing_and_repeated_epochs(tmp_path: Path) -> None:
    header = ",".join(HYPNOGRAM_COLUMNS) + "\n"
    rows = [csv_row(0, 0, None), csv_row(1, 1, None), csv_row(4, 2, None), csv_row(1, 3, None, "flat")]
    path = tmp_path / "hypnogram.csv"
    path.write_text(header + "".join(rows))
    night = read_night(path)
    assert night.stages.tolist() == [0, 3, -1, -1, 2]  # epoch 1 rewritten after a resume keeps its last row
    assert night.quality == ("good", "flat", "unstaged", "unstaged", "good")
    assert night.n_unstaged == 2
    assert night.start_s.tolist() == [500.0, 530.0, 560.0, 590.0, 620.0]


@pytest.mark.parametrize("content", ["", ",".join(HYPNOGRAM_COLUMNS) + "\n", "epoch,start_s,wa"])
def test_a_night_without_epochs(tmp_path: Path, content: str) -> None:
    (tmp_path / "hypnogram.csv").write_text(content)
    report = write_report(tmp_path)
    assert report.figure_path is None and "no epoch" in (report.note or "")
    assert "No epoch was staged" in (tmp_path / "summary.txt").read_text()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("epoch,stage\n0,W\n", "lacks the column"),
        (",".join(HYPNOGRAM_COLUMNS) + "\n0,1.0,,W\n" + csv_row(1, 2, None), "line 2: expected 12 fields"),
        (
            ",".join(HYPNOGRAM_COLUMNS)
            + "\n"
            + csv_row(0, 2, None).replace(",N2,", ",S2,")
            + csv_row(1, 2, None),
            "line 2: unknown stage 'S2'",
        ),
        (",".join(HYPNOGRAM_COLUMNS) + "\n" + csv_row(0, 2, None) + csv_row(99999, 2, None), "epoch index"),
    ],
)
def test_damaged_files_say_where(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "hypnogram.csv"
    path.write_text(body)
    with pytest.raises(HypnogramError, match=match):
        read_night(path)


def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        read_night(tmp_path / "hypnogram.csv")
    with pytest.raises(InputFileError, match="not a folder"):
        write_report(tmp_path / "no-such-night")


def test_report_with_truth(tmp_path: Path) -> None:
    write_night(tmp_path, PREDICTED, TRUTH, tail="80,2900.0,2026-05")
    report = write_report(tmp_path)
    assert report.figure_path == tmp_path / "report.png"
    assert report.figure_path.read_bytes().startswith(PNG_SIGNATURE)
    assert report.figure_path.stat().st_size > 10_000
    summary = (tmp_path / "summary.txt").read_text()
    assert summary == report.summary
    words = " ".join(summary.split())
    assert "started 2026-05-09 23:00:00+00:00" in words
    assert "epochs 80 x 30 s = 0 h 40 min" in words
    assert "last line of hypnogram.csv was incomplete" in words
    assert "time in bed (min) 40.0 40.0" in words
    assert "sleep onset latency (min) 10.0 9.0" in words
    assert "total sleep time (min) 28.0 29.0" in words
    assert "sleep efficiency (%) 70.0 72.5" in words
    assert "WASO (min) 2.0 2.0" in words
    assert "REM latency (min) 20.0 21.0" in words
    assert "sleep cycles 1 1" in words
    assert "REM 6.0 21.4 6.0 20.7" in words
    # 80 epochs; agreement on 18 W + 40 N2 + 12 REM + 4 W = 74; p_e = (22*24 + 2*4 + 44*40 + 12*12) / 80^2
    p_o, p_e = 74 / 80, (22 * 24 + 2 * 4 + 44 * 40 + 12 * 12) / 80**2
    assert "accuracy 92.5 %" in words
    assert f"Cohen's kappa {(p_o - p_e) / (1 - p_e):.3f}" in words
    # confusion rows (reference) by predicted column: true N1 scored W, the last true N2 epochs scored N1
    assert "W 22 0 0 0 0 N1 2 0 0 0 0 N2 0 4 40 0 0 N3 0 0 0 0 0 REM 0 0 0 0 12" in words
    assert "median 12.5 ms" in words
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_without_truth_has_no_agreement(tmp_path: Path) -> None:
    report = write_report(write_night(tmp_path, PREDICTED))
    assert "Agreement" not in report.summary and "reference" not in report.summary
    assert report.figure_path is not None and report.figure_path.read_bytes().startswith(PNG_SIGNATURE)


def test_report_of_a_twelve_hour_night(tmp_path: Path) -> None:
    cycle = [0] * 10 + [1] * 10 + [2] * 60 + [3] * 60 + [2] * 20 + [4] * 20
    stages = (cycle * 8)[:1440]
    report = write_report(write_night(tmp_path, stages, stages))
    assert "epochs 1440 x 30 s = 12 h 00 min" in " ".join(report.summary.split())
    assert "Cohen's kappa  1.000" in report.summary
    assert report.figure_path is not None and report.figure_path.read_bytes().startswith(PNG_SIGNATURE)


def test_without_matplotlib_the_summary_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    report = write_report(write_night(tmp_path, PREDICTED))
    assert report.figure_path is None
    assert report.note is not None and "matplotlib is not installed" in report.note
    assert (tmp_path / "summary.txt").is_file() and not (tmp_path / "report.png").exists()


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="streamstage")
    report_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_night(tmp_path, PREDICTED, TRUTH)
    assert run_cli(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "total sleep time" in out and f"wrote {tmp_path / 'summary.txt'}, {tmp_path / 'report.png'}" in out
    assert (tmp_path / "report.png").read_bytes().startswith(PNG_SIGNATURE)


def test_cli_quiet_and_without_matplotlib(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    write_night(tmp_path, PREDICTED)
    assert run_cli(["report", "--quiet", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote {tmp_path / 'summary.txt'}"
    assert captured.err.count("\n") == 1 and "matplotlib is not installed" in captured.err
