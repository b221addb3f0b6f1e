"""TOML configuration merged with flags: flags win, and every mistake names its key."""

from __future__ import annotations

import argparse
import tempfile
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.config import Settings, StreamSettings, add_arguments, load_config, resolve_settings
from streamstage.errors import ConfigError
from streamstage.hooks import build_hook

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "streamstage.toml"


def parser() -> argparse.ArgumentParser:
    """Stand-in for ``streamstage run``: its stream flags (default None) plus ours."""
    run = argparse.ArgumentParser(prog="streamstage run")
    for flag in ("--name", "--type", "--channel", "--reference", "--out"):
        run.add_argument(flag)
    add_arguments(run)
    return run


def settings_for(argv: list[str], toml: str | None = None, folder: Path | None = None) -> Settings:
    if toml is not None:
        assert folder is not None
        path = folder / "streamstage.toml"
        path.write_text(toml)
        argv = [*argv, "--config", str(path)]
    return resolve_settings(vars(parser().parse_args(argv)))


def test_the_example_config_is_complete_and_its_hooks_build() -> None:
    resolved = resolve_settings(vars(parser().parse_args(["--config", str(EXAMPLE)])))
    assert resolved.stream == StreamSettings(
        name="Muse-EEG", type="EEG", channel=("AF7",), reference="TP9"
    )  # no `out`: each night gets a new dated folder unless one is named
    alarm = resolved.alarm
    assert alarm is not None
    assert (alarm.time, alarm.window_s, alarm.light_stages, alarm.consecutive) == (time(7), 1800, (1, 2), 2)
    assert (alarm.min_prob, alarm.min_sleep_s, alarm.snooze_s) == (0.6, 1200, 540)
    assert resolved.sleep_onset_epochs == 3 and resolved.start_clock is None
    assert [(h.name, h.kind) for h in resolved.hooks] == [
        ("sound", "command"),
        ("journal", "command"),
        ("home-assistant", "url"),
    ]
    assert resolved.hooks[0].target == (str(EXAMPLE.parent / "hooks" / "play_sound.sh"),)
    assert resolved.hooks[0].timeout_s == 60 and resolved.hooks[2].retries == 3
    assert all(build_hook(spec).name == spec.name for spec in resolved.hooks)


def test_flags_win_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    toml = (
        '[stream]\nchannel = "AF7"\nname = "Muse"\n[alarm]\ntime = "07:00"\nwindow = "30m"\nmin_prob = 0.7\n'
    )
    resolved = settings_for(["--channel", "Fpz", "--window", "45 min", "--alarm", "06:30"], toml, tmp_path)
    assert resolved.stream == StreamSettings(name="Muse", channel=("Fpz",))
    assert resolved.alarm is not None
    assert (resolved.alarm.time, resolved.alarm.window_s, resolved.alarm.min_prob) == (time(6, 30), 2700, 0.7)
    assert resolved.alarm.consecutive == 2  # neither: the documented default


def test_no_alarm_time_means_no_alarm(tmp_path: Path) -> None:
    assert settings_for(["--window", "20m"]).alarm is None
    assert settings_for([], '[alarm]\nwindow = "20m"\n', tmp_path).alarm is None


