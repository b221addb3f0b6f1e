"""Stream time to wall-clock time, and the small text formats users type for times and durations.

The alarm rule runs on the stream's clock mapped to the wall clock, not on ``datetime.now()``: a live night
maps LSL time to now, while a replay at speed 100 with ``--start-clock 23:10`` maps file seconds to a night
that starts at 23:10, so the whole alarm logic can be exercised in seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from streamstage.errors import ConfigError

_UNIT_S: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")
_DURATION_HINT = "use e.g. 30m, 45 min, 1h, 90s or plain minutes"
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_duration_s(
    text: str | float, option: str = "duration", *, plain_minutes: bool = True, allow_zero: bool = False
) -> float:
    """Seconds from ``"30m"``, ``"45 min"``, ``"1h"``, ``"1h30m"``, ``"90s"`` or plain minutes (``"30"``, 30).

    Plain numbers are minutes because every duration a sleeper sets (window, snooze, time asleep) is
    naturally thought of in minutes; where that would surprise (a hook's timeout), ``plain_minutes=False``
    asks for a unit instead of guessing.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ConfigError(f"{option}: expected a duration, got {text!r}; {_DURATION_HINT}.")
    plain = isinstance(text, int | float) or re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text) is not None
    if plain and not plain_minutes:
        raise ConfigError(f"{option}: give {text!r} a unit, e.g. {text}s or {text}m.")
    seconds = float(text) * 60.0 if plain else _parse_duration_text(str(text), option)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f"{option}: the duration must be positive, got {text!r}.")
    return seconds


def _parse_duration_text(text: str, option: str) -> float:
    cleaned = text.strip().lower()
    if not cleaned:
        raise ConfigError(f"{option}: the duration is empty; {_DURATION_HINT}.")
    total, position = 0.0, 0
    while position < len(cleaned):
        match = _PART.match(cleaned, position)
        if match is None or match.group(2) not in _UNIT_S:
            raise ConfigError(f"{option}: cannot read {text!r} as a duration; {_DURATION_HINT}.")
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    return total


def parse_clock_time(text: str, option: str = "time") -> time:
    """A time of day from ``"07:00"``, ``"7:00"`` or ``"06:45:30"`` (24-hour clock)."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{option}: expected a 24-hour time such as 07:00, got {text!r}.")
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ConfigError(f"{option}: {text!r} is not a time of day; use HH:MM between 00:00 and 23:59.")
    return time(hour, minute, second)


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone: a naive one is taken as local time (comparing naive with aware fails)."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def next_occurrence(after: datetime, at: time) -> datetime:
    """The first ``at`` strictly after ``after`` (crossing midnight when needed), in ``after``'s zone."""
    candidate = datetime.combine(after.date(), at, tzinfo=after.tzinfo)
    return candidate if candidate > after else candidate + timedelta(days=1)


@dataclass(frozen=True)
class ClockMap:
    """Maps stream seconds to wall-clock datetimes from one anchor: the stream time and wall time at start.

    Use :meth:`live` for an LSL stream (anchor = now) and :meth:`from_start_clock` for a replay. Wall times
    are timezone-aware so nights crossing midnight compare correctly.
    """

    stream_start_s: float
    wall_start: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "wall_start", aware(self.wall_start))

    @classmethod
    def live(cls, stream_start_s: float, now: datetime | None = None) -> ClockMap:
        return cls(stream_start_s, aware(now or datetime.now()))

    @classmethod
    def from_start_clock(cls, text: str, stream_start_s: float = 0.0, day: date | None = None) -> ClockMap:
        """A replay anchored at ``text``: ``"23:10"`` on ``day`` (default today) or a full ISO datetime."""
        try:
            wall = datetime.fromisoformat(text) if "T" in text or "-" in text else None
        except ValueError as error:
            raise ConfigError(f"--start-clock: cannot read {text!r}: {error}; use e.g. 23:10.") from error
        if wall is None:
            clock = parse_clock_time(text, "--start-clock")
            wall = datetime.combine(day or date.today(), clock)
        return cls(stream_start_s, wall)

    def wall(self, stream_s: float) -> datetime:
        return self.wall_start + timedelta(seconds=stream_s - self.stream_start_s)

    def stream(self, wall: datetime) -> float:
        return self.stream_start_s + (wall - self.wall_start).total_seconds()

    def next_occurrence(self, at: time) -> datetime:
        """The next ``at`` after the night's start: ``07:00`` from a 23:10 start is tomorrow morning."""
        return next_occurrence(self.wall_start, at)

    def to_dict(self) -> dict[str, Any]:
        return {"stream_start_s": self.stream_start_s, "wall_start": self.wall_start.isoformat()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ClockMap:
        return cls(float(state["stream_start_s"]), datetime.fromisoformat(state["wall_start"]))
