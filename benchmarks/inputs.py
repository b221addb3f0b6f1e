"""What the benchmarks feed: the model, synthetic 30-s epochs and their tokens, and a synthetic night file.

The cost of a step does not depend on the values stepped over, so the long-stream sections cycle through a
few dozen distinct synthetic epochs instead of generating 72 hours of samples. The night file is written
once per run (8 h at 256 Hz is about 15 MB of EDF) into a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np

from streamstage.errors import ModelError
from streamstage.features import FEATURE_SFREQ_HZ, CausalNormalizer, epoch_features
from streamstage.model.checkpoint import StagingModel, load_model
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.sim import SyntheticEEG, synthetic_hypnogram

CHANNEL = "Fpz-Cz"
PHYSICAL_RANGE_UV = (-5000.0, 5000.0)
UNTRAINED = "untrained StagingNet(StagerConfig()) (the default size; costs the same as trained weights)"


def bench_model(path: Path | None = None) -> StagingModel:
    """The model to time: ``path``, else the shipped model, else an untrained net of the default config."""
    if path is not None:
        return load_model(path)
    try:
        return load_model()
    except ModelError:
        model = StagingModel(net=StagingNet(StagerConfig()), source=UNTRAINED)
        model.net.eval()
        return model


def synthetic_epochs(n_distinct: int, n_channels: int = 1, seed: int = 0) -> np.ndarray:
    """``(n_distinct, n_channels, 3000)`` float64 µV epochs at 100 Hz, cycling through all five stages."""
    hypnogram = np.arange(n_distinct) % 5
    night = SyntheticEEG(hypnogram, FEATURE_SFREQ_HZ, seed=seed).generate()[0]
    epochs = night.reshape(n_distinct, 1, -1).astype(np.float64)
    return np.repeat(epochs, n_channels, axis=1)


def epoch_tokens(epochs: np.ndarray, n_epochs: int) -> np.ndarray:
    """Normalised features ``(n_epochs, n_channels, 10)`` float32 of ``epochs`` repeated cyclically: the
    tokens every model steps over, as the live normaliser would hand them out."""
    features = epoch_features(epochs)
    cycled = features[np.arange(n_epochs) % len(features)]
    return CausalNormalizer(epochs.shape[1]).transform_night(cycled)


def synthetic_night(hours: float, sfreq_hz: float, seed: int = 0) -> np.ndarray:
    """One channel of a synthetic night following a plausible hypnogram, ``(n_samples,)`` float32 µV."""
    return SyntheticEEG(synthetic_hypnogram(hours, seed), sfreq_hz, seed=seed).generate()[0]


def write_night_edf(path: Path, night_uv: np.ndarray, sfreq_hz: float) -> Path:
    """Write ``night_uv`` as a one-channel EDF labelled :data:`CHANNEL`, clipped to its physical range."""
    signal = edfio.EdfSignal(
        np.clip(night_uv, *PHYSICAL_RANGE_UV).astype(np.float64),
        sampling_frequency=sfreq_hz,
        label=CHANNEL,
        physical_dimension="uV",
        physical_range=PHYSICAL_RANGE_UV,
    )
    edfio.Edf([signal]).write(path)
    return path