def test_hook_flags_are_added_to_the_file_hooks(tmp_path: Path) -> None:
    toml = '[[hooks]]\nevents = ["alarm"]\nurl = "http://ha.local:8123/api/webhook/x"\n'
    argv = [
        "--hook",
        "alarm,sleep_onset=notify-send 'Wake up' --urgency=critical",
        "--hook",
        "stage_change=py:my_lights.hooks:on_stage",
        "--hook",
        "epoch=ep:hue",
        "--hook",
        "signal_lost=https://example.org/hook",
    ]
    hooks = settings_for(argv, toml, tmp_path).hooks
    assert [(h.kind, h.events) for h in hooks] == [
        ("url", ("alarm",)),
        ("command", ("alarm", "sleep_onset")),
        ("callable", ("stage_change",)),
        ("entry_point", ("epoch",)),
        ("url", ("signal_lost",)),
    ]
    assert hooks[1].target == ("notify-send", "Wake up", "--urgency=critical")
    assert (hooks[2].target, hooks[3].target) == ("my_lights.hooks:on_stage", "hue")
    assert hooks[0].timeout_s == 10 and hooks[0].retries == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[alrm]\ntime = '07:00'\n", r"unknown table \[alrm\]"),
        ("[alarm]\nwindw = '30m'\n", r"unknown key alarm\.windw"),
        ("[alarm]\ntime = '07:00'\nconsecutive = 'two'\n", r"alarm\.consecutive must be an integer"),
        ("[alarm]\ntime = '07:00'\nconsecutive = true\n", r"alarm\.consecutive must be an integer"),
        ("[alarm]\ntime = '07:00'\nconsecutive = 0\n", r"alarm\.consecutive must be at least 1"),
        ("[alarm]\ntime = '7 o clock'\n", r"alarm\.time: expected a 24-hour time"),
        ("[alarm]\ntime = 700\n", r"alarm\.time must be a string"),
        ("[alarm]\ntime = '07:00'\nwindow = 'half an hour'\n", r"alarm\.window: cannot read"),
        ("[alarm]\ntime = '07:00'\nlight_stages = ['N2', 'W']\n", r"alarm\.light_stages: 'W' is not a sleep"),
        ("[alarm]\ntime = '07:00'\nmin_prob = 1.5\n", r"alarm\.min_prob: must be in \(0, 1\]"),
        ("[stream]\nchannel = 3\n", r"stream\.channel must be a string"),
        ("[events]\nsleep_onset_epochs = 0\n", r"events\.sleep_onset_epochs must be at least 1"),
        ("[clock]\nstart_clock = '25:00'\n", r"--start-clock: '25:00' is not a time of day"),
        (
            "[[hooks]]\nevents = ['alarm']\nurl = 'http://x'\ncommand = ['true']\n",
            r"hooks\[0\]: give exactly one",
        ),
        ("[[hooks]]\nurl = 'http://x'\n", r"hooks\[0\]\.events is missing"),
        (
            "[[hooks]]\nevents = ['alarm', 'wake']\nurl = 'http://x'\n",
            r"hooks\[0\]\.events: unknown event 'wake'",
        ),
        (
            "[[hooks]]\nevents = ['alarm']\nurl = 'http://x'\ntimeout = 5\n",
            r"hooks\[0\]\.timeout: give 5 a unit",
        ),
        (
            "[[hooks]]\nevents = ['alarm']\nurl = 'http://x'\nretries = -1\n",
            r"hooks\[0\]\.retries must be between",
        ),
        ("[[hooks]]\nevents = ['alarm']\nurl = 'http://x'\nsecret = 1\n", r"unknown key hooks\.secret"),
        ("[hooks]\nurl = 'http://x'\n", r"hooks must be an array of tables"),
        ("[alarm\ntime = '07:00'\n", r"is not valid TOML"),
    ],
)
def test_mistakes_in_the_file_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_for([], toml, tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window", "soon"], r"^--window: cannot read 'soon'"),
        (["--alarm", "7"], r"^--alarm: expected a 24-hour time"),
        (["--alarm", "07:00", "--alarm-light-stages", "N2,deep"], r"--alarm-light-stages: 'deep'"),
        (["--alarm", "07:00", "--alarm-consecutive", "0"], r"--alarm-consecutive must be at least 1"),
        (["--hook", "alarm"], r"--hook 'alarm': write EVENTS=TARGET"),
        (["--hook", "wake=true"], r"unknown event 'wake'"),
    ],
)
def test_mistakes_in_flags_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_for(argv)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; check the --config path"):
        load_config(tmp_path / "nope.toml")


durations = st.one_of(st.none(), st.integers(1, 120))


@settings(max_examples=30, deadline=None)
@given(file_min=durations, flag_min=durations, with_time_in_file=st.booleans())
def test_precedence_holds_for_any_combination(
    file_min: int | None, flag_min: int | None, with_time_in_file: bool
) -> None:
    toml = ('time = "06:45"\n' if with_time_in_file else "") + (f"window = {file_min}\n" if file_min else "")
    argv = [] if with_time_in_file else ["--alarm", "06:45"]
    argv += ["--window", f"{flag_min}m"] if flag_min else []
    with tempfile.TemporaryDirectory() as folder:
        resolved = settings_for(argv, "[alarm]\n" + toml, Path(folder))
    assert resolved.alarm is not None and resolved.alarm.time == time(6, 45)
    expected_min = flag_min or file_min or 30
    assert resolved.alarm.window_s == expected_min * 60
