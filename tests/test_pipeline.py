"""The whole live path (signal path + features + Mamba step) is chunk-invariant and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG
from streamstage.state_io import state_from_bytes, state_to_bytes

SFREQ = 256.0
HYPNOGRAM = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4])


@pytest.fixture(scope="module")
def model() -> StagingModel:
    torch.manual_seed(0)
    return StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=2)).eval())


@pytest.fixture(scope="module")
def night() -> np.ndarray:
    return SyntheticEEG(HYPNOGRAM, SFREQ, seed=3).generate().T.astype(np.float64)


def _run(model: StagingModel, samples: np.ndarray, sizes: list[int]) -> list:
    pipeline = StagingPipeline(model, SFREQ)
    staged, start = [], 0
    for size in sizes:
        staged.extend(pipeline.push(samples[start : start + size]))
        start += size
    staged.extend(pipeline.push(samples[start:]))
    return staged + pipeline.finish()


@pytest.fixture(scope="module")
def one_pass(model, night) -> list:
    return _run(model, night, [])


def test_one_pass_stages_every_complete_epoch(one_pass):
    assert [e.index for e in one_pass] == list(range(len(HYPNOGRAM)))
    assert [e.start_s for e in one_pass] == [30.0 * i for i in range(len(HYPNOGRAM))]
    for epoch in one_pass:
        assert sum(epoch.probs) == pytest.approx(1.0)
        assert epoch.quality == "good"


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 20_000), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_probabilities(model, night, one_pass, sizes):
    chunked = _run(model, night, sizes)
    assert [e.index for e in chunked] == [e.index for e in one_pass]
    difference = max(
        np.abs(np.subtract(a.probs, b.probs)).max() for a, b in zip(chunked, one_pass, strict=True)
    )
    assert difference < 1e-6


def test_single_sample_chunks_match(model, night, one_pass):
    short = night[: int(3.2 * 30 * SFREQ)]
    pipeline = StagingPipeline(model, SFREQ)
    staged = [e for i in range(len(short)) for e in pipeline.push(short[i : i + 1])]
    assert len(staged) == 3
    for a, b in zip(staged, one_pass, strict=False):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_state_saved_mid_night_continues_identically(model, night, one_pass):
    cut = int(4.5 * 30 * SFREQ)
    first = StagingPipeline(model, SFREQ)
    before = first.push(night[:cut])
    saved = state_from_bytes(state_to_bytes(first.state_dict()))
    resumed = StagingPipeline(model, SFREQ)
    resumed.load_state_dict(saved)
    after = resumed.push(night[cut:]) + resumed.finish()
    assert [e.index for e in before + after] == [e.index for e in one_pass]
    for a, b in zip(before + after, one_pass, strict=True):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_bad_epochs_are_staged_and_flagged(model, night):
    damaged = night.copy()
    damaged[int(2 * 30 * SFREQ) : int(3 * 30 * SFREQ)] = np.nan
    damaged[int(5 * 30 * SFREQ) : int(6 * 30 * SFREQ)] = 0.0
    pipeline = StagingPipeline(model, SFREQ)
    staged = pipeline.push(damaged) + pipeline.finish()
    flags = [e.quality for e in staged]
    assert len(staged) == len(HYPNOGRAM)
    assert flags[2] == "missing" and flags[5] == "flat"
    assert flags.count("good") == len(HYPNOGRAM) - 2
    assert all(np.isfinite(e.probs).all() for e in staged)


def test_bad_epoch_does_not_move_the_normaliser(model, night):
    clean = StagingPipeline(model, SFREQ)
    clean.push(night[: int(2 * 30 * SFREQ) + 600])
    mean_before = clean.stager.normalizer.state_dict()["mean"].copy()
    gap = np.full((int(30 * SFREQ), 1), np.nan)
    clean.push(gap)
    np.testing.assert_array_equal(clean.stager.normalizer.state_dict()["mean"], mean_before)
