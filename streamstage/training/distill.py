"""Distilling the raw front end without labels: at each epoch's end it must give the recipe's features.

The teacher is deterministic: :func:`~streamstage.features.epoch_features` of the epochs the signal path
emits. The student reads the very samples the pipeline hands it (:meth:`SignalPath.push_resampled`), so a
:class:`FeatureStream` is one channel of one recording as both see it. Training streams are synthetic nights
with randomised spectra, gains and artifact rates (:func:`randomised_streams`) and real EEG channels;
fidelity (R² and worst error per feature) is measured on channels and recordings it never trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamstage.features import FEATURE_NAMES, N_FEATURES, epoch_features
from streamstage.model.raw_frontend import RawFrontEnd
from streamstage.offline import RecordingSource, recording_signal
from streamstage.signal.path import Epoch, SignalPath
from streamstage.sim import MONTAGES, SyntheticEEG, synthetic_hypnogram

SYNTHETIC_RATES_HZ = (100.0, 128.0, 200.0, 250.0, 256.0, 500.0)
SPECTRAL_KNOTS_HZ = np.array([0.5, 2.0, 4.0, 8.0, 12.0, 16.0, 30.0, 60.0])


@dataclass(frozen=True)
class FeatureStream:
    """One channel of one recording as the pipeline sees it: the filtered samples at the model rate, cut
    to whole epochs ``(n_epochs * epoch_len,)``, and the recipe features of its epochs ``(n_epochs, 10)``."""

    name: str
    samples: np.ndarray
    features: np.ndarray
    good: np.ndarray
    """(n_epochs,): each epoch's quality verdict (False: it would not move the live normaliser)."""

    @property
    def n_epochs(self) -> int:
        return len(self.features)


def signal_path_streams(
    pushed: Iterable[tuple[np.ndarray, list[Epoch]]], names: Sequence[str]
) -> list[FeatureStream]:
    """What a :class:`SignalPath` gave, push by push (its samples at the model rate and the epochs they
    completed), as one stream per channel."""
    samples, features, good, epoch_len = [], [], [], 0
    for resampled, epochs in pushed:
        samples.append(resampled)
        for epoch in epochs:
            epoch_len = epoch.data_uv.shape[-1]
            features.append(epoch_features(epoch.data_uv))
            good.append(epoch.quality.ok)
    joined = np.concatenate(samples)[: len(features) * epoch_len].astype(np.float32)
    table = np.asarray(features, dtype=np.float32).reshape(len(features), len(names), N_FEATURES)
    flags = np.asarray(good, dtype=bool)
    return [FeatureStream(name, joined[:, c], table[:, c], flags) for c, name in enumerate(names)]


def recording_streams(path: Path, channels: Sequence[str]) -> list[FeatureStream]:
    """Channels of an EDF/XDF recording, each as a stream named ``file:channel``, read as staging reads it
    (:func:`~streamstage.offline.recording_signal`: units, missing samples, source clipping)."""
    source = RecordingSource.open(path, channels)
    names = [f"{Path(path).name}:{label}" for label in source.channel_labels]
    return signal_path_streams(recording_signal(source), names)


def _recoloured(night: np.ndarray, sfreq: float, rng: np.random.Generator) -> np.ndarray:
    """The night through a random smooth spectral gain (±1 octave of amplitude at 0.5-60 Hz knots)."""
    spectrum = np.fft.rfft(night, axis=-1)
    freqs = np.fft.rfftfreq(night.shape[-1], 1.0 / sfreq)
    log_gain = np.interp(np.log(np.maximum(freqs, 0.1)), np.log(SPECTRAL_KNOTS_HZ), rng.normal(0, 0.5, 8))
    return np.fft.irfft(spectrum * np.exp(log_gain), n=night.shape[-1], axis=-1)


