"""What both regularizers produce: samples on a regular grid of stream time, with a missing mask.

Shared by :mod:`streamstage.signal.timing` (regular-rate streams) and :mod:`streamstage.signal.interpolate`
(irregular ones), together with the counters they keep and the checks their saved state goes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from streamstage.errors import ResumeError
from streamstage.signal._state import restored_value

ON_SLOT = 1e-6
"""A sample within this fraction of a period of a slot is on it (float rounding of stamps)."""


@dataclass(frozen=True)
class RegularChunk:
    """Samples on the regular grid, with the per-value missing mask the signal path takes."""

    samples: np.ndarray
    """``(m, n_channels)`` float64, in the stream's units; NaN where no real value is."""
    missing: np.ndarray
    """``(m, n_channels)`` bool: True in slots no real sample filled, and where the source itself sent NaN."""
    times: np.ndarray
    """``(m,)`` float64: stream time of each slot (grid time: anchor + index / sfreq within a segment)."""
    segment_starts: tuple[int, ...] = ()
    """Rows where a new segment (a clock reset) begins; that row is the NaN marker slot."""

    def __len__(self) -> int:
        return len(self.times)

    @property
    def empty_slots(self) -> np.ndarray:
        """``(m,)`` bool: slots without any real value (gaps, drift fills, reset markers)."""
        return self.missing.all(axis=1)


@dataclass
class TimingCounters:
    """What the regularizer did, for the night's report: honest numbers about the input."""

    samples_in: int = 0
    samples_out: int = 0
    filled: int = 0
    """NaN slots standing for samples a gap lost."""
    drift_filled: int = 0
    """NaN slots inserted because the stream ran slower than its nominal rate."""
    dropped: int = 0
    """Samples discarded: the stream ran faster than nominal, or the timestamp was not a number."""
    gaps: int = 0
    resets: int = 0


class SlotWriter:
    """One chunk's output, as runs of consecutive grid slots: copied input rows, NaN slots or values."""

    def __init__(self, n_channels: int) -> None:
        self.n_channels = n_channels
        self._runs: list[tuple[float, int, list[int] | range | np.ndarray]] = []
        self._starts: list[int] = []
        self._length = 0

    def mark_segment(self) -> None:
        self._starts.append(self._length)

    def add(self, anchor_t: float, slot: int, rows: list[int]) -> None:
        """Slots ``slot, slot+1, ...`` copying input ``rows`` (-1: a NaN slot)."""
        if self._runs:
            last_anchor, last_slot, last_rows = self._runs[-1]
            if isinstance(last_rows, list) and last_anchor == anchor_t and last_slot + len(last_rows) == slot:
                last_rows.extend(rows)
                self._length += len(rows)
                return
        self._runs.append((anchor_t, slot, list(rows)))
        self._length += len(rows)

    def add_rows(self, anchor_t: float, slot: int, start_row: int, stop_row: int) -> None:
        """Slots ``slot, slot+1, ...`` copying input rows ``start_row .. stop_row - 1`` (a run on time)."""
        self._runs.append((anchor_t, slot, range(start_row, stop_row)))
        self._length += stop_row - start_row

    def add_values(self, anchor_t: float, slot: int, values: np.ndarray) -> None:
        """Slots ``slot, slot+1, ...`` holding computed ``values`` (NaN rows are missing)."""
        self._runs.append((anchor_t, slot, values))
        self._length += len(values)

    def chunk(self, period_s: float, data: np.ndarray | None = None) -> RegularChunk:
        """The chunk, copying rows of the input ``data`` where :meth:`add` asked for them."""
        samples, times = [np.empty((0, self.n_channels))], [np.empty(0)]
        for anchor_t, slot, content in self._runs:
            if isinstance(content, range):
                assert data is not None, "rows to copy need the input chunk"
                block = data[content.start : content.stop]
            elif isinstance(content, list):
                assert data is not None, "rows to copy need the input chunk"
                rows = np.asarray(content, dtype=np.intp)
                block = np.full((len(rows), self.n_channels), np.nan)
                block[rows >= 0] = data[rows[rows >= 0]]
            else:
                block = content
            samples.append(block)
            times.append(anchor_t + np.arange(slot, slot + len(block)) * period_s)
        values = np.concatenate(samples)
        return RegularChunk(values, np.isnan(values), np.concatenate(times), tuple(self._starts))


def checked_chunk(
    samples: np.ndarray, timestamps: np.ndarray, n_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, n_channels)`` float64 samples and ``(n,)`` float64 timestamps, or ValueError (a caller bug)."""
    data = np.asarray(samples, dtype=np.float64)
    stamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != n_channels or len(data) != len(stamps):
        raise ValueError(
            f"expected ({len(stamps)}, {n_channels}) samples for {len(stamps)} timestamps, got {data.shape}"
        )
    return data, stamps


def check_same_settings(state: Mapping[str, Any], **settings: float) -> None:
    """Refuse a saved state taken on a stream of another rate or channel count."""
    for key, expected in settings.items():
        saved = restored_value(state, key, type(expected))
        if saved != expected:
            raise ResumeError(
                f"saved timing state has {key}={saved!r} but this stream has {key}={expected!r}; "
                "resume on the same stream."
            )


def restored_counters(state: Mapping[str, Any]) -> TimingCounters:
    """The counters saved in ``state["counters"]``."""
    saved = state.get("counters", {})
    return TimingCounters(**{key: restored_value(saved, key, int) for key in asdict(TimingCounters())})
