"""Put LSL samples on the regular grid the signal path expects, saying which slots hold no real sample.

LSL delivers samples with timestamps, not sample indices: a Bluetooth dropout, a restarted bridge, jittery
chunk-arrival stamping, a headband whose crystal runs 1 % fast or a clock reset all show up only there.
The signal path needs one sample per grid slot. :class:`TimestampRegularizer` bridges the two, sample by
sample (so its output does not depend on how the input was chunked):

* regular input passes through unchanged (the very values, never interpolated);
* a gap (a timestamp later than the stream's own pace allows, beyond the jitter it has shown) becomes
  NaN slots, as many as samples are missing, flagged in ``missing``;
* jitter is told from gaps by an online linear fit of time against sample count with forgetting, which
  is re-anchored after every gap (a restarted source may come back with another clock offset);
* an actual rate off the nominal is measured (and reported once); when the fitted time of a sample has
  drifted more than a slot (plus the jitter allowance) from the grid, a NaN slot is inserted or the
  sample is dropped, so the grid stays aligned with stream time all night;
* a clock reset (time going backwards, or jumping ahead past ``max_gap_s``) opens a new segment: a new
  grid anchored on the new clock, whose first slot is a NaN marker so even a consumer that only
  concatenates samples sees the break.

Irregular-rate streams (nominal rate 0) go through :class:`IrregularResampler` instead, which interpolates
linearly onto a grid of a chosen rate; :func:`make_regularizer` picks the right one for a stream.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from streamstage.signal._state import restored_value
from streamstage.signal.grid import (
    RegularChunk,
    SlotWriter,
    TimingCounters,
    check_same_settings,
    checked_chunk,
    restored_counters,
)
from streamstage.signal.interpolate import IrregularResampler
from streamstage.signal.ontime import FitState, OnTimePath, Rules

log = logging.getLogger(__name__)

MAX_RATE_DEVIATION = 0.1
"""A fitted rate further than this fraction from the nominal is not believed (the fit is clamped)."""
MIN_FIT_SAMPLES = 32
"""Samples since the last anchor before the fitted slope replaces the one known so far."""
MIN_JITTER_TOLERANCE = 0.25
"""Jitter allowance, in sample periods, even for a perfectly stamped stream."""
JITTER_TOLERANCE_SIGMAS = 4.0
"""Jitter allowance in units of the stream's measured timestamp jitter (RMS)."""
MAX_JITTER = 10.0
"""One timestamp moves the jitter estimate by at most this many periods (a gap is not jitter)."""
INITIAL_JITTER = 0.15
"""Timestamp jitter (RMS, in periods) assumed until the stream has shown its own."""
ON_TIME_WINDOW = 256
"""Samples tried at once on the vectorised path after one that was not on time (doubling while all are)."""


class Regularizer(Protocol):
    """What the live loop needs from either regularizer."""

    sfreq_hz: float
    counters: TimingCounters

    def push(self, samples: np.ndarray, timestamps: np.ndarray) -> RegularChunk: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def make_regularizer(n_channels: int, nominal_srate_hz: float, sfreq_hz: float | None = None) -> Regularizer:
    """The regularizer for a stream: pass-through for a regular rate, interpolation at ``sfreq_hz`` else."""
    if nominal_srate_hz > 0:
        return TimestampRegularizer(n_channels, nominal_srate_hz)
    if not sfreq_hz:
        raise ValueError("an irregular-rate stream needs the output rate sfreq_hz")
    return IrregularResampler(n_channels, sfreq_hz)


@dataclass
class _Fit:
    """Exponentially forgetting least-squares line ``time = mean_t + slope * (count - mean_n)``."""

    weight: float = 0.0
    mean_n: float = 0.0
    mean_t: float = 0.0
    c_nn: float = 0.0
    c_nt: float = 0.0

    def add(self, n: float, t: float, forget: float) -> None:
        self.weight = forget * self.weight + 1.0
        dn, dt = n - self.mean_n, t - self.mean_t
        self.mean_n += dn / self.weight
        self.mean_t += dt / self.weight
        self.c_nn = forget * self.c_nn + dn * (n - self.mean_n)
        self.c_nt = forget * self.c_nt + dn * (t - self.mean_t)


