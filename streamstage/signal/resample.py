"""Stateful resampling from any input rate (50-1000 Hz) to the model rate, chunk by chunk.

Output sample ``k`` is the band-limited interpolation of the input at position ``k * sfreq_in / sfreq_out``,
i.e. at time ``k / sfreq_out``: epoch starts are exact. Positions come from integer arithmetic on a
rational ratio, so a 72-hour night accumulates no rounding drift, and every output depends only on the
input samples around it, so the numbers do not depend on how the input was chunked. The resampler waits
for the half-width of future samples each output needs; the state is that short tail plus two counters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from streamstage.signal._state import restored_array, restored_value

MAX_RATE_DENOMINATOR = 1000
"""Sampling rates are taken as the nearest fraction with at most this denominator (128.5 Hz -> 257/2)."""
CUTOFF_FRACTION = 0.9
"""Anti-aliasing cutoff, as a fraction of the lower of the two Nyquist frequencies."""
_BLOCK = 2048
"""Outputs computed per vectorised block, bounding the memory a one-shot file push needs."""
_MAX_TABLE_SIZE = 1 << 20
"""Kernel weights are tabulated per fractional phase when the table stays below this many values (8 MB)."""
_GROUPS_PER_MATMUL = 4096
"""Output groups computed per matrix product, bounding the memory a one-shot file push needs."""


def sfreq_ratio(sfreq_in_hz: float, sfreq_out_hz: float) -> Fraction:
    """The exact rational ``sfreq_in / sfreq_out`` the resampler and the epoch grid both use."""
    return Fraction(sfreq_in_hz).limit_denominator(MAX_RATE_DENOMINATOR) / Fraction(
        sfreq_out_hz
    ).limit_denominator(MAX_RATE_DENOMINATOR)


def _blackman(u: np.ndarray) -> np.ndarray:
    return 0.42 + 0.5 * np.cos(np.pi * u) + 0.08 * np.cos(2 * np.pi * u)


class Resampler:
    """Windowed-sinc resampler for ``(n, n_channels)`` chunks, with a per-sample missing mask.

    ``half_width`` is counted in samples of the lower rate (so the anti-aliasing filter is equally sharp
    for 256 Hz and 1000 Hz input); the kernel spans ``half_width_in`` input samples either side. An output
    is marked missing when the input sample nearest to it was missing: the mask tells where the signal was
    invented by the hold, not how far the filters smeared it. Equal rates pass samples through unchanged.
    """

    def __init__(
        self, sfreq_in_hz: float, sfreq_out_hz: float, n_channels: int, half_width: int = 16
    ) -> None:
        self.ratio = sfreq_ratio(sfreq_in_hz, sfreq_out_hz)
        self.n_channels = n_channels
        self.passthrough = self.ratio == 1
        self.half_width_in = math.ceil(half_width * max(Fraction(1), self.ratio))
        self._cutoff = 0.5 * CUTOFF_FRACTION * float(min(Fraction(1), 1 / self.ratio))
        self._taps = np.arange(-self.half_width_in + 1, self.half_width_in + 1)
        n_phases = self.ratio.denominator
        self._table = (
            self._kernel(np.arange(n_phases)) if n_phases * len(self._taps) <= _MAX_TABLE_SIZE else None
        )
        self._polyphase = None if self.passthrough or self._table is None else _Polyphase.of(self)
        pad = 0 if self.passthrough else self.half_width_in - 1
        self._buffer = np.zeros((pad, n_channels))
        self._buffer_missing = np.zeros((pad, n_channels), dtype=bool)
        self._buffer_start = -pad
        self.n_in = 0
        self.n_out = 0

    def push(self, samples: np.ndarray, missing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Resample one chunk; returns every output its input made computable, and their missing mask."""
        samples = np.asarray(samples, dtype=np.float64)
        missing = np.zeros(samples.shape, dtype=bool) if missing is None else np.asarray(missing, dtype=bool)
        self.n_in += len(samples)
        if self.passthrough:
            self.n_out += len(samples)
            return samples.copy(), missing.copy()
        buffer = np.concatenate([self._buffer, samples])
        buffer_missing = np.concatenate([self._buffer_missing, missing])
        p, q = self.ratio.numerator, self.ratio.denominator
        ready = self.n_in - self.half_width_in
        n_end = -(-ready * q // p) if ready > 0 else 0
        outputs, outputs_missing = [], []
        for start, stop, by_matmul in self._spans(self.n_out, n_end):
            if by_matmul:
                assert self._polyphase is not None
                outputs.append(self._polyphase.outputs(start, stop, buffer, self._buffer_start))
                k = np.arange(start, stop, dtype=np.int64)
                outputs_missing.append(buffer_missing[(2 * k * p + q) // (2 * q) - self._buffer_start])
                continue
            k = np.arange(start, stop, dtype=np.int64)
            values, mask = self._interpolate(k * p, q, buffer, buffer_missing)
            outputs.append(values)
            outputs_missing.append(mask)
        self.n_out = max(self.n_out, n_end)
        keep_from = (self.n_out * p) // q - self.half_width_in + 1 - self._buffer_start
        self._buffer = buffer[keep_from:].copy()
        self._buffer_missing = buffer_missing[keep_from:].copy()
        self._buffer_start += keep_from
        if not outputs:
            return np.zeros((0, self.n_channels)), np.zeros((0, self.n_channels), dtype=bool)
        return np.concatenate(outputs), np.concatenate(outputs_missing)

    def _spans(self, start: int, stop: int) -> list[tuple[int, int, bool]]:
        """Outputs ``start..stop`` in blocks, each computed by matrix product or output by output."""
        if self._polyphase is None:
            return [(k, min(k + _BLOCK, stop), False) for k in range(start, stop, _BLOCK)]
        step = _GROUPS_PER_MATMUL * self._polyphase.outputs_per_group
        return [(k, min(k + step, stop), True) for k in range(start, stop, step)]

    def _kernel(self, phase: np.ndarray) -> np.ndarray:
        """Weights ``(len(phase), n_taps)``, rows summing to 1, for outputs ``phase / q`` past a sample."""
        distance = self._taps[None, :] - (phase / self.ratio.denominator)[:, None]
        weights = np.sinc(2 * self._cutoff * distance) * _blackman(distance / self.half_width_in)
        return weights / weights.sum(axis=1, keepdims=True)

    def _interpolate(
        self, position_num: np.ndarray, q: int, buffer: np.ndarray, buffer_missing: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs at input positions ``position_num / q`` from the buffered samples."""
        base, phase = np.divmod(position_num, q)
        weights = self._kernel(phase) if self._table is None else self._table[phase]
        rows = base[:, None] + self._taps[None, :] - self._buffer_start
        values = np.einsum("kt,ktc->kc", weights, buffer[rows])
        nearest = (2 * position_num + q) // (2 * q) - self._buffer_start
        return values, buffer_missing[nearest]

    def state_dict(self) -> dict[str, Any]:
        return {
            "buffer": self._buffer.copy(),
            "buffer_missing": self._buffer_missing.copy(),
            "buffer_start": self._buffer_start,
            "n_in": self.n_in,
            "n_out": self.n_out,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        n_buffered = len(np.asarray(state.get("buffer", ())))
        self._buffer = restored_array(state, "buffer", (n_buffered, self.n_channels), np.float64)
        self._buffer_missing = restored_array(state, "buffer_missing", (n_buffered, self.n_channels), bool)
        self._buffer_start = restored_value(state, "buffer_start", int)
        self.n_in = restored_value(state, "n_in", int)
        self.n_out = restored_value(state, "n_out", int)


class _Polyphase:
    """The resampler's outputs as one matrix product per group, the same weights as the per-output path.

    Every ``outputs_per_group`` outputs the kernel phases repeat, ``inputs_per_group`` samples further on.
    So the outputs of a run of groups are ``X @ W``: ``X`` holds each group's input span (cut from the buffer
    as ``n_blocks`` consecutive blocks of ``inputs_per_group`` samples, contiguous for BLAS) and column
    ``r`` of ``W`` the kernel of the group's ``r``-th output, placed at that output's offset. The products
    cost more multiply-adds than the gathered dot products (zeros in ``W``) but run ~10x faster.
    """

    def __init__(
        self, outputs_per_group: int, inputs_per_group: int, first_offset: int, weights: np.ndarray
    ) -> None:
        self.outputs_per_group = outputs_per_group
        self.inputs_per_group = inputs_per_group
        self.first_offset = first_offset
        self.weights = weights
        """(n_blocks, inputs_per_group, outputs_per_group)."""

    @classmethod
    def of(cls, resampler: Resampler) -> _Polyphase | None:
        """The matrices of ``resampler``'s kernel table, or None when they would be too large."""
        assert resampler._table is not None
        p, q = resampler.ratio.numerator, resampler.ratio.denominator
        taps = resampler._taps
        repeats = max(1, -(-len(taps) // p))  # a group's inputs at least span the kernel: at most 2 blocks
        n_out, n_in = repeats * q, repeats * p
        r = np.arange(n_out)
        base, phase = np.divmod(r * p, q)
        first_offset = int(taps[0])
        span = int(base[-1] + taps[-1]) - first_offset + 1
        n_blocks = -(-span // n_in)
        if n_blocks * n_in * n_out > _MAX_TABLE_SIZE:
            return None
        weights = np.zeros((n_blocks * n_in, n_out))
        rows = base[:, None] + taps[None, :] - first_offset
        weights[rows, r[:, None]] = resampler._table[phase]
        return cls(n_out, n_in, first_offset, weights.reshape(n_blocks, n_in, n_out))

    def outputs(self, start: int, stop: int, buffer: np.ndarray, buffer_start: int) -> np.ndarray:
        """Outputs ``start..stop`` from ``buffer``, whose row 0 is input ``buffer_start``.

        The groups at either end may be partial: their other outputs would need inputs before the buffer or
        not yet received, which are taken as zeros here, and those outputs are dropped.
        """
        group = self.outputs_per_group
        first_group, end_group = start // group, -(-stop // group)
        n_groups, n_blocks = end_group - first_group, len(self.weights)
        first = first_group * self.inputs_per_group + self.first_offset - buffer_start
        length = (n_groups + n_blocks - 1) * self.inputs_per_group
        lo, hi = max(first, 0), min(first + length, len(buffer))
        keep = slice(start - first_group * group, stop - first_group * group)
        values = np.empty((stop - start, buffer.shape[1]))
        for channel in range(buffer.shape[1]):
            inputs = np.zeros(length)
            inputs[lo - first : hi - first] = buffer[lo:hi, channel]
            blocks = inputs.reshape(-1, self.inputs_per_group)
            grouped = blocks[:n_groups] @ self.weights[0]
            for b in range(1, n_blocks):
                grouped += blocks[b : b + n_groups] @ self.weights[b]
            values[:, channel] = grouped.reshape(-1)[keep]
        return values
