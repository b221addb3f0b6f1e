"""The timestamp regularizer's fast path: a run of on-time samples placed at once, in vectorised NumPy.

:class:`~streamstage.signal.timing.TimestampRegularizer` defines its rules sample by sample, and that loop
stays the reference. Nearly every sample of a night is on time, though: it extends the rate fit, the
jitter estimate and the grid by one, and is copied to the next slot. For such samples the per-sample
recurrences have closed forms over a whole run (exponentially weighted sums, as cumulative sums), so
:meth:`OnTimePath.prefix` evaluates every rule for a run at once and says how many leading samples are on
time; the caller places those and hands the first other one (late, early, missing, a clock jump) to the
per-sample rules.

The sums are the per-sample ones in another order, equal to float rounding (~1e-12 relative), not bit for
bit. A sample counts as on time only if it clears every threshold by :data:`MARGIN` periods, and any other
goes through the per-sample rules, so a rounding difference cannot move a sample: the output is the
reference's for any chunking. (Only a stamp within ~1e-10 periods of a threshold, which a jitter-free
synthetic stream can produce, could go either way.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 1e-6
"""Periods by which an on-time sample must clear every threshold (far above the rounding of the sums)."""
MAX_RUN = 1 << 13
"""Samples judged at once at most: longer runs are judged in pieces. Each operator's temporaries then stay in
the CPU cache (and under the allocator's mmap threshold, which costs page faults at every operator): 8k was
the fastest run length measured (72 ns a sample, against 109 ns at 32k and 133 ns at 1k)."""


@dataclass(frozen=True)
class FitState:
    """The forgetting line fit (``_Fit`` in timing), the slope in use, and the jitter estimate."""

    weight: float
    mean_n: float
    mean_t: float
    c_nn: float
    c_nt: float
    slope: float
    jitter2: float


@dataclass(frozen=True)
class Rules:
    """The regularizer's constants the rules read."""

    period_s: float
    forget: float
    jitter_forget: float
    min_c_nn: float
    slope_low: float
    slope_high: float
    max_gap_s: float
    min_jitter_tolerance: float
    jitter_tolerance_sigmas: float
    max_jitter: float


@dataclass(frozen=True)
class OnTimeRun:
    """The leading on-time samples of a run: how many, the state after them, and the slope each was
    judged with (what the rate check reads)."""

    length: int
    state: FitState
    slopes: np.ndarray


class OnTimePath:
    """The on-time test for one regularizer's rules, with the powers of its forgetting factors cached.

    An exponentially weighted prefix sum ``y_j = f y_(j-1) + x_(j-1)`` is
    ``f^j (y_0 + Σ_(i<j) f^-(i+1) x_i)``: one cumulative sum. The powers grow along a run, so runs are
    capped at :attr:`max_run` samples (64 half-lives of the faster forgetting at most: a factor 2^64, far
    from overflow and from losing digits).
    """

    def __init__(self, rules: Rules, jitter_halflife_n: float, fit_halflife_n: float) -> None:
        self.rules = rules
        self.max_run = max(1, min(MAX_RUN, int(64 * min(jitter_halflife_n, fit_halflife_n))))
        j = np.arange(self.max_run + 1, dtype=np.float64)
        self._grow_f = rules.forget**-j  # f^-j
        self._decay_f = rules.forget**j
        self._grow_g = rules.jitter_forget**-j
        self._decay_g = rules.jitter_forget**j
        self._index = j
        # Data-independent sums over a run (counts go up by one per sample): Σ_(i<j) f^-(i+1) i^p.
        self._ones = _prefix(self._grow_f[1:], np.ones(self.max_run))
        self._ramp = _prefix(self._grow_f[1:], j[:-1])
        self._ramp2 = _prefix(self._grow_f[1:], j[:-1] ** 2)

    def prefix(self, stamps: np.ndarray, state: FitState, n: int, slot_t: float) -> OnTimeRun:
        """How many leading ``stamps`` (at most :attr:`max_run`) are on time for a regularizer in ``state``
        whose next sample is count ``n`` and next slot at ``slot_t``, and the state after them."""
        rules, m = self.rules, len(stamps)
        grow, decay = self._grow_f[: m + 1], self._decay_f[: m + 1]
        c0 = n - state.mean_n  # local coordinates: the fit's means at 0, sample i has count c0 + i
        counts = c0 + self._index[:m]
        times = stamps - state.mean_t
        ones, ramp, ramp2 = self._ones[: m + 1], self._ramp[: m + 1], self._ramp2[: m + 1]
        weight = decay * (state.weight + ones)  # column j: the fit after j samples of the run
        s_n = decay * (c0 * ones + ramp)
        s_nn = decay * (state.c_nn + c0 * c0 * ones + 2.0 * c0 * ramp + ramp2)
        s_t = decay * _prefix(grow[1:], times)
        s_nt = decay * (state.c_nt + _prefix(grow[1:], counts * times))
        mean_n, mean_t = s_n / weight, s_t / weight
        c_nn = s_nn - s_n * mean_n
        c_nt = s_nt - s_n * mean_t
        slopes = _sticky_slopes(c_nn, c_nt, state.slope, rules)
        # Judged with the fit before it (column i), sample i's lag; placed, with the fit after it, its drift.
        late_s = times - (mean_t[:-1] + slopes[:-1] * (counts - mean_n[:-1]))
        lag = late_s / slopes[:-1]
        squared = np.minimum(lag * lag, rules.max_jitter**2)
        g = rules.jitter_forget
        jitter2 = self._decay_g[: m + 1] * (
            state.jitter2 + (1.0 - g) * _prefix(self._grow_g[1 : m + 1], squared)
        )
        tolerance = np.maximum(
            rules.min_jitter_tolerance, rules.jitter_tolerance_sigmas * np.sqrt(jitter2[:-1])
        )
        slot_times = (slot_t - state.mean_t) + self._index[:m] * rules.period_s
        drift = (mean_t[1:] + slopes[1:] * (counts - mean_n[1:]) - slot_times) / rules.period_s
        on_time = (
            np.isfinite(stamps)
            & (late_s < rules.max_gap_s)
            & (np.abs(lag + 0.25) < 0.75 + tolerance - MARGIN)  # -1 - tol < lag < 0.5 + tol
            & (np.abs(drift) < 1.0 + tolerance - MARGIN)
        )
        k = m if on_time.all() else int(np.argmin(on_time))
        after = FitState(
            weight=float(weight[k]),
            mean_n=float(state.mean_n + mean_n[k]),
            mean_t=float(state.mean_t + mean_t[k]),
            c_nn=float(c_nn[k]),
            c_nt=float(c_nt[k]),
            slope=float(slopes[k]),
            jitter2=float(jitter2[k]),
        )
        return OnTimeRun(k, after, slopes[:k])


def _prefix(grow: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``[0, cumsum(grow * values)]``: the sums of the first j terms, j = 0..len(values)."""
    sums = np.zeros(len(values) + 1)
    np.cumsum(grow * values, out=sums[1:])
    return sums


def _sticky_slopes(c_nn: np.ndarray, c_nt: np.ndarray, slope: float, rules: Rules) -> np.ndarray:
    """The slope in use after each state: the fitted one, clamped, once the fit has seen enough samples,
    else the last one known (``_fitted_slope`` in timing)."""
    fitted = c_nn >= rules.min_c_nn
    if fitted.all():
        return np.clip(c_nt / c_nn, rules.slope_low, rules.slope_high)
    raw = np.divide(c_nt, c_nn, out=np.full(len(c_nn), slope), where=fitted)
    raw = np.clip(raw, rules.slope_low, rules.slope_high)
    latest = np.maximum.accumulate(np.where(fitted, np.arange(len(c_nn)), -1))
    return np.where(latest >= 0, raw[np.maximum(latest, 0)], slope)
