"""A raw model in the one pipeline: chunk-invariant, resumable mid-epoch, checkpointed, and its provisional
stages are peeks that leave the committed stages as they are."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch

from streamstage.epoch_stager import EpochStager
from streamstage.errors import ResumeError
from streamstage.model.checkpoint import StagingModel, load_model, save_model
from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.model.raw_model import raw_model, widened
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG
from streamstage.state_io import state_from_bytes, state_to_bytes

SFREQ = 256.0
HYPNOGRAM = np.array([0, 1, 2, 2, 3, 4])
SMALL = FrontEndConfig(d_model=8, n_layers=1, d_state=4, n_extra=2)


@pytest.fixture(scope="module")
def feature_model() -> StagingModel:
    torch.manual_seed(0)
    return StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())


@pytest.fixture(scope="module")
def model(feature_model: StagingModel) -> StagingModel:
    torch.manual_seed(1)
    stacked = raw_model(feature_model, RawFrontEnd(SMALL).eval())
    with torch.no_grad():  # the extras reach the stages, as after fine-tuning
        stacked.net.embed[0].weight.normal_(0.0, 0.3)
    return stacked


@pytest.fixture(scope="module")
def night() -> np.ndarray:
    return SyntheticEEG(HYPNOGRAM, SFREQ, seed=4).generate().T.astype(np.float64)


def _run(model: StagingModel, samples: np.ndarray, chunk: int, **options) -> tuple[list, list]:
    pipeline = StagingPipeline(model, SFREQ, **options)
    staged, provisional = [], []
    for start in range(0, len(samples), chunk):
        staged += pipeline.push(samples[start : start + chunk])
        provisional += pipeline.take_provisional()
    return staged + pipeline.finish(), provisional


def _probs(staged: list) -> np.ndarray:
    return np.array([epoch.probs for epoch in staged])


def test_a_raw_model_stages_every_epoch_the_same_in_any_chunking(model, night) -> None:
    whole, _ = _run(model, night, len(night))
    assert [e.index for e in whole] == list(range(len(HYPNOGRAM)))
    for chunk in (1000, 257, 7681):
        staged, _ = _run(model, night, chunk)
        np.testing.assert_allclose(_probs(staged), _probs(whole), atol=1e-5)


def test_resume_mid_epoch_continues_identically(model, night) -> None:
    cut = int(2.5 * 30 * SFREQ)
    bounds = [*range(0, cut, 512), *range(cut, len(night), 512), len(night)]
    chunks = [night[a:b] for a, b in pairwise(bounds)]
    n_before = len(range(0, cut, 512))
    uninterrupted = StagingPipeline(model, SFREQ)
    expected = [e for chunk in chunks for e in uninterrupted.push(chunk)] + uninterrupted.finish()
    first = StagingPipeline(model, SFREQ)
    staged = [e for chunk in chunks[:n_before] for e in first.push(chunk)]
    resumed = StagingPipeline(model, SFREQ)
    resumed.load_state_dict(state_from_bytes(state_to_bytes(first.state_dict())))
    staged += [e for chunk in chunks[n_before:] for e in resumed.push(chunk)] + resumed.finish()
    np.testing.assert_array_equal(_probs(staged), _probs(expected))


def test_provisional_stages_every_few_seconds_leave_the_committed_stages_unchanged(model, night) -> None:
    quiet, none = _run(model, night, 256, provisional_every_s=None)
    staged, provisional = _run(model, night, 256, provisional_every_s=5.0)
    assert not none
    np.testing.assert_array_equal(_probs(staged), _probs(quiet))
    per_epoch = {}
    for stage in provisional:
        per_epoch.setdefault(stage.index, []).append(stage.elapsed_s)
    assert sorted(per_epoch) == list(range(len(HYPNOGRAM)))
    assert all(len(times) == 5 for times in per_epoch.values())  # at 5, 10, 15, 20, 25 s (the 30th ends it)
    assert all(np.all(np.diff(times) > 4.0) for times in per_epoch.values())
    assert all(abs(sum(stage.probs) - 1.0) < 1e-9 for stage in provisional)
    assert provisional[0].to_dict()["provisional"] is True


def test_a_feature_model_has_no_provisional_stages(feature_model, night) -> None:
    _, provisional = _run(feature_model, night, 256)
    assert provisional == []


def test_a_raw_checkpoint_loads_with_its_id_and_stages_the_same(model, night, tmp_path) -> None:
    path = tmp_path / "raw.pt"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.is_raw and loaded.model_id == model.model_id
    np.testing.assert_array_equal(_probs(_run(loaded, night, 4096)[0]), _probs(_run(model, night, 4096)[0]))


def test_a_night_of_the_raw_model_does_not_resume_with_the_feature_model(model, feature_model, night) -> None:
    pipeline = StagingPipeline(model, SFREQ)
    pipeline.push(night[:5000])
    with pytest.raises(ResumeError):
        StagingPipeline(feature_model, SFREQ).load_state_dict(pipeline.state_dict())


def test_the_widened_shipped_network_stages_the_recipe_features_as_before() -> None:
    shipped = load_model("default")
    wider = StagingModel(net=widened(shipped.net, 3), normalizer=shipped.normalizer)
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(3, 1, (20, 1, 5)), rng.dirichlet(np.ones(5), (20, 1))], axis=-1)
    extras = rng.normal(0, 1, (20, 1, 3))
    before, after = EpochStager(shipped), EpochStager(wider)
    for epoch, extra in zip(features, extras, strict=True):
        expected = before.push(epoch)
        np.testing.assert_allclose(after.push(np.concatenate([epoch, extra], axis=-1)), expected, atol=1e-6)


def test_the_shipped_raw_model_stages_a_night_with_gaps_as_the_default_does(night) -> None:
    gappy = night.copy()
    gappy[: int(10 * SFREQ)] = np.nan  # a start without signal, then a lost minute (flat, held epochs)
    gappy[int(60 * SFREQ) : int(120 * SFREQ)] = np.nan
    raw, _ = _run(load_model("raw"), gappy, 1024)
    default, _ = _run(load_model("default"), gappy, 1024)
    assert [e.quality for e in raw] == [e.quality for e in default]
    assert "missing" in {e.quality for e in raw}
    assert [e.stage for e in raw] == [e.stage for e in default]
    np.testing.assert_allclose(_probs(raw), _probs(default), atol=1e-5)


def test_a_provisional_stage_is_computed_only_when_taken(model, night) -> None:
    pipeline = StagingPipeline(model, SFREQ)
    for start in range(0, int(4.5 * 30 * SFREQ), 256):  # four epochs and 15 s, never asking
        pipeline.push(night[start : start + 256])
    (latest,) = pipeline.take_provisional()  # only the latest peek, of the epoch in progress
    assert latest.index == 4 and 10.0 < latest.elapsed_s <= 15.0
    assert pipeline.take_provisional() == []
