"""The streaming signal path: channel selection, units, band-pass, resampling, quality and epochs.

Typical use: resolve a :class:`Montage` once from the source's labels, scale each chunk with
:func:`scale_to_uv`, apply the montage, and push the result into a :class:`SignalPath`, which returns
filtered 30-s :class:`Epoch` objects at the model rate with their :class:`EpochQuality`.
"""

from __future__ import annotations

from streamstage.signal.bandpass import Bandpass, design_bandpass
from streamstage.signal.channels import (
    Derivation,
    Montage,
    normalise_label,
    resolve_channel,
    resolve_derivation,
)
from streamstage.signal.epochs import EpochBuffer, EpochSamples
from streamstage.signal.path import MAX_SFREQ_HZ, MIN_SFREQ_HZ, Epoch, SignalConfig, SignalPath
from streamstage.signal.quality import FLAGS, EpochQuality, QualityThresholds, assess, worst_quality
from streamstage.signal.quality_meter import QualityMeter
from streamstage.signal.resample import Resampler, sfreq_ratio
from streamstage.signal.units import UnitScale, scale_to_uv

__all__ = [
    "FLAGS",
    "MAX_SFREQ_HZ",
    "MIN_SFREQ_HZ",
    "Bandpass",
    "Derivation",
    "Epoch",
    "EpochBuffer",
    "EpochQuality",
    "EpochSamples",
    "Montage",
    "QualityMeter",
    "QualityThresholds",
    "Resampler",
    "SignalConfig",
    "SignalPath",
    "UnitScale",
    "assess",
    "design_bandpass",
    "normalise_label",
    "resolve_channel",
    "resolve_derivation",
    "scale_to_uv",
    "sfreq_ratio",
    "worst_quality",
]
