"""Label-free distillation: the streams carry what the pipeline's front end reads and what the recipe
computes; the trainer lowers the feature error of a front end that starts off the recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.training.distill import DistillConfig, distill, fidelity, randomised_streams

SMALL = FrontEndConfig(d_model=8, n_layers=1, d_state=4, n_extra=2)


@pytest.fixture(scope="module")
def streams() -> list:
    return randomised_streams(n_nights=3, n_epochs=4, seed=1)


def test_randomised_streams_hold_whole_epochs_of_samples_and_their_features(streams) -> None:
    assert len({s.name for s in streams}) == 3
    for stream in streams:  # the last epoch waits on the resampler's look-ahead, which never comes
        assert stream.features.shape == (3, 10)
        assert stream.samples.shape == (3 * 3000,)
        assert np.all(np.isfinite(stream.samples))


def test_a_fresh_front_end_reproduces_the_streams_features(streams) -> None:
    record = fidelity(RawFrontEnd(SMALL), streams)
    assert record["n_epochs"] == 9
    assert record["min_r2"] > 0.9999
    assert all(f["worst_abs_error"] < 1e-3 for f in record["features"].values())


def test_distillation_lowers_the_error_of_a_front_end_off_the_recipe(streams) -> None:
    torch.manual_seed(0)
    front_end = RawFrontEnd(SMALL)
    with torch.no_grad():
        front_end.spectral_conv.weight.mul_(1.5)  # every power 2.25x: the log features off by 0.8
    before = fidelity(front_end, streams)
    config = DistillConfig(steps=50, batch_size=2, crop_epochs=2, warmup_epochs=0, learning_rate=0.05)
    history = distill(front_end, streams, config)
    after = fidelity(front_end, streams)
    assert history[-1]["loss"] < history[0]["loss"]
    errors = [
        (before["features"][n]["worst_abs_error"], after["features"][n]["worst_abs_error"])
        for n in ("log_delta", "log_beta")
    ]
    assert all(late < early / 2 for early, late in errors)