def randomised_streams(n_nights: int, n_epochs: int, seed: int = 0) -> list[FeatureStream]:
    """Synthetic nights of ``n_epochs`` (a random stretch of a plausible hypnogram), each of a random
    montage channel, rate, gain (0.2-5x), spectral colouring and artifact rate (0-40 per hour)."""
    rng = np.random.default_rng(seed)
    streams = []
    for night in range(n_nights):
        hypnogram = synthetic_hypnogram(8.0, seed=seed * 1000 + night)
        start = int(rng.integers(0, len(hypnogram) - n_epochs))
        sfreq = float(rng.choice(SYNTHETIC_RATES_HZ))
        montage = MONTAGES[str(rng.choice(sorted(MONTAGES)))]
        eeg = SyntheticEEG(
            hypnogram[start : start + n_epochs],
            sfreq,
            seed=int(rng.integers(1 << 30)),
            montage=montage,
            artifact_rate_per_h=float(rng.uniform(0, 40)),
        )
        channel = int(rng.integers(len(montage.ch_names)))
        signal = _recoloured(eeg.generate()[channel].astype(np.float64), sfreq, rng)
        signal *= float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
        name = f"synthetic {night} {montage.ch_names[channel]} {sfreq:g} Hz"
        chunks = np.array_split(signal[:, None], max(1, len(signal) // round(60 * sfreq)))
        path = SignalPath(sfreq, 1)
        streams += signal_path_streams((path.push_resampled(chunk) for chunk in chunks), [name])
    return streams


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 300
    batch_size: int = 6
    crop_epochs: int = 5
    warmup_epochs: int = 1
    """Epochs before a crop's scored ones, so filter and Mamba start from a filled history."""
    learning_rate: float = 2e-3
    conv_learning_rate: float = 1e-4
    seed: int = 0


def feature_scale(features: np.ndarray) -> torch.Tensor:
    """One over each recipe feature's variance over ``features (..., 10)``: weights that make the
    :func:`feature_loss` one minus R²."""
    return torch.from_numpy(1.0 / features.reshape(-1, N_FEATURES).var(axis=0)).float()


def feature_loss(predicted: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the recipe features ``(..., 10)``, each over its variance."""
    return ((predicted[..., :N_FEATURES] - target) ** 2 * scale).mean()


def distill(
    front_end: RawFrontEnd, streams: Sequence[FeatureStream], config: DistillConfig = DistillConfig()
) -> list[dict[str, float]]:
    """Fit the front end to the streams' features: mean squared error of every feature over its variance
    (one minus R², averaged over features), on random crops; returns the loss every 25 steps."""
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    scale = feature_scale(np.concatenate([s.features for s in streams]))
    conv = [front_end.spectral_conv.weight]
    rest = [p for n, p in front_end.named_parameters() if not n.startswith(("spectral_conv", "extra"))]
    optimizer = torch.optim.Adam(
        [{"params": conv, "lr": config.conv_learning_rate}, {"params": rest, "lr": config.learning_rate}]
    )
    epoch_len = front_end.config.epoch_samples
    span = config.warmup_epochs + config.crop_epochs
    usable = [s for s in streams if s.n_epochs >= span]
    weights = np.array([s.n_epochs for s in usable], dtype=np.float64)
    history, running = [], 0.0
    front_end.train()
    for step in range(1, config.steps + 1):
        rows = rng.choice(len(usable), size=config.batch_size, p=weights / weights.sum())
        crops, wanted = [], []
        for row in rows:
            stream = usable[row]
            first = int(rng.integers(0, stream.n_epochs - span + 1))
            crops.append(stream.samples[first * epoch_len : (first + span) * epoch_len])
            wanted.append(stream.features[first + config.warmup_epochs : first + span])
        features = front_end(torch.from_numpy(np.stack(crops)))[:, config.warmup_epochs :]
        loss = feature_loss(features, torch.from_numpy(np.stack(wanted)), scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        if step % 25 == 0:
            history.append({"step": step, "loss": round(running / 25, 5)})
            running = 0.0
    front_end.eval()
    return history


def _predicted(front_end: RawFrontEnd, streams: Sequence[FeatureStream]) -> np.ndarray:
    with torch.no_grad():
        outputs = [front_end(torch.from_numpy(s.samples)[None])[0, :, :N_FEATURES].numpy() for s in streams]
    return np.concatenate(outputs)


def fidelity(front_end: RawFrontEnd, streams: Sequence[FeatureStream]) -> dict[str, Any]:
    """R² and worst absolute error of every feature, pooled over the epochs of ``streams``."""
    predicted, target = _predicted(front_end, streams), np.concatenate([s.features for s in streams])
    residual = ((predicted - target) ** 2).sum(axis=0)
    spread = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    worst = np.abs(predicted - target).max(axis=0)
    return {
        "n_epochs": len(target),
        "streams": [s.name for s in streams],
        "features": {
            name: {"r2": round(float(1 - r / s), 6), "worst_abs_error": float(f"{w:.3g}")}
            for name, r, s, w in zip(FEATURE_NAMES, residual, spread, worst, strict=True)
        },
        "min_r2": round(float((1 - residual / spread).min()), 6),
    }
