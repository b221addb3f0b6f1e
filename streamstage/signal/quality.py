"""Per-epoch signal quality: the numbers, the thresholds, and the verdict.

Low-quality epochs are still staged (the model's state must keep moving) but the alarm ignores them and
the dashboard says why, so each verdict carries one flag and a sentence a sleeping user's partner can act on.
The numbers come from the raw µV input (see :mod:`streamstage.signal.quality_meter`), not the filtered
signal, because the filter hides exactly the faults (offsets, rails, wrong units) these checks look for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FLAGS: tuple[str, ...] = ("missing", "flat", "units", "clipped", "artifact")
"""Failing checks, in the order they are tried (and in decreasing severity)."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of a usable epoch. Defaults suit scalp EEG in µV at any supported rate."""

    max_missing_frac: float = 0.2
    min_std_uv: float = 0.5
    max_flat_s: float = 5.0
    units_max_ptp_uv: float = 0.05
    max_clipped_frac: float = 0.05
    clip_run: int = 3
    max_ptp_uv: float = 1500.0
    max_std_uv: float = 300.0


@dataclass(frozen=True)
class EpochQuality:
    """Quality of one channel over one epoch. Measures are NaN when every sample was missing."""

    missing_frac: float
    std_uv: float
    ptp_uv: float
    flat_s: float
    clipped_frac: float
    flag: str
    reason: str
    channel: int = 0

    @property
    def ok(self) -> bool:
        return self.flag == "good"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # shallow: every field is a scalar (asdict deep-copies, 10x slower)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> EpochQuality:
        return cls(**{key: record[key] for key in cls.__dataclass_fields__})


def _verdict(
    missing_frac: float,
    std_uv: float,
    ptp_uv: float,
    flat_s: float,
    clipped_frac: float,
    limits: QualityThresholds,
) -> tuple[str, str]:
    units_like = 0 < std_uv < limits.min_std_uv and 0 < ptp_uv < limits.units_max_ptp_uv
    if missing_frac > limits.max_missing_frac:
        return "missing", f"{missing_frac:.0%} of samples are missing; check the connection to the headband."
    if flat_s > limits.max_flat_s:
        return "flat", f"the signal is constant for {flat_s:.1f} s; check the electrode contact."
    if std_uv < limits.min_std_uv and not units_like:
        return "flat", f"the signal is flat (std {std_uv:.2f} µV); check the electrode contact."
    if units_like:
        return "units", (
            f"the amplitude is tiny (peak-to-peak {ptp_uv:.2g} µV) but not constant: the stream is probably "
            "in volts or millivolts, not microvolts; set the channel unit."
        )
    if clipped_frac > limits.max_clipped_frac:
        return "clipped", f"{clipped_frac:.0%} of samples sit at the amplifier's limit; check the electrode."
    if ptp_uv > limits.max_ptp_uv or std_uv > limits.max_std_uv:
        return "artifact", (
            f"the amplitude is implausible for EEG (peak-to-peak {ptp_uv:.0f} µV, std {std_uv:.0f} µV): "
            "movement or a loose electrode."
        )
    return "good", "good"


def assess(
    missing_frac: float,
    std_uv: float,
    ptp_uv: float,
    flat_s: float,
    clipped_frac: float,
    limits: QualityThresholds,
    channel: int = 0,
) -> EpochQuality:
    """The :class:`EpochQuality` of one channel's epoch measures: ``"good"`` or the first failing check.

    A tiny but non-constant signal (0 < std < ``min_std_uv`` and peak-to-peak below
    ``units_max_ptp_uv``, less than any EEG amplifier's resolution) is flagged ``"units"``, not ``"flat"``.
    """
    flag, reason = _verdict(missing_frac, std_uv, ptp_uv, flat_s, clipped_frac, limits)
    return EpochQuality(missing_frac, std_uv, ptp_uv, flat_s, clipped_frac, flag, reason, channel)


def worst_quality(per_channel: Sequence[EpochQuality]) -> EpochQuality:
    """The channel whose failing check comes first in :data:`FLAGS` (lowest channel on ties)."""
    rank = {flag: position for position, flag in enumerate(FLAGS)}
    return min(per_channel, key=lambda quality: (rank.get(quality.flag, len(FLAGS)), quality.channel))
