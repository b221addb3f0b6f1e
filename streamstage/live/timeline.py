"""One continuous time axis for a whole night, whatever the stream's clock does.

The signal path counts samples: its epoch ``k`` starts ``30 k`` seconds after the first sample. That is
only true if every second of the night reaches it, staged or marked missing. The regularizer fills short
gaps itself; what it cannot bridge (a gap longer than its ``max_gap_s``, a clock that jumped backwards or
forwards, a stream reopened after a crash or with another layout) starts a new *segment*, and
:class:`NightTimeline` decides how long the break really lasted and how the new segment's stream clock
maps onto the night:

* *night seconds* are the first segment's stream clock, extended: ``night = stream + offset``, with one
  offset per segment (0 for the first). The signal path, wall-clock times, the alarm and the events run on
  night seconds; the hypnogram's ``start_s`` and the LSL outlets get each epoch back in the stream clock
  of the segment it starts in, so nothing written is shifted by an earlier break.
* a break's length is the stream clock's gap when the computer's own clock confirms it (within a factor
  of two plus a minute, scaled by the pace the stream ran at, so a replay at 30x is judged at 30x);
  otherwise (a clock reset either way, a reboot between crash and resume) the computer's clock decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_PACE_SPAN_S = 5.0
"""Seconds of arrival time a segment needs before its pace (stream s per wall s) is measured."""
CONFIRM_FACTOR = 2.0
CONFIRM_SLACK_S = 60.0
MAX_SEGMENTS = 16
"""Offsets kept for epochs still to be written; older segments are long since staged."""


@dataclass(frozen=True)
class Bridge:
    """How one break was bridged: its length in night seconds and which clock measured it."""

    gap_s: float
    stream_gap_s: float
    wall_gap_s: float
    measured_by: str
    """``"stream"`` (the stream clock, confirmed by the computer's) or ``"wall"`` (a clock reset)."""


class NightTimeline:
    """Night seconds <-> each segment's stream clock, and the length of every break.

    ``now`` is the computer's wall clock in seconds (injectable, so tests need not wait out an outage).
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self.offset_s = 0.0
        self._segments: list[tuple[float, float]] = [(float("-inf"), 0.0)]
        self.pace = 1.0
        self._pace_from: tuple[float, float] | None = None  # (stream s, wall s) at the segment's start
        self.last_stream_s: float | None = None
        self.last_wall_s: float | None = None

    def observe(self, last_stream_s: float) -> None:
        """The newest slot handed to the signal path (stream clock), as it arrived."""
        wall = self._now()
        if self._pace_from is None or wall == self._pace_from[1]:
            self._pace_from = (last_stream_s, wall)  # a burst that arrived at once counts from its end
        else:
            stream0, wall0 = self._pace_from
            if wall - wall0 >= MIN_PACE_SPAN_S and last_stream_s > stream0:
                self.pace = (last_stream_s - stream0) / (wall - wall0)
        self.last_stream_s, self.last_wall_s = last_stream_s, wall

    def bridge(
        self, expected_stream_s: float, new_stream_s: float, night_next_s: float, arrived_s: float = 0.0
    ) -> Bridge:
        """Bridge a break: the slot due at ``expected_stream_s`` comes at ``new_stream_s`` (maybe another
        clock), in a chunk of ``arrived_s`` stream seconds that has just arrived. Returns its length; the new
        segment's offset places ``new_stream_s`` at night time ``night_next_s + gap_s``, and the gap itself
        belongs to the new segment."""
        stream_gap = new_stream_s - expected_stream_s
        elapsed = 0.0 if self.last_wall_s is None else self._now() - self.last_wall_s
        wall_gap = max(0.0, elapsed * self.pace - arrived_s)
        confirmed = (
            wall_gap / CONFIRM_FACTOR - CONFIRM_SLACK_S * self.pace
            <= stream_gap
            <= wall_gap * CONFIRM_FACTOR + CONFIRM_SLACK_S * self.pace
        )
        if self.last_wall_s is None or (stream_gap >= 0 and confirmed):
            bridge = Bridge(max(stream_gap, 0.0), stream_gap, wall_gap, "stream")
        else:
            bridge = Bridge(wall_gap, stream_gap, wall_gap, "wall")
        self.offset_s = night_next_s + bridge.gap_s - new_stream_s
        self._segments = [*self._segments[-(MAX_SEGMENTS - 1) :], (night_next_s, self.offset_s)]
        self._pace_from = None
        return bridge

    def to_stream(self, night_s: float) -> float:
        """The stream-clock time of night time ``night_s``, in the segment that holds it."""
        offset = next(o for start, o in reversed(self._segments) if start <= night_s)
        return night_s - offset

    def state_dict(self) -> dict[str, Any]:
        return {
            "offset_s": self.offset_s,
            "segments": [[start, offset] for start, offset in self._segments[1:]],
            "pace": self.pace,
            "last_stream_s": self.last_stream_s,
            "last_wall_s": self.last_wall_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.offset_s = float(state["offset_s"])
        self._segments = [(float("-inf"), 0.0), *((float(s), float(o)) for s, o in state["segments"])]
        self.pace = float(state["pace"])
        self.last_stream_s = None if state["last_stream_s"] is None else float(state["last_stream_s"])
        self.last_wall_s = None if state["last_wall_s"] is None else float(state["last_wall_s"])
        self._pace_from = None