class TimestampRegularizer:
    """Regular-rate stream -> grid at its nominal rate; see the module docstring for the rules.

    ``fit_halflife_s`` sets how fast the rate fit forgets; ``rate_check_s`` how much signal it needs before
    the measured rate is compared with the nominal; ``max_gap_s`` the longest gap still filled with NaN
    slots (longer ones start a new segment, so one chunk never carries hours of NaN); ``min_reset_s`` how
    far time must go backwards to count as a clock reset rather than jitter. Runs of on-time samples go
    through :mod:`~streamstage.signal.ontime` in vectorised NumPy, with the same output; ``vectorised=False``
    places every sample by the per-sample rules, the reference that path is tested against.
    """

    def __init__(
        self,
        n_channels: int,
        nominal_srate_hz: float,
        *,
        max_gap_s: float = 600.0,
        min_reset_s: float = 0.5,
        fit_halflife_s: float = 30.0,
        jitter_halflife_s: float = 2.0,
        rate_check_s: float = 60.0,
        rate_warn_fraction: float = 0.005,
        vectorised: bool = True,
    ) -> None:
        if nominal_srate_hz <= 0:
            raise ValueError("TimestampRegularizer needs a regular nominal rate; use IrregularResampler")
        self.n_channels = n_channels
        self.sfreq_hz = float(nominal_srate_hz)
        self.period_s = 1.0 / self.sfreq_hz
        self.max_gap_s = max_gap_s
        self.min_reset_s = min_reset_s
        self.rate_warn_fraction = rate_warn_fraction
        self._forget = 0.5 ** (1.0 / (fit_halflife_s * self.sfreq_hz))
        self._jitter_forget = 0.5 ** (1.0 / (jitter_halflife_s * self.sfreq_hz))
        self._min_c_nn = MIN_FIT_SAMPLES**3 / 12.0  # c_nn of that many evenly spaced samples
        self._rate_check_n = rate_check_s * self.sfreq_hz
        self.vectorised = vectorised
        rules = Rules(
            period_s=self.period_s,
            forget=self._forget,
            jitter_forget=self._jitter_forget,
            min_c_nn=self._min_c_nn,
            slope_low=self.period_s * (1 - MAX_RATE_DEVIATION),
            slope_high=self.period_s * (1 + MAX_RATE_DEVIATION),
            max_gap_s=max_gap_s,
            min_jitter_tolerance=MIN_JITTER_TOLERANCE,
            jitter_tolerance_sigmas=JITTER_TOLERANCE_SIGMAS,
            max_jitter=MAX_JITTER,
        )
        self._on_time = OnTimePath(rules, jitter_halflife_s * self.sfreq_hz, fit_halflife_s * self.sfreq_hz)
        self.counters = TimingCounters()
        self.rate_notice = ""
        """Set once (and logged) when the measured rate is off the nominal by more than the warn fraction."""
        self._fit = _Fit()
        self._slope = self.period_s
        self._jitter2 = INITIAL_JITTER**2
        self._started = False
        self._n = 0
        self._n_fitted = 0
        self._anchor_t = 0.0
        self._next_slot = 0

    @property
    def measured_srate_hz(self) -> float:
        """The rate the stream actually runs at, from the timestamp fit (the nominal until it is known)."""
        return 1.0 / self._slope

    def push(self, samples: np.ndarray, timestamps: np.ndarray) -> RegularChunk:
        """Place one chunk ``(n, n_channels)`` with its ``(n,)`` timestamps on the grid."""
        data, stamps = checked_chunk(samples, timestamps, self.n_channels)
        out = SlotWriter(self.n_channels)
        row, window = 0, len(stamps)  # all at once, until a sample is not on time
        while row < len(stamps):
            tried = min(window, len(stamps) - row, self._on_time.max_run)
            placed = self._place_on_time(row, stamps[row : row + tried], out)
            row += placed
            if placed == tried:
                window = 2 * tried
                continue
            if row < len(stamps):
                self._place(row, float(stamps[row]), out)
                row += 1
            window = ON_TIME_WINDOW
        self.counters.samples_in += len(stamps)
        chunk = out.chunk(self.period_s, data)
        self.counters.samples_out += len(chunk)
        return chunk

    def _place_on_time(self, first_row: int, stamps: np.ndarray, out: SlotWriter) -> int:
        """Place the leading on-time samples of ``stamps`` (input rows from ``first_row``) at once; returns
        how many. Each is what :meth:`_place` would do to it: fit, jitter, rate check, the next slot."""
        if not self.vectorised or not self._started:
            return 0
        fit = self._fit
        state = FitState(fit.weight, fit.mean_n, fit.mean_t, fit.c_nn, fit.c_nt, self._slope, self._jitter2)
        slot_t = self._anchor_t + self._next_slot * self.period_s
        run = self._on_time.prefix(stamps, state, self._n, slot_t)
        if run.length:
            if not self.rate_notice:  # the first sample the rate check sees, measured with its own slope
                checked = self._n_fitted + 1 + np.arange(run.length) >= self._rate_check_n
                off = np.abs(1.0 / run.slopes / self.sfreq_hz - 1.0) > self.rate_warn_fraction
                hits = np.flatnonzero(checked & off)
                if hits.size:
                    self._note_rate(1.0 / float(run.slopes[hits[0]]))
            after = run.state
            self._fit = _Fit(after.weight, after.mean_n, after.mean_t, after.c_nn, after.c_nt)
            self._slope, self._jitter2 = after.slope, after.jitter2
            out.add_rows(self._anchor_t, self._next_slot, first_row, first_row + run.length)
            self._next_slot += run.length
            self._n += run.length
            self._n_fitted += run.length
        return run.length

    def _place(self, row: int, t: float, out: SlotWriter) -> None:
        if not math.isfinite(t):
            self.counters.dropped += 1
            return
        if not self._started:
            self._start_segment(t, out, marker=False)
        else:
            slope = self._fitted_slope()
            late_s = t - self._predict(self._n, slope)  # 0 for the expected next sample
            lag = late_s / slope
            tolerance = max(MIN_JITTER_TOLERANCE, JITTER_TOLERANCE_SIGMAS * math.sqrt(self._jitter2))
            if late_s > self.max_gap_s or (lag < -1.0 - tolerance and -late_s > self.min_reset_s):
                self.counters.resets += 1
                self.counters.gaps += 1
                self._start_segment(t, out, marker=True)
            elif lag > 0.5 + tolerance:
                self._fill_gap(round(lag), t, out)
            elif not self._accept(t, lag, tolerance, out):
                self.counters.dropped += 1
                self._n += 1
                return
        self._emit(out, [row])
        self._n += 1

    def _accept(self, t: float, lag: float, tolerance: float, out: SlotWriter) -> bool:
        """Learn from an on-time sample; False when the stream ran ahead of the grid and it is dropped."""
        self._fit.add(self._n, t, self._forget)
        self._n_fitted += 1
        squared = min(lag * lag, MAX_JITTER**2)
        self._jitter2 = self._jitter_forget * self._jitter2 + (1 - self._jitter_forget) * squared
        self._check_rate()
        slot_t = self._anchor_t + self._next_slot * self.period_s
        drift = (self._predict(self._n, self._fitted_slope()) - slot_t) / self.period_s
        if drift <= -1.0 - tolerance:
            return False
        if drift >= 1.0 + tolerance:
            n_inserted = math.floor(drift)
            self.counters.drift_filled += n_inserted
            self._emit(out, [-1] * n_inserted)
        return True

    def _fill_gap(self, n_missing: int, t: float, out: SlotWriter) -> None:
        self.counters.gaps += 1
        self.counters.filled += n_missing
        self._emit(out, [-1] * n_missing)
        self._n += n_missing
        self._reanchor(t)

    def _start_segment(self, t: float, out: SlotWriter, *, marker: bool) -> None:
        """Anchor a new grid at ``t``; with a marker, slot 0 (one period before ``t``) is a NaN break."""
        self._started = True
        self._anchor_t = t - self.period_s if marker else t
        self._next_slot = 0
        if marker:
            out.mark_segment()
            self._emit(out, [-1])
        self._reanchor(t)

    def _emit(self, out: SlotWriter, rows: list[int]) -> None:
        out.add(self._anchor_t, self._next_slot, rows)
        self._next_slot += len(rows)

    def _reanchor(self, t: float) -> None:
        """Restart the line at this sample, keeping the slope learnt so far."""
        self._fit = _Fit(weight=1.0, mean_n=float(self._n), mean_t=t)
        self._n_fitted = 0

    def _fitted_slope(self) -> float:
        if self._fit.c_nn >= self._min_c_nn:
            low, high = self.period_s * (1 - MAX_RATE_DEVIATION), self.period_s * (1 + MAX_RATE_DEVIATION)
            self._slope = min(max(self._fit.c_nt / self._fit.c_nn, low), high)
        return self._slope

    def _predict(self, n: int, slope: float) -> float:
        return self._fit.mean_t + slope * (n - self._fit.mean_n)

    def _check_rate(self) -> None:
        if self.rate_notice or self._n_fitted < self._rate_check_n:
            return
        self._note_rate(self.measured_srate_hz)

    def _note_rate(self, measured: float) -> None:
        """Report (once) a measured rate further off the nominal than the warn fraction."""
        off = measured / self.sfreq_hz - 1.0
        if abs(off) > self.rate_warn_fraction:
            self.rate_notice = (
                f"the stream runs at {measured:.3f} Hz, not its nominal {self.sfreq_hz:g} Hz ({off:+.2%}); "
                f"samples are {'dropped' if off > 0 else 'NaN-filled'} now and then to stay aligned with "
                "stream time (counted in the timing report)."
            )
            log.warning(self.rate_notice)

    def state_dict(self) -> dict[str, Any]:
        return {
            "sfreq_hz": self.sfreq_hz,
            "n_channels": self.n_channels,
            "counters": asdict(self.counters),
            "fit": asdict(self._fit),
            "slope": self._slope,
            "jitter2": self._jitter2,
            "started": self._started,
            "n": self._n,
            "n_fitted": self._n_fitted,
            "anchor_t": self._anchor_t,
            "next_slot": self._next_slot,
            "rate_notice": self.rate_notice,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_same_settings(state, sfreq_hz=self.sfreq_hz, n_channels=self.n_channels)
        self.counters = restored_counters(state)
        fit = state.get("fit", {})
        self._fit = _Fit(**{key: restored_value(fit, key, float) for key in asdict(_Fit())})
        self._slope = restored_value(state, "slope", float)
        self._jitter2 = restored_value(state, "jitter2", float)
        self._started = restored_value(state, "started", bool)
        self._n = restored_value(state, "n", int)
        self._n_fitted = restored_value(state, "n_fitted", int)
        self._anchor_t = restored_value(state, "anchor_t", float)
        self._next_slot = restored_value(state, "next_slot", int)
        self.rate_notice = restored_value(state, "rate_notice", str)
