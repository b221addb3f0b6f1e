"""Augmentations for transfer: what differs between labs, montages and headbands, applied to the raw
per-epoch features of a training crop *before* the causal normaliser sees them.

The features are ``log_*`` band powers and ``rel_*`` powers relative to their sum, so every augmentation
edits the absolute band powers and then recomputes both parts consistently, as if the signal itself had
been recorded differently:

* per-night spectral shape: a gain per band and a linear tilt across the bands (another montage, amplifier
  or filter; a 50-Hz recording whose band-pass stops at 22.5 Hz is a low beta gain);
* slow drift: a gain ramp over the crop (electrode impedance changing through the night);
* additive noise: a flat noise floor (dry electrodes, mains-free amplifier noise), which lifts the weak high
  bands most;
* artifact epochs: runs of broadband high power (movement) whose quality is bad, so they do not update the
  normaliser, as live.

A constant gain on the whole signal is deliberately absent: the causal normaliser cancels it exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from streamstage.features import BANDS_HZ, LOG_EPS, N_BANDS

BAND_WIDTHS_HZ = np.array([hi - lo for _, lo, hi in BANDS_HZ])
BAND_POSITION = np.linspace(-1.0, 1.0, N_BANDS)
"""Where each band sits for the tilt: -1 for delta, +1 for beta."""


@dataclass(frozen=True)
class TransferAugmentation:
    """Strengths of each augmentation (log-power units unless said); zeros turn one off."""

    band_gain_sd: float = 0.35
    tilt_sd: float = 0.3
    drift_sd: float = 0.3
    noise_prob: float = 0.3
    noise_floor_range: tuple[float, float] = (0.003, 0.1)
    """Noise density relative to the crop's median mean power density over 0.5-30 Hz (log-uniform)."""
    artifact_prob: float = 0.3
    artifact_runs: int = 3
    artifact_max_epochs: int = 6

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["noise_floor_range"] = list(self.noise_floor_range)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TransferAugmentation:
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        if "noise_floor_range" in known:
            known["noise_floor_range"] = tuple(known["noise_floor_range"])
        return cls(**known)


NO_AUGMENTATION = TransferAugmentation(0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0, 0)


def features_from_powers(powers: np.ndarray) -> np.ndarray:
    """Absolute band powers ``(..., 5)`` -> the ten features, exactly as :func:`epoch_features` forms them."""
    total = powers.sum(axis=-1, keepdims=True)
    relative = np.divide(powers, total, out=np.zeros_like(powers), where=total > LOG_EPS)
    return np.concatenate([np.log(powers + LOG_EPS), relative], axis=-1)


def augment_crop(
    features: np.ndarray, good: np.ndarray, config: TransferAugmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One crop's raw features ``(n_epochs, n_channels, 10)`` and quality flags ``(n_epochs,)`` -> augmented
    copies. Each channel gets its own spectral shape (channels are recorded by different electrodes)."""
    n_epochs, n_channels, _ = features.shape
    powers = np.maximum(np.exp(features[..., :N_BANDS].astype(np.float64)) - LOG_EPS, 0.0)
    log_gain = rng.normal(0.0, config.band_gain_sd, (n_channels, N_BANDS))
    log_gain += rng.normal(0.0, config.tilt_sd, (n_channels, 1)) * BAND_POSITION
    ramp = np.linspace(0.0, 1.0, n_epochs)[:, None, None]
    log_gain = log_gain + ramp * rng.normal(0.0, config.drift_sd, (1, n_channels, 1))
    powers = powers * np.exp(log_gain)
    typical_density = np.median(powers.sum(axis=-1), axis=0) / BAND_WIDTHS_HZ.sum()
    if rng.random() < config.noise_prob:
        low, high = config.noise_floor_range
        level = np.exp(rng.uniform(np.log(low), np.log(high), n_channels)) * typical_density
        powers = powers + level[None, :, None] * BAND_WIDTHS_HZ
    good = good.copy()
    if rng.random() < config.artifact_prob:
        for _ in range(config.artifact_runs):
            length = int(rng.integers(1, config.artifact_max_epochs + 1))
            start = int(rng.integers(0, max(1, n_epochs - length)))
            strength = np.exp(rng.uniform(np.log(3.0), np.log(100.0)))
            powers[start : start + length] += strength * typical_density[:, None] * BAND_WIDTHS_HZ
            good[start : start + length] = False
    return features_from_powers(powers).astype(np.float32), good
