"""Per-epoch cost and memory of the live path (features + normaliser + one Mamba step) deep into a stream.

The claim under test: epoch 8640 (72 h) costs what epoch 120 (1 h) costs, and the state stepped through them
has the same size. Each epoch's Welch features and model step are timed separately, so the model's part
can be set beside the Transformer baselines, which step over the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.measure import MB, at_marks, rss_bytes
from streamstage.epoch_stager import EpochStager
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel


def bench_live_path(
    model: StagingModel, epochs: np.ndarray, marks_epochs: Sequence[int], window: int
) -> dict[str, Any]:
    """Step ``max(marks_epochs)`` epochs (cycling ``epochs``, ``(n, n_channels, 3000)`` at 100 Hz) and
    summarise the last ``window`` of them at each mark, with resident memory and the model state's size."""
    stager = EpochStager(model)

    def step(index: int) -> dict[str, float]:
        started = time.perf_counter()
        features = epoch_features(epochs[index % len(epochs)])
        featured = time.perf_counter()
        stager.push(features)
        stepped = time.perf_counter()
        return {"features": featured - started, "step": stepped - featured, "live_path": stepped - started}

    def snapshot() -> dict[str, Any]:
        return {"rss_mb": rss_bytes() / MB, "state_bytes": stager.state.nbytes}

    return {
        "model": model.source,
        "config": model.config.to_dict(),
        "n_parameters": model.n_parameters(),
        "window_epochs": window,
        "marks": at_marks(step, marks_epochs, window, snapshot),
    }
