"""Running per-epoch quality measures over the raw input, in O(1) memory per channel.

Input sample ``i`` belongs to epoch ``floor(i / samples_per_epoch)``, with ``samples_per_epoch`` the exact
rational ``epoch_s * sfreq_in`` (the same grid the resampler's epochs sit on). Each channel keeps a handful
of accumulators; a chunk is folded into them with a few vectorised numpy calls per epoch it touches, so
1-sample chunks and whole files give the same verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from streamstage.errors import ResumeError
from streamstage.signal._state import check_matches, restored_value
from streamstage.signal.quality import EpochQuality, QualityThresholds, assess


@dataclass
class _Accumulator:
    """One channel's measures so far in the current epoch. Valid-sample fields mean nothing while
    ``n_valid == 0``. Runs are of identical consecutive valid samples (missing samples are skipped)."""

    n: int = 0
    n_missing: int = 0
    n_valid: int = 0
    offset: float = 0.0  # first valid value: sums are of (x - offset), so a DC offset costs no precision
    sum_centred: float = 0.0
    sum_sq_centred: float = 0.0
    low: float = 0.0
    high: float = 0.0
    n_outside_range: int = 0
    run_value: float = 0.0
    run_len: int = 0
    longest_run: int = 0
    at_low: int = 0  # samples in finished runs of >= clip_run samples at the value ``low``
    at_high: int = 0

    def add(
        self, values: np.ndarray, missing: np.ndarray, clip_run: int, clip_range: tuple[float, float] | None
    ) -> None:
        self.n += len(values)
        self.n_missing += int(missing.sum())
        valid = values[~missing]
        if not valid.size:
            return
        if not self.n_valid:
            self.offset = self.low = self.high = float(valid[0])
        self.n_valid += valid.size
        centred = valid - self.offset
        self.sum_centred += float(centred.sum())
        self.sum_sq_centred += float(centred @ centred)
        if clip_range is not None:
            self.n_outside_range += int(np.count_nonzero((valid <= clip_range[0]) | (valid >= clip_range[1])))
        self._add_runs(valid, clip_run)

    def _add_runs(self, valid: np.ndarray, clip_run: int) -> None:
        starts = np.flatnonzero(np.concatenate(([True], valid[1:] != valid[:-1])))
        lengths = np.diff(starts, append=valid.size)
        values = valid[starts]
        if self.run_len and values[0] == self.run_value:
            lengths[0] += self.run_len
        elif self.run_len:
            values = np.concatenate(([self.run_value], values))
            lengths = np.concatenate(([self.run_len], lengths))
        low, high = min(self.low, float(values.min())), max(self.high, float(values.max()))
        finished_long = lengths[:-1] >= clip_run
        self.at_low = (self.at_low if low == self.low else 0) + int(
            lengths[:-1][finished_long & (values[:-1] == low)].sum()
        )
        self.at_high = (self.at_high if high == self.high else 0) + int(
            lengths[:-1][finished_long & (values[:-1] == high)].sum()
        )
        self.low, self.high = low, high
        self.run_value, self.run_len = float(values[-1]), int(lengths[-1])
        self.longest_run = max(self.longest_run, int(lengths.max()))

    def n_clipped(self, clip_run: int, clip_range: tuple[float, float] | None) -> int:
        """Samples at the physical range if known, else in runs of >= ``clip_run`` at the epoch's extremes."""
        if clip_range is not None:
            return self.n_outside_range
        current = self.run_len if self.run_len >= clip_run and self.run_value in (self.low, self.high) else 0
        return self.at_low + self.at_high + current

    def finish(
        self, sfreq_hz: float, limits: QualityThresholds, clip_range: tuple[float, float] | None, channel: int
    ) -> EpochQuality:
        missing_frac = self.n_missing / self.n
        if not self.n_valid:
            nan = math.nan
            return assess(missing_frac, nan, nan, nan, nan, limits, channel)
        mean = self.sum_centred / self.n_valid
        std_uv = math.sqrt(max(self.sum_sq_centred / self.n_valid - mean * mean, 0.0))
        return assess(
            missing_frac,
            std_uv,
            self.high - self.low,
            self.longest_run / sfreq_hz,
            self.n_clipped(limits.clip_run, clip_range) / self.n_valid,
            limits,
            channel,
        )


class QualityMeter:
    """Splits raw ``(n, n_channels)`` µV chunks at epoch boundaries and returns finished epochs' qualities.

    ``ranges_uv`` is each channel's physical range as pushed (e.g. from an EDF header; None where unknown);
    without it clipping is recognised as runs of identical samples at the epoch's extreme values.
    """

    def __init__(
        self,
        sfreq_hz: float,
        samples_per_epoch: Fraction,
        n_channels: int,
        limits: QualityThresholds,
        ranges_uv: Sequence[tuple[float, float] | None] | None = None,
    ) -> None:
        self.sfreq_hz = sfreq_hz
        self.samples_per_epoch = samples_per_epoch
        self.n_channels = n_channels
        self.limits = limits
        self.ranges_uv = list(ranges_uv) if ranges_uv is not None else [None] * n_channels
        if len(self.ranges_uv) != n_channels:
            raise ValueError(f"{len(self.ranges_uv)} physical ranges for {n_channels} channels")
        self.n_in = 0
        self.epoch = 0
        self._channels = [_Accumulator() for _ in range(n_channels)]

    def epoch_start(self, epoch: int) -> int:
        """Index of the first input sample of ``epoch``: ceil(epoch * samples_per_epoch), exactly."""
        return -(-epoch * self.samples_per_epoch.numerator // self.samples_per_epoch.denominator)

    def push(self, samples: np.ndarray, missing: np.ndarray) -> list[list[EpochQuality]]:
        """Fold one chunk in; returns per-channel qualities of each epoch the chunk completed.

        ``missing`` must flag every sample to leave out, non-finite ones included (see ``missing_mask``).
        """
        finished = []
        position = 0
        while position < len(samples):
            end = min(len(samples), position + self.epoch_start(self.epoch + 1) - self.n_in)
            for channel, accumulator in enumerate(self._channels):
                accumulator.add(
                    samples[position:end, channel],
                    missing[position:end, channel],
                    self.limits.clip_run,
                    self.ranges_uv[channel],
                )
            self.n_in += end - position
            position = end
            if self.n_in == self.epoch_start(self.epoch + 1):
                finished.append(
                    [
                        accumulator.finish(self.sfreq_hz, self.limits, self.ranges_uv[channel], channel)
                        for channel, accumulator in enumerate(self._channels)
                    ]
                )
                self._channels = [_Accumulator() for _ in range(self.n_channels)]
                self.epoch += 1
        return finished

    def state_dict(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "epoch": self.epoch,
            "n_channels": self.n_channels,
            "channels": [dict(vars(accumulator)) for accumulator in self._channels],  # scalars only
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_matches(state, "n_channels", self.n_channels)
        try:
            channels = [
                _Accumulator(**{f.name: type(f.default)(saved[f.name]) for f in fields(_Accumulator)})
                for saved in state["channels"]
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise ResumeError(f"saved quality state is damaged ({error}); start a new night.") from error
        self._channels = channels
        self.n_in = restored_value(state, "n_in", int)
        self.epoch = restored_value(state, "epoch", int)
