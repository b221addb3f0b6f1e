"""Irregular-rate streams (nominal rate 0) onto a regular grid, by linear interpolation.

Some bridges declare no nominal rate and stamp each sample as it comes. The signal path still needs a
regular grid, so each slot takes the straight line between the samples either side of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from streamstage.signal._state import restored_array, restored_value
from streamstage.signal.grid import (
    ON_SLOT,
    RegularChunk,
    SlotWriter,
    TimingCounters,
    check_same_settings,
    checked_chunk,
    restored_counters,
)

RUN_WINDOW = 256
"""Samples tried at once after one that needed the per-sample rules (doubling while all are plain)."""


class IrregularResampler:
    """Irregular-rate stream (nominal rate 0) -> grid at ``sfreq_hz`` by linear interpolation.

    A slot takes the straight line between the samples either side of it, so a sample that falls on a slot
    passes exactly. Slots between two samples further apart than ``max_interp_gap_s`` are NaN (a gap);
    time going backwards or jumping past ``max_gap_s`` starts a new segment, as for
    :class:`TimestampRegularizer`. Runs of plain samples are interpolated at once, to the same values;
    ``vectorised=False`` takes every sample by the per-sample rules, the reference for the tests.
    """

    def __init__(
        self,
        n_channels: int,
        sfreq_hz: float,
        *,
        max_interp_gap_s: float = 1.0,
        max_gap_s: float = 600.0,
        vectorised: bool = True,
    ) -> None:
        self.n_channels = n_channels
        self.sfreq_hz = float(sfreq_hz)
        self.period_s = 1.0 / self.sfreq_hz
        self.max_interp_gap_s = max_interp_gap_s
        self.max_gap_s = max_gap_s
        self.counters = TimingCounters()
        self._vectorised = vectorised
        self._started = False
        self._anchor_t = 0.0
        self._next_slot = 0
        self._last_t = 0.0
        self._last_x = np.zeros(n_channels)

    def push(self, samples: np.ndarray, timestamps: np.ndarray) -> RegularChunk:
        """Interpolate one chunk ``(n, n_channels)`` with its ``(n,)`` timestamps onto the grid."""
        data, stamps = checked_chunk(samples, timestamps, self.n_channels)
        out = SlotWriter(self.n_channels)
        row, window = 0, len(stamps)  # all at once, until a sample is not plainly the next one
        while row < len(stamps):
            tried = min(window, len(stamps) - row)
            placed = self._add_run(stamps[row : row + tried], data[row : row + tried], out)
            row += placed
            if placed == tried:
                window = 2 * tried
                continue
            if row < len(stamps):
                self._add(float(stamps[row]), data[row], out)
                row += 1
            window = RUN_WINDOW
        self.counters.samples_in += len(stamps)
        chunk = out.chunk(self.period_s)
        self.counters.samples_out += len(chunk)
        return chunk

    def _add_run(self, stamps: np.ndarray, data: np.ndarray, out: SlotWriter) -> int:
        """Interpolate the leading samples that are each a little later than the one before (finite, no
        gap, no reset) at once; returns how many. Every slot gets the very value :meth:`_add` would give
        it: the same formula on the same two samples."""
        if not self._vectorised or not self._started or not len(stamps):
            return 0
        steps = np.diff(stamps, prepend=self._last_t)
        plain = np.isfinite(stamps) & (steps > 0) & (steps <= min(self.max_interp_gap_s, self.max_gap_s))
        k = len(stamps) if plain.all() else int(np.argmin(plain))
        if not k:
            return 0
        stamps, data, steps = stamps[:k], data[:k], steps[:k]
        last_slots = np.floor((stamps - self._anchor_t) / self.period_s + ON_SLOT).astype(np.int64)
        if last_slots[-1] >= self._next_slot:
            slots = np.arange(self._next_slot, last_slots[-1] + 1)
            source = np.searchsorted(last_slots, slots)  # the first sample at or past each slot
            before = np.vstack([self._last_x[None, :], data[:-1]])[source]
            before_t = np.concatenate([[self._last_t], stamps[:-1]])[source]
            times = self._anchor_t + slots * self.period_s
            weight = np.clip((times - before_t) / steps[source], 0.0, 1.0)
            out.add_values(
                self._anchor_t, self._next_slot, before + weight[:, None] * (data[source] - before)
            )
            self._next_slot = int(last_slots[-1]) + 1
        self._last_t, self._last_x = float(stamps[-1]), data[-1].copy()
        return k

    def _add(self, t: float, x: np.ndarray, out: SlotWriter) -> None:
        if not math.isfinite(t):
            self.counters.dropped += 1
            return
        step = t - self._last_t
        if not self._started or step < 0 or step > self.max_gap_s:
            self._start_segment(t, x, out)
            return
        last_slot = math.floor((t - self._anchor_t) / self.period_s + ON_SLOT)
        if last_slot < self._next_slot:
            self._last_t, self._last_x = t, x.copy()
            return
        times = self._anchor_t + np.arange(self._next_slot, last_slot + 1) * self.period_s
        if step > self.max_interp_gap_s:
            self.counters.gaps += 1
            on_t = abs(times[-1] - t) <= ON_SLOT * self.period_s
            self.counters.filled += len(times) - on_t
            values = np.full((len(times), self.n_channels), np.nan)
            if on_t:
                values[-1] = x
        else:
            weight = np.clip((times - self._last_t) / step, 0.0, 1.0)  # step > 0: a new slot was passed
            values = self._last_x + weight[:, None] * (x - self._last_x)
        out.add_values(self._anchor_t, self._next_slot, values)
        self._next_slot = last_slot + 1
        self._last_t, self._last_x = t, x.copy()

    def _start_segment(self, t: float, x: np.ndarray, out: SlotWriter) -> None:
        """Anchor a grid on this sample; after a reset, slot 0 (one period before) is a NaN marker."""
        values = x[None, :].copy()
        if self._started:
            self.counters.resets += 1
            self.counters.gaps += 1
            out.mark_segment()
            values = np.vstack([np.full((1, self.n_channels), np.nan), values])
        self._started = True
        self._anchor_t = t - (len(values) - 1) * self.period_s
        out.add_values(self._anchor_t, 0, values)
        self._next_slot = len(values)
        self._last_t, self._last_x = t, x.copy()

    def state_dict(self) -> dict[str, Any]:
        return {
            "sfreq_hz": self.sfreq_hz,
            "n_channels": self.n_channels,
            "counters": asdict(self.counters),
            "started": self._started,
            "anchor_t": self._anchor_t,
            "next_slot": self._next_slot,
            "last_t": self._last_t,
            "last_x": self._last_x.copy(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_same_settings(state, sfreq_hz=self.sfreq_hz, n_channels=self.n_channels)
        self.counters = restored_counters(state)
        self._started = restored_value(state, "started", bool)
        self._anchor_t = restored_value(state, "anchor_t", float)
        self._next_slot = restored_value(state, "next_slot", int)
        self._last_t = restored_value(state, "last_t", float)
        self._last_x = restored_array(state, "last_x", (self.n_channels,), np.float64)
