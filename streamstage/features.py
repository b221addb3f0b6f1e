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

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sp_fft
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
    """Absolute band powers of epochs shaped ``(..., n_times)`` -> ``(..., 5)``.

    The training recipe's Welch PSD and band integrals, computed as ``scipy.signal.welch`` and
    ``np.trapezoid`` would (equal to 1e-9 relative, tested against them) at a fraction of their per-call
    overhead; any other recipe, or epochs shorter than a segment, goes through scipy itself.
    """
    data = np.asarray(epochs, dtype=np.float64)
    if recipe != RECIPE or data.shape[-1] < recipe.nperseg:
        return _scipy_band_powers(data, recipe)
    plan = _welch_plan(data.shape[-1])
    frames = np.lib.stride_tricks.sliding_window_view(data, recipe.nperseg, axis=-1)[..., :: plan.step, :]
    frames = (frames - frames.mean(axis=-1, keepdims=True)) * plan.window
    spectrum = sp_fft.rfft(frames, n=recipe.nfft, axis=-1)
    periodogram = spectrum.real**2 + spectrum.imag**2
    psd = np.maximum(np.median(periodogram, axis=-2) * plan.scale, 0.0)
    return np.maximum(psd @ plan.band_weights, 0.0)


@dataclass(frozen=True)
class _WelchPlan:
    """What the training recipe's PSD and band integrals need for one epoch length, computed once."""

    step: int
    window: np.ndarray
    """(nperseg,): scipy's periodic hamming window."""
    scale: np.ndarray
    """(n_freqs,): density scaling, the one-sided doubling and the median bias in one factor per bin."""
    band_weights: np.ndarray
    """(n_freqs, 5): the trapezoid over each closed band as a weight per bin."""


@functools.lru_cache(maxsize=8)
def _welch_plan(n_times: int) -> _WelchPlan:
    recipe = RECIPE
    window = sps.get_window(recipe.window, recipe.nperseg)
    step = recipe.nperseg - recipe.noverlap
    n_segments = (n_times - recipe.nperseg) // step + 1
    freqs = sp_fft.rfftfreq(recipe.nfft, 1.0 / recipe.sfreq_hz)
    scale = np.full(len(freqs), 1.0 / (recipe.sfreq_hz * np.sum(window**2)))
    scale[1 : None if recipe.nfft % 2 else -1] *= 2.0  # one-sided: the Nyquist bin of an even nfft is single
    halves = 2.0 * np.arange(1, (n_segments - 1) // 2 + 1)
    scale /= 1.0 + np.sum(1.0 / (halves + 1.0) - 1.0 / halves)  # scipy's median bias
    band_weights = np.zeros((len(freqs), N_BANDS))
    for band, (_, lo, hi) in enumerate(BANDS_HZ):
        (inside,) = np.nonzero((freqs >= lo) & (freqs <= hi))
        widths = np.diff(freqs[inside]) / 2.0
        band_weights[inside[:-1], band] += widths
        band_weights[inside[1:], band] += widths
    return _WelchPlan(step, window, scale, band_weights)


def _scipy_band_powers(data: np.ndarray, recipe: WelchRecipe) -> np.ndarray:
    """:func:`band_powers` by ``scipy.signal.welch`` and ``np.trapezoid``, for any recipe."""
    freqs, psd = sps.welch(
        data,
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


REL_LOG_EPS = 1e-6


def relative_logs(features: np.ndarray) -> np.ndarray:
    """``log(rel + 1e-6)`` of features ``(..., 10)``: what the stage anchor's classifier reads."""
    relative = np.clip(np.asarray(features, dtype=np.float64)[..., N_BANDS:N_FEATURES], 0.0, None)
    return np.log(relative + REL_LOG_EPS)


@dataclass(frozen=True)
class StageAnchor:
    """A population prior that keeps a young reference from taking the stage it was built in for average.

    A plain running mean started in N3 makes N3 look like the night's average. The anchor guesses each
    epoch's stage from its relative powers alone (a linear classifier on their logs: gain-free), and the
    reference averages ``log - E[log - reference | stage]`` instead of ``log``, with the expected offsets of
    each stage measured on settled training nights. Over a whole night the offsets average out, so the
    reference lands where the plain mean does; right after a join it lands there at once. Still exactly
    gain-invariant: a gain moves every log power and the reference alike.
    """

    stage_offsets: np.ndarray
    """(n_channels, n_stages, 5): mean of ``log - reference`` per stage on settled nights."""
    weights: np.ndarray
    """(n_channels, 5, n_stages): the classifier on ``log(rel + 1e-6)``."""
    bias: np.ndarray
    """(n_channels, n_stages)."""

    def expected_offset(self, features: np.ndarray) -> np.ndarray:
        """``E[log - reference]`` under the stage guessed from relative powers: (B, C, 10) -> (B, C, 5)."""
        rel_log = relative_logs(features)
        logits = np.einsum("bcf,cfs->bcs", rel_log, self.weights) + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=-1, keepdims=True)
        return np.einsum("bcs,csf->bcf", probs, self.stage_offsets)

    def to_dict(self) -> dict[str, Any]:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("stage_offsets", "weights", "bias")}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> StageAnchor:
        names = ("stage_offsets", "weights", "bias")
        return cls(**{k: np.asarray(record[k], dtype=np.float64) for k in names})


