"""Fix a stream's units once, from its metadata where it says them and from the signal where it does not.

A sender that gives no unit, or one of its own (mne-lsl's ``"0"`` is volts), must not be taken for µV
silently: half a night staged a million times too small is worse than a notice. The staged channels'
first seconds decide, and a declared unit the amplitude contradicts by orders of magnitude (µV labelled
V as much as V labelled µV) is pointed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamstage.signal.channels import Montage
from streamstage.signal.units import implausible, infer_scale, scale_to_uv


@dataclass(frozen=True)
class UnitDecision:
    """Per stream channel, the factor to µV; and what the user should be told about it."""

    factors: tuple[float, ...]
    notices: tuple[str, ...] = ()


def staged_sources(montage: Montage) -> list[int]:
    """Stream columns that the montage reads."""
    columns = {d.positive for d in montage.derivations}
    return sorted(columns | {d.reference for d in montage.derivations if d.reference is not None})


def decide_units(
    labels: Sequence[str], units: Sequence[str], montage: Montage, probe: np.ndarray
) -> UnitDecision:
    """Factors for every channel; ``probe`` is ``(n, n_channels)`` of the stream's first seconds."""
    used = staged_sources(montage)
    factors: list[float] = []
    notices: list[str] = []
    for column, (label, unit) in enumerate(zip(labels, units, strict=True)):
        scale = scale_to_uv(unit)
        if column in used and scale.assumed:
            scale = infer_scale(probe[:, column])
            said = f"the unknown unit {unit!r}" if unit else "no unit"
            notices.append(
                f"channel {label} has {said} in the stream's metadata; from its amplitude it is read as "
                f"{scale.unit} (set the channel unit in the sender to be sure)"
            )
        elif column in used:
            hint = implausible(scale, probe[:, column])
            if hint:
                notices.append(f"channel {label}: {hint}")
        factors.append(scale.factor)
    return UnitDecision(tuple(factors), tuple(notices))
