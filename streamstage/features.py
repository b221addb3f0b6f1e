"""Per-epoch spectral features and their causal normalisation.

The shipped model was trained on the Sleep-EDF feature set (see ``MODEL_CARD.md``), so live features must
follow its recipe exactly: Welch PSD (hamming, nperseg = nfft = 400, noverlap = 200, median average,
constant detrend, density scaling) of one 30-s epoch at 100 Hz; band power is the trapezoidal integral of the
PSD over the closed band ``[lo, hi]``; ``log_*`` is ``ln(power + 1e-10)`` and ``rel_*`` is the band power
over the sum of the five bands.

The producer z-scored each whole recording before computing features, which no live system can do. The
:class:`CausalNormalizer` makes features invariant to the signal's gain using only the past: relative powers
are scale-free already, and each log power is replaced by its difference from a causal running mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal as sps

BANDS_HZ: tuple[tuple[str, float, float], ...] = (
    ("delta", 0.5, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 12.0),
    ("sigma", 12.0, 16.0),
    ("beta", 16.0, 30.0),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f"log_{name}" for name, _, _ in BANDS_HZ) + tuple(
    f"rel_{name}" for name, _, _ in BANDS_HZ
)
N_BANDS = len(BANDS_HZ)
N_FEATURES = len(FEATURE_NAMES)
FEATURE_SFREQ_HZ = 100.0
LOG_EPS = 1e-10


@dataclass(frozen=True)
class WelchRecipe:
    """The Welch settings of the training set; stored in every checkpoint so a mismatch is detectable."""

    sfreq_hz: float = FEATURE_SFREQ_HZ
    window: str = "hamming"
    nperseg: int = 400
    noverlap: int = 200
    nfft: int = 400
    average: str = "median"
    detrend: str = "constant"
    scaling: str = "density"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


RECIPE = WelchRecipe()


def band_powers(epochs: np.ndarray, recipe: WelchRecipe = RECIPE) -> np.ndarray:
    """Absolute band powers of epochs shaped ``(..., n_times)`` -> ``(..., 5)``."""
    freqs, psd = sps.welch(
        np.asarray(epochs, dtype=np.float64),
        fs=recipe.sfreq_hz,
        window=recipe.window,
        nperseg=recipe.nperseg,
        noverlap=recipe.noverlap,
        nfft=recipe.nfft,
        detrend=recipe.detrend,
        scaling=recipe.scaling,
        average=recipe.average,
        axis=-1,
    )
    psd = np.maximum(psd, 0.0)
    powers = [
        np.trapezoid(psd[..., (freqs >= lo) & (freqs <= hi)], freqs[(freqs >= lo) & (freqs <= hi)], axis=-1)
        for _, lo, hi in BANDS_HZ
    ]
    return np.maximum(np.stack(powers, axis=-1), 0.0)


def epoch_features(epochs: np.ndarray, recipe: WelchRecipe = RECIPE) -> np.ndarray:
    """Training-recipe features of epochs ``(..., n_times)`` -> ``(..., 10)`` float32.

    Order: ``log_delta .. log_beta, rel_delta .. rel_beta``.
    """
    powers = band_powers(epochs, recipe)
    total = powers.sum(axis=-1, keepdims=True)
    relative = np.divide(powers, total, out=np.zeros_like(powers), where=total > LOG_EPS)
    return np.concatenate([np.log(powers + LOG_EPS), relative], axis=-1).astype(np.float32)


CAUSAL = "causal_running_mean"
NIGHT_ZSCORE = "night_zscore"


@dataclass(frozen=True)
class NormalizerConfig:
    """Causal running mean of the log powers: a cumulative mean for the first ``horizon_epochs`` epochs,
    then an exponential moving average over that horizon (120 epochs = 1 h).

    ``method="night_zscore"`` z-scores every feature over the whole night instead: an offline reference
    that measures what causality costs; such a model cannot run live.
    """

    horizon_epochs: int = 120
    method: str = CAUSAL

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "horizon_epochs": self.horizon_epochs}


def zscore_night(features: np.ndarray) -> np.ndarray:
    """Offline reference normalisation: each feature z-scored over the whole night ``(n, channels, 10)``."""
    mean = features.mean(axis=0, keepdims=True)
    std = features.std(axis=0, keepdims=True) + 1e-6
    return ((features - mean) / std).astype(np.float32)


class CausalNormalizer:
    """Streams epoch features ``(n_channels, 10)`` into gain-invariant model inputs.

    ``m_t = m_{t-1} + a_t (x_t - m_{t-1})`` with ``a_t = max(1/(t+1), 1/horizon)``, the current epoch
    included; the output is ``[log - m_t, rel]``. A gain ``g`` on the signal shifts every log power by
    ``2 ln g`` and the running mean by the same amount, so the output is exactly unchanged. State is
    ``O(channels)``: constant however long the night.
    """

    def __init__(self, n_channels: int, config: NormalizerConfig = NormalizerConfig()) -> None:
        self.config = config
        self.n_channels = n_channels
        self._mean = np.zeros((n_channels, N_BANDS), dtype=np.float64)
        self._count = 0

    def push(self, features: np.ndarray, update: bool = True) -> np.ndarray:
        """Normalise one epoch's features ``(n_channels, 10)``; returns float32 of the same shape.

        ``update=False`` normalises against the current mean without moving it (a bad-quality epoch); before
        any epoch has updated it, the epoch's own log powers serve as the reference.
        """
        features = np.asarray(features, dtype=np.float64)
        if update:
            alpha = max(1.0 / (self._count + 1), 1.0 / self.config.horizon_epochs)
            self._mean += alpha * (features[:, :N_BANDS] - self._mean)
            self._count += 1
        reference = self._mean if self._count else features[:, :N_BANDS]
        out = features.copy()
        out[:, :N_BANDS] -= reference
        return out.astype(np.float32)

    def transform_night(self, features: np.ndarray) -> np.ndarray:
        """Normalise a whole night ``(n_epochs, n_channels, 10)`` epoch by epoch, as live."""
        return np.stack([self.push(epoch) for epoch in features]) if len(features) else features.copy()

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self._mean.copy(), "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        if mean.shape != self._mean.shape:
            raise ValueError(f"normaliser state has shape {mean.shape}, expected {self._mean.shape}")
        self._mean = mean.copy()
        self._count = int(state["count"])
