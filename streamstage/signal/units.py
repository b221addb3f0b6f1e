"""Scale factors to microvolts from the unit strings of EDF headers and LSL channel metadata.

Everything inside streamstage is float64 µV. A stream that does not say its unit is taken as µV, but the
caller learns that it was assumed, so it can say so (and the quality check's "units" flag can back it up).
"""

from __future__ import annotations

from dataclasses import dataclass

_FACTORS_TO_UV: dict[str, float] = {
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "uv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "nv": 1e-3,
    "nanovolt": 1e-3,
    "nanovolts": 1e-3,
}


@dataclass(frozen=True)
class UnitScale:
    """Multiply samples in ``unit`` by ``factor`` to get µV; ``assumed`` when the unit was unknown."""

    unit: str
    factor: float
    assumed: bool = False


def scale_to_uv(unit: str | None) -> UnitScale:
    """The scale of ``unit`` ("V", "mV", "µV", "microvolts", "nV", ...); unknown or empty: µV, assumed."""
    text = (unit or "").strip()
    key = text.lower().replace("µ", "u").replace("μ", "u").replace(" ", "")
    if key in _FACTORS_TO_UV:
        return UnitScale(text, _FACTORS_TO_UV[key])
    return UnitScale(text, 1.0, assumed=True)
