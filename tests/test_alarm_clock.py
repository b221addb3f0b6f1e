"""Durations, times of day and the stream-to-wall clock the alarm runs on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.alarm import ClockMap, next_occurrence, parse_clock_time, parse_duration_s
from streamstage.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("45 min", 2700),
        ("1h", 3600),
        ("90s", 90),
        ("30", 1800),
        (30, 1800),
        (2.5, 150),
        ("1h30m", 5400),
        ("1 hour 15 minutes", 4500),
        (" 20 MIN ", 1200),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30x", "-5m", "0", "m30", "1h 30", True, [30]])
def test_bad_durations_name_the_option(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^--window: "):
        parse_duration_s(text, "--window")  # type: ignore[arg-type]


def test_zero_and_unit_rules_are_opt_in() -> None:
    assert parse_duration_s("0", allow_zero=True) == 0
    assert parse_duration_s("5s", plain_minutes=False) == 5
    with pytest.raises(ConfigError, match="give 5 a unit"):
        parse_duration_s(5, "hooks[0].timeout", plain_minutes=False)


@settings(max_examples=30, deadline=None)
@given(hours=st.integers(0, 12), minutes=st.integers(0, 59), seconds=st.integers(0, 59))
def test_compound_durations_add_up(hours: int, minutes: int, seconds: int) -> None:
    text = f"{hours}h {minutes}min {seconds}s"
    assert parse_duration_s(text, allow_zero=True) == hours * 3600 + minutes * 60 + seconds


@pytest.mark.parametrize(
    ("text", "expected"), [("07:00", time(7)), ("7:05", time(7, 5)), ("23:59:30", time(23, 59, 30))]
)
def test_clock_times(text: str, expected: time) -> None:
    assert parse_clock_time(text) == expected


@pytest.mark.parametrize("text", ["7", "24:00", "07:60", "7am", "", "07-00"])
def test_bad_clock_times(text: str) -> None:
    with pytest.raises(ConfigError, match="--alarm"):
        parse_clock_time(text, "--alarm")


def test_next_occurrence_crosses_midnight() -> None:
    evening = datetime(2024, 5, 1, 23, 10, tzinfo=timezone.utc)
    assert next_occurrence(evening, time(7)) == datetime(2024, 5, 2, 7, 0, tzinfo=timezone.utc)
    assert next_occurrence(evening, time(23, 30)) == datetime(2024, 5, 1, 23, 30, tzinfo=timezone.utc)
    # exactly now is not "next": an alarm set for the start time belongs to the next day
    assert next_occurrence(evening, time(23, 10)) == evening + timedelta(days=1)


def test_replay_clock_maps_file_seconds_to_the_night() -> None:
    clock = ClockMap.from_start_clock("23:10", stream_start_s=100.0, day=date(2024, 5, 1))
    assert clock.wall_start.tzinfo is not None
    assert clock.wall(100.0) == clock.wall_start
    assert clock.wall(100.0 + 7 * 3600 + 50 * 60).replace(tzinfo=None) == datetime(2024, 5, 2, 7, 0)
    assert clock.next_occurrence(time(7)) == clock.wall(100.0 + 7 * 3600 + 50 * 60)
    assert clock.stream(clock.wall(12345.5)) == pytest.approx(12345.5)


def test_start_clock_accepts_a_full_iso_datetime() -> None:
    clock = ClockMap.from_start_clock("2024-05-01T22:45:00+02:00")
    assert clock.wall_start == datetime(2024, 5, 1, 22, 45, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(ConfigError, match="--start-clock"):
        ClockMap.from_start_clock("2024-13-01T22:45")


def test_live_clock_anchors_lsl_time_to_now_and_round_trips() -> None:
    now = datetime(2024, 5, 1, 22, 0, tzinfo=timezone.utc)
    clock = ClockMap.live(stream_start_s=51234.25, now=now)
    assert clock.wall(51234.25 + 60) == now + timedelta(minutes=1)
    assert ClockMap.from_dict(clock.to_dict()) == clock
