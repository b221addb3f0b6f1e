"""The transfer recipe: augmentations, cold-start crops, joins and ensembles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from streamstage.cli import main
from streamstage.commands import train as train_command
from streamstage.epoch_stager import EpochStager
from streamstage.errors import ResumeError
from streamstage.features import N_BANDS, CausalNormalizer, epoch_features
from streamstage.model.checkpoint import StagingModel, load_model, save_model
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG
from streamstage.state_io import state_from_bytes, state_to_bytes
from streamstage.training.augment import (
    NO_AUGMENTATION,
    TransferAugmentation,
    augment_crop,
    features_from_powers,
)
from streamstage.training.data import FeatureNight
from streamstage.training.joins import join_scores, random_joins
from streamstage.training.predict import stage_feature_nights
from streamstage.training.train import TrainConfig, _sample_batch

HYPNOGRAM = np.array([0, 0, 1, 2, 2, 2, 3, 3, 2, 4, 4, 4, 2, 2, 0, 1, 2, 3, 4, 0], dtype=np.int8)


@pytest.fixture(scope="module")
def real_features() -> np.ndarray:
    """Features of synthetic EEG epochs ``(n, 1, 10)`` through the training recipe."""
    eeg = SyntheticEEG(HYPNOGRAM, 100.0, seed=3).generate()[0]
    return epoch_features(eeg.reshape(len(HYPNOGRAM), 1, 3000))


def _night(features: np.ndarray, subject: str = "00") -> FeatureNight:
    labels = np.resize(HYPNOGRAM, len(features)).astype(np.int64)
    return FeatureNight(subject, 1, features, labels)


def test_features_rebuilt_from_powers_equal_the_recipe(real_features):
    powers = np.exp(real_features[..., :N_BANDS].astype(np.float64)) - 1e-10
    np.testing.assert_allclose(features_from_powers(powers), real_features, rtol=1e-5, atol=1e-6)


def test_no_augmentation_leaves_a_crop_as_it_is(real_features):
    good = np.ones(len(real_features), dtype=bool)
    out, flags = augment_crop(real_features, good, NO_AUGMENTATION, np.random.default_rng(0))
    np.testing.assert_allclose(out, real_features, rtol=1e-5, atol=1e-6)
    assert flags.all()


def test_band_gains_move_only_the_relative_powers_after_normalisation(real_features):
    """A constant per-band gain is what another montage does; the running mean cancels it in the log part."""
    shape_only = dataclasses.replace(NO_AUGMENTATION, band_gain_sd=0.5, tilt_sd=0.5)
    good = np.ones(len(real_features), dtype=bool)
    out, _ = augment_crop(real_features, good, shape_only, np.random.default_rng(1))
    before = CausalNormalizer(1).transform_night(real_features)
    after = CausalNormalizer(1).transform_night(out)
    np.testing.assert_allclose(after[..., :N_BANDS], before[..., :N_BANDS], atol=1e-4)
    assert not np.allclose(after[..., N_BANDS:], before[..., N_BANDS:], atol=1e-3)
    np.testing.assert_allclose(out[..., N_BANDS:].sum(axis=-1), 1.0, atol=1e-5)


def test_artifact_epochs_are_loud_and_flagged_bad(real_features):
    artifacts = dataclasses.replace(
        NO_AUGMENTATION, artifact_prob=1.0, artifact_runs=2, artifact_max_epochs=3
    )
    good = np.ones(len(real_features), dtype=bool)
    out, flags = augment_crop(real_features, good, artifacts, np.random.default_rng(2))
    assert 1 <= (~flags).sum() <= 6
    assert (out[~flags, :, :N_BANDS] > real_features[~flags, :, :N_BANDS]).all()
    np.testing.assert_allclose(out[flags], real_features[flags], rtol=1e-5, atol=1e-6)


def test_a_fresh_start_crop_is_normalised_from_its_first_epoch(real_features):
    features = np.concatenate([real_features] * 3)
    night = FeatureNight(
        "00", 1, features, np.arange(len(features))
    )  # a label that tells where the crop starts
    config = TrainConfig(
        crop_epochs=16,
        batch_size=4,
        feature_noise=0.0,
        fresh_start_prob=1.0,
        night_start_prob=0.0,
        augmentation=NO_AUGMENTATION,
    )
    inputs, labels = _sample_batch([night], config, CausalNormalizer(1).config, np.random.default_rng(5))
    for row in range(4):
        start = int(labels[row, 0])
        expected = CausalNormalizer(1).transform_night(features[start : start + 16])
        np.testing.assert_allclose(inputs[row].numpy(), expected, atol=1e-6)
    settled = dataclasses.replace(config, fresh_start_prob=0.0)
    inputs, labels = _sample_batch([night], settled, CausalNormalizer(1).config, np.random.default_rng(5))
    start = int(labels[0, 0])
    expected = CausalNormalizer(1).transform_night(features[: start + 16])[start:]
    np.testing.assert_allclose(inputs[0].numpy(), expected, atol=1e-6)


def test_joins_are_scored_by_minutes_since_the_join(real_features):
    torch.manual_seed(0)
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())
    nights = [_night(np.concatenate([real_features] * 8), subject=s) for s in ("00", "01")]
    joins = random_joins(nights, per_night=2, seed=0)
    assert len(joins) == 4 and all(0 < j < len(nights[i]) - 60 for i, j in joins)
    scores = join_scores(model, nights, joins).to_dict()
    assert list(scores) == ["0-10 min", "10-30 min", "30+ min"]
    assert scores["0-10 min"]["epochs"] <= 4 * 20 and scores["10-30 min"]["epochs"] <= 4 * 40
    staged = sum(len(nights[i]) - j for i, j in joins)
    labelled = sum(int((nights[i].labels[j:] >= 0).sum()) for i, j in joins)
    assert sum(s["epochs"] for s in scores.values()) == labelled <= staged


def _ensemble(n_members: int = 2) -> StagingModel:
    torch.manual_seed(0)
    members = [StagingNet(StagerConfig(d_model=16, n_layers=2)).eval() for _ in range(n_members)]
    return StagingModel(net=EnsembleNet.of(members))


def test_an_ensemble_averages_its_members_probabilities(real_features):
    ensemble = _ensemble()
    night = _night(real_features)
    probs = stage_feature_nights(ensemble, [night])[0]
    singles = [stage_feature_nights(StagingModel(net=member), [night])[0] for member in ensemble.net.members]
    np.testing.assert_allclose(probs, np.mean(singles, axis=0), atol=1e-9)
    inputs = torch.from_numpy(CausalNormalizer(1).transform_night(real_features))[None]
    whole = torch.softmax(ensemble.net(inputs).double(), dim=-1)[0].detach().numpy()
    np.testing.assert_allclose(probs, whole, atol=1e-5)
    logits, _ = ensemble.net.step(inputs[:, :3], ensemble.net.init_state(1))
    np.testing.assert_allclose(torch.softmax(logits.double(), -1)[0].numpy(), whole[:3], atol=1e-5)


def test_an_ensemble_checkpoint_round_trips_and_resumes_mid_night(tmp_path):
    ensemble = _ensemble(3)
    save_model(ensemble, tmp_path / "ens.pt")
    loaded = load_model(tmp_path / "ens.pt")
    assert isinstance(loaded.net, EnsembleNet) and loaded.model_id == ensemble.model_id
    eeg = SyntheticEEG(HYPNOGRAM[:8], 100.0, seed=1).generate()[0][:, None]
    one_pass = StagingPipeline(loaded, 100.0)
    expected = one_pass.push(eeg) + one_pass.finish()
    first = StagingPipeline(loaded, 100.0)
    before = first.push(eeg[:1234])
    saved = state_from_bytes(state_to_bytes(first.state_dict()))
    assert first.stager.state.nbytes == 3 * StagingNet(loaded.config).init_state(1).nbytes
    resumed = StagingPipeline(loaded, 100.0)
    resumed.load_state_dict(saved)
    after = resumed.push(eeg[1234:]) + resumed.finish()
    for a, b in zip(before + after, expected, strict=True):
        assert a.index == b.index and a.probs == b.probs


def test_a_single_network_state_does_not_resume_an_ensemble():
    ensemble = EpochStager(_ensemble(2))
    single = EpochStager(StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=2)).eval()))
    with pytest.raises(ResumeError, match="ensemble"):
        ensemble.load_state_dict(single.state_dict())


def test_train_command_defaults_are_the_recipe_defaults():
    assert TrainConfig.max_steps == train_command.DEFAULT_MAX_STEPS
    assert TrainConfig.batch_size == train_command.DEFAULT_BATCH_SIZE
    assert TrainConfig.crop_epochs == train_command.DEFAULT_CROP_EPOCHS
    assert StagerConfig.d_model == train_command.DEFAULT_D_MODEL
    assert StagerConfig.n_layers == train_command.DEFAULT_LAYERS
    assert TrainConfig().augmentation == TransferAugmentation()


def test_train_members_ships_one_ensemble(tmp_path, real_features):
    folder = tmp_path / "features"
    folder.mkdir()
    for subject in range(3):
        features = np.concatenate([real_features] * 2).repeat(3, axis=1)
        labels = np.resize(HYPNOGRAM, len(features)).astype(np.int64)
        np.savez(folder / f"{subject:02d}__1.npz", features=features, labels=labels)
    out = tmp_path / "ens.pt"
    argv = ["train", "--features", str(folder), "--out", str(out), "--members", "2", "--max-steps", "2"]
    argv += ["--crop-epochs", "8", "--batch-size", "2", "--d-model", "16", "--layers", "1"]
    assert main(argv) == 0
    model = load_model(out)
    assert isinstance(model.net, EnsembleNet) and len(model.net.members) == 2
    assert model.training["member_seeds"] == [0, 1] and len(model.training["members"]) == 2


def _stage_shifted_nights(n_nights: int = 6, n_epochs: int = 1200) -> list[FeatureNight]:
    """Fake nights whose stages shift the log powers their own way and set the relative powers."""
    rng = np.random.default_rng(7)
    nights = []
    profile = rng.normal(0, 1, (5, N_BANDS))
    for index in range(n_nights):
        labels = np.repeat(rng.integers(0, 5, n_epochs // 4), 4)
        logs = profile[labels] + rng.normal(0, 0.2, (n_epochs, N_BANDS)) + rng.normal(0, 2)  # a night's gain
        features = features_from_powers(np.exp(logs))[:, None].astype(np.float32)
        nights.append(FeatureNight(f"{index:02d}", 1, features, labels.astype(np.int64)))
    return nights


def test_an_anchored_reference_is_right_at_once_after_a_join():
    from streamstage.features import NormalizerConfig
    from streamstage.training.anchor import fit_anchor

    nights = _stage_shifted_nights()
    anchored = fit_anchor(nights[:-1], NormalizerConfig(anchored=True))
    plain = NormalizerConfig()
    night = nights[-1]
    settled = CausalNormalizer(1, plain).transform_night(night.features)[1000:, :, :N_BANDS]
    join = slice(1000, None)  # cold start mid-night
    errors = {}
    for name, config in (("plain", plain), ("anchored", anchored)):
        joined = CausalNormalizer(1, config).transform_night(night.features[join])[:, :, :N_BANDS]
        errors[name] = float(np.abs(joined[:20] - settled[:20]).mean())
    assert errors["anchored"] < 0.5 * errors["plain"]


def test_an_anchored_reference_is_exactly_gain_invariant_and_saved_with_the_model(tmp_path):
    from streamstage.features import NormalizerConfig
    from streamstage.training.anchor import fit_anchor

    nights = _stage_shifted_nights(3)
    config = fit_anchor(nights, NormalizerConfig(anchored=True))
    night = nights[0].features
    louder = night.copy()
    louder[..., :N_BANDS] += 2 * np.log(37.0)  # the same signal recorded 37x louder
    np.testing.assert_allclose(
        CausalNormalizer(1, config).transform_night(louder),
        CausalNormalizer(1, config).transform_night(night),
        atol=1e-5,
    )
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval(), normalizer=config)
    save_model(model, tmp_path / "a.pt")
    loaded = load_model(tmp_path / "a.pt")
    np.testing.assert_array_equal(loaded.normalizer.anchor.weights, config.anchor.weights)
    plain = StagingModel(net=model.net, normalizer=NormalizerConfig())
    assert loaded.model_id == model.model_id != plain.model_id  # the reference is part of the model


def _psg_edf(path, n_epochs: int = 4):
    import edfio

    eeg = SyntheticEEG(HYPNOGRAM[:n_epochs], 100.0, seed=2).generate()[0]
    signals = [
        edfio.EdfSignal(eeg * gain, 100.0, label=label, physical_dimension="uV", physical_range=(-1000, 1000))
        for gain, label in ((1.0, "EEG Fpz-Cz"), (0.7, "EEG Pz-Oz"), (1.5, "EOG horizontal"))
    ]
    edfio.Edf(signals).write(path)
    return path


def test_the_shipped_psg_model_stages_a_psg(tmp_path, capsys):
    model = load_model("psg")
    assert model.channels == ("Fpz-Cz", "Pz-Oz", "EOG horizontal") and model.normalizer.anchor is not None
    assert model.training["best_val_kappa"] > 0.7
    out = tmp_path / "night"
    assert main(["stage", str(_psg_edf(tmp_path / "psg.edf", 6)), "--model", "psg", "--out", str(out)]) == 0
    assert "as asked: PSG" in capsys.readouterr().err
    assert len((out / "hypnogram.csv").read_text().splitlines()) == 1 + 6


def test_stage_says_which_model_stages_and_why(tmp_path, capsys):
    _psg_edf(tmp_path / "psg.edf")
    assert main(["stage", str(tmp_path / "psg.edf"), "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr().err
    assert "the shipped default model" in said and "the default" in said and "--model psg" in said
    assert main(["stage", str(tmp_path / "psg.edf"), "--model", "default", "--out", str(tmp_path / "b")]) == 0
    assert "as asked" in capsys.readouterr().err