@dataclass(frozen=True)
class NormalizerConfig:
    """Causal running mean of the log powers: a cumulative mean for the first ``horizon_epochs`` epochs,
    then an exponential moving average over that horizon (120 epochs = 1 h); ``anchor`` (fitted on the
    training nights when ``anchored``) makes a reference started mid-night right at once.

    ``method="night_zscore"`` z-scores every feature over the whole night instead: an offline reference
    that measures what causality costs; such a model cannot run live.
    """

    horizon_epochs: int = 120
    method: str = CAUSAL
    anchored: bool = False
    anchor: StageAnchor | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"method": self.method, "horizon_epochs": self.horizon_epochs}
        if self.anchored:
            record["anchored"] = True
            record["anchor"] = None if self.anchor is None else self.anchor.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> NormalizerConfig:
        anchor = record.get("anchor")
        return cls(
            horizon_epochs=int(record["horizon_epochs"]),
            method=str(record.get("method", CAUSAL)),
            anchored=bool(record.get("anchored", False)),
            anchor=None if anchor is None else StageAnchor.from_dict(anchor),
        )


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

    With ``batch_size`` it carries that many independent streams (nights in evaluation, crops in training)
    and :meth:`push_batch` steps them together; :meth:`push` is the single stream of the live pipeline.
    Both run the same arithmetic, so training inputs, evaluation and live staging are normalised alike.
    """

    def __init__(
        self, n_channels: int, config: NormalizerConfig = NormalizerConfig(), batch_size: int | None = None
    ) -> None:
        self.config = config
        self.n_channels = n_channels
        self.batch_size = batch_size
        streams = 1 if batch_size is None else batch_size
        self._mean = np.zeros((streams, n_channels, N_BANDS), dtype=np.float64)
        self._count = np.zeros(streams, dtype=np.int64)

    def push_batch(self, features: np.ndarray, update: np.ndarray | bool = True) -> np.ndarray:
        """Normalise one epoch of every stream, ``(batch, n_channels, 10)`` -> float32 of that shape.

        ``update`` (one flag per stream) is False for a bad-quality epoch: it is normalised against the
        current mean without moving it; before any epoch has updated a stream's mean, the epoch's own log
        powers serve as its reference.
        """
        features = np.asarray(features, dtype=np.float64)
        update = np.broadcast_to(np.asarray(update, dtype=bool), self._count.shape)
        target = features[:, :, :N_BANDS]
        if self.config.anchor is not None:
            target = target - self.config.anchor.expected_offset(features)
        alpha = np.maximum(1.0 / (self._count + 1), 1.0 / self.config.horizon_epochs)
        step = np.where(update, alpha, 0.0)[:, None, None]
        self._mean += step * (target - self._mean)
        self._count += update
        reference = np.where((self._count > 0)[:, None, None], self._mean, target)
        out = features.copy()
        out[:, :, :N_BANDS] -= reference
        return out.astype(np.float32)

    def push(self, features: np.ndarray, update: bool = True) -> np.ndarray:
        """Normalise one epoch's features ``(n_channels, 10)`` of a single stream."""
        return self.push_batch(np.asarray(features)[None], update)[0]

    def transform_night(self, features: np.ndarray, update: np.ndarray | None = None) -> np.ndarray:
        """Normalise a whole night ``(n_epochs, n_channels, 10)`` epoch by epoch, as live; ``update`` holds
        one flag per epoch (False: bad quality), all True by default."""
        flags = np.ones(len(features), dtype=bool) if update is None else np.asarray(update, dtype=bool)
        if not len(features):
            return np.asarray(features, dtype=np.float32).copy()
        return np.stack([self.push(epoch, bool(ok)) for epoch, ok in zip(features, flags, strict=True)])

    def state_dict(self) -> dict[str, Any]:
        if self.batch_size is not None:
            return {"mean": self._mean.copy(), "count": self._count.copy()}
        return {"mean": self._mean[0].copy(), "count": int(self._count[0])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = np.asarray(state["mean"], dtype=np.float64)
        expected = self._mean.shape if self.batch_size is not None else self._mean.shape[1:]
        if mean.shape != expected:
            raise ValueError(f"normaliser state has shape {mean.shape}, expected {expected}")
        self._mean = mean.reshape(self._mean.shape).copy()
        self._count = np.asarray(state["count"], dtype=np.int64).reshape(self._count.shape).copy()
