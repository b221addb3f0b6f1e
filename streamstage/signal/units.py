"""Scale factors to microvolts from the unit strings of EDF headers and LSL channel metadata.

Everything inside streamstage is float64 µV. A unit that is not known here comes back ``assumed``, so the
caller can infer it from the amplitude (:func:`infer_scale`) and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


UNITS_BY_SENDER: dict[str, float] = {
    "0": 1e6,  # mne-lsl publishes its FIFF unit multiplier: 0 is volts,
    "-3": 1e3,  # -3 millivolts,
    "-6": 1.0,  # -6 microvolts,
    "-9": 1e-3,  # -9 nanovolts
    "microvolt(s)": 1.0,
    "uvolts": 1.0,
}
"""Unit codes of real LSL senders beyond the SI names: mne-lsl's FIFF multipliers and spellings seen in
the wild (muselsl and BrainVision write "microvolts", the OpenBCI GUI "uV" or nothing at all)."""
_FACTORS_TO_UV.update(UNITS_BY_SENDER)

PLAUSIBLE_STD_UV = (0.5, 2000.0)
"""Standard deviation of scalp EEG in µV, from a detached electrode's noise to a movement burst."""


def infer_scale(values: np.ndarray) -> UnitScale:
    """The unit that puts a channel's samples in the EEG range, from their spread: V, mV or µV.

    Used for a channel whose unit is missing or unknown (the OpenBCI GUI sends none); a signal without any
    spread cannot tell, and stays µV (the quality checks will call it flat).
    """
    finite = values[np.isfinite(values)]
    spread = float(np.std(finite)) if finite.size else 0.0
    if spread == 0.0:
        return UnitScale("µV", 1.0, assumed=True)
    for unit, factor in (("µV", 1.0), ("mV", 1e3)):
        if spread * factor >= PLAUSIBLE_STD_UV[0]:
            return UnitScale(unit, factor, assumed=True)
    return UnitScale("V", 1e6, assumed=True)


def implausible(scale: UnitScale, values: np.ndarray) -> str:
    """A hint when samples in their declared unit are far outside EEG's range either way, else ""."""
    finite = values[np.isfinite(values)]
    spread_uv = float(np.std(finite)) * scale.factor if finite.size else 0.0
    label = scale.unit or "µV"
    if 0 < spread_uv < PLAUSIBLE_STD_UV[0] / 10:
        return (
            f"the signal is far too small for EEG in {label} (std {spread_uv:.2g} µV): is the stream in "
            "volts or millivolts? check the unit in the stream's channel metadata"
        )
    if spread_uv > PLAUSIBLE_STD_UV[1] * 10:
        return (
            f"the signal is far too large for EEG in {label} (std {spread_uv:.3g} µV): is the stream in "
            "microvolts labelled as volts or millivolts? check the unit in the stream's channel metadata"
        )
    return ""
