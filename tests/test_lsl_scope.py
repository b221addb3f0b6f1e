"""LSL scope: machine by default, widened on request, a user's LSLAPICFG respected, loopback for demos.

liblsl keeps the first configuration it reads for the life of the process, so these tests catch what
configure_lsl hands to pylsl instead of letting it reach liblsl (the test process stays loopback-only).
"""

from __future__ import annotations

import argparse
import os

import pylsl
import pytest

from streamstage.errors import ConfigError
from streamstage.lsl import scope
from streamstage.lsl.options import add_scope_argument, add_stream_arguments


@pytest.fixture
def handed_to_lsl(monkeypatch) -> list[str]:
    """Fresh module state, no LSLAPICFG, and a record of the configuration texts given to liblsl."""
    given: list[str] = []
    monkeypatch.setattr(scope, "_applied", None)
    monkeypatch.delenv("LSLAPICFG", raising=False)
    monkeypatch.setattr(pylsl, "set_config_content", given.append)
    return given


def test_default_scope_is_this_machine(handed_to_lsl: list[str]) -> None:
    assert scope.configure_lsl() == "LSL scope: machine"
    assert len(handed_to_lsl) == 1
    assert "ResolveScope = machine" in handed_to_lsl[0]


@pytest.mark.parametrize("name", ["link", "site"])
def test_scope_can_be_widened(handed_to_lsl: list[str], name: str) -> None:
    scope.configure_lsl(name)
    assert f"ResolveScope = {name}" in handed_to_lsl[0]


def test_user_lslapicfg_is_respected(handed_to_lsl: list[str], monkeypatch, tmp_path) -> None:
    config = tmp_path / "lsl_api.cfg"
    config.write_text("[multicast]\nResolveScope = link\n")
    monkeypatch.setenv("LSLAPICFG", str(config))
    summary = scope.configure_lsl("site")
    assert str(config) in summary and "--lsl-scope site ignored" in summary
    assert handed_to_lsl == []


def test_missing_lslapicfg_file_is_a_clear_error(handed_to_lsl: list[str], monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LSLAPICFG", str(tmp_path / "nope.cfg"))
    with pytest.raises(ConfigError, match=r"LSLAPICFG points at .*nope\.cfg"):
        scope.configure_lsl()


def test_loopback_only_uses_the_bundled_config(handed_to_lsl: list[str], monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LSLAPICFG", str(tmp_path / "whatever.cfg"))  # the demo's promise wins
    scope.configure_lsl(loopback_only=True)
    assert handed_to_lsl == [scope.LOOPBACK_CFG.read_text()]
    assert "MachineAddresses = {127.0.0.1}" in handed_to_lsl[0]


def test_a_second_different_configuration_is_refused(handed_to_lsl: list[str]) -> None:
    scope.configure_lsl("machine")
    scope.configure_lsl("machine")  # the same again is harmless
    with pytest.raises(ConfigError, match="already configured"):
        scope.configure_lsl("site")
    assert len(handed_to_lsl) == 1


def test_unknown_scope_is_refused(handed_to_lsl: list[str]) -> None:
    with pytest.raises(ConfigError, match="unknown LSL scope 'galaxy'"):
        scope.configure_lsl("galaxy")


def test_old_liblsl_gets_a_config_file_through_lslapicfg(monkeypatch) -> None:
    def unavailable(content: str) -> None:
        raise NotImplementedError

    monkeypatch.setattr(scope, "_applied", None)
    monkeypatch.delenv("LSLAPICFG", raising=False)
    monkeypatch.setattr(pylsl, "set_config_content", unavailable)
    scope.configure_lsl("link")
    path = os.environ["LSLAPICFG"]  # monkeypatch puts the test process's own value back afterwards
    try:
        with open(path) as file:
            assert "ResolveScope = link" in file.read()
    finally:
        os.remove(path)


def test_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    add_stream_arguments(parser)
    args = parser.parse_args(["--source-id", "muse-1", "--lost-after", "2.5", "--lsl-scope", "link"])
    assert (args.source_id, args.lost_after, args.lsl_scope, args.name, args.type) == (
        "muse-1",
        2.5,
        "link",
        None,
        None,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--lost-after", "-1"])
    scoped = argparse.ArgumentParser()
    add_scope_argument(scoped)
    with pytest.raises(SystemExit):
        scoped.parse_args(["--lsl-scope", "planet"])
