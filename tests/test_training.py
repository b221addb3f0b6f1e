"""Training, evaluation and checkpoints on small nights the tests make (and the shipped model)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import edfio
import numpy as np
import pytest
import torch

from streamstage.cli import main
from streamstage.epoch_stager import EpochStager
from streamstage.errors import InputFileError, ModelError
from streamstage.features import RECIPE, CausalNormalizer
from streamstage.io.hypnogram import Hypnogram, write_hypnogram_edf
from streamstage.model.checkpoint import StagingModel, load_model, save_model
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.sim import SyntheticEEG
from streamstage.training.data import load_feature_nights, subject_folds
from streamstage.training.predict import stage_feature_nights
from streamstage.training.train import TrainConfig, train_model

TINY = TrainConfig(crop_epochs=32, batch_size=4, max_steps=6, eval_every=3)


def _feature_night(rng: np.random.Generator, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Separable fake features: each stage shifts the log powers its own way."""
    labels = rng.integers(0, 5, n)
    features = rng.normal(0, 0.3, (n, 3, 10)).astype(np.float32)
    features[:, :, :5] += labels[:, None, None] * np.linspace(-1, 1, 5)
    labels[:3] = -100
    return features, labels


@pytest.fixture
def feature_dir(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for subject in range(4):
        for night in (1, 2):
            features, labels = _feature_night(rng)
            np.savez(
                tmp_path / f"{subject:02d}__{night}.npz",
                features=features,
                labels=labels,
                onsets_sec=np.arange(len(labels)) * 30.0,
            )
    (tmp_path / "README.txt").write_text("not a night")
    return tmp_path


def test_feature_nights_load_by_channel(feature_dir):
    nights = load_feature_nights(feature_dir, ["Fpz-Cz", "EOG"])
    assert len(nights) == 8 and nights[0].features.shape == (80, 2, 10)
    with pytest.raises(InputFileError, match="no channel 'C3'"):
        load_feature_nights(feature_dir, ["C3"])
    with pytest.raises(InputFileError, match="does not exist"):
        load_feature_nights(feature_dir / "missing", ["Fpz-Cz"])
    (feature_dir / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"no SS__N\.npz feature files"):
        load_feature_nights(feature_dir / "empty", ["Fpz-Cz"])


def test_subject_folds_never_split_a_subject():
    folds = subject_folds([f"{i:02d}" for i in range(10)], 3, seed=1)
    flat = [s for fold in folds for s in fold]
    assert sorted(flat) == [f"{i:02d}" for i in range(10)] and len(set(flat)) == 10


def test_train_model_learns_and_keeps_the_best_validation_weights(feature_dir):
    nights = load_feature_nights(feature_dir)
    config = StagerConfig(d_model=16, n_layers=1)
    model, history = train_model(
        nights[:6],
        nights[6:],
        config,
        TrainConfig(crop_epochs=32, batch_size=4, max_steps=60, eval_every=20, learning_rate=1e-2),
    )
    assert [h["step"] for h in history] == [20, 40, 60]
    assert model.training["best_val_kappa"] == max(h["val_kappa"] for h in history)
    assert model.training["best_val_kappa"] > 0.3  # the fake stages are separable


def test_batched_evaluation_is_the_live_stager_and_the_whole_sequence(feature_dir):
    torch.manual_seed(0)
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=2)).eval())
    nights = load_feature_nights(feature_dir)[:3]
    nights[1] = nights[1].crop(slice(0, 50))
    good = np.ones(80, dtype=bool)
    good[10:14] = False  # bad epochs: stepped, but the normaliser is not moved
    nights[2] = dataclasses.replace(nights[2], good=good)
    streamed = stage_feature_nights(model, nights)  # padding must not leak into real epochs
    for night, probs in zip(nights, streamed, strict=True):
        live = EpochStager(model)
        one_by_one = np.stack(
            [live.push(f, bool(ok)) for f, ok in zip(night.features, night.good, strict=True)]
        )
        np.testing.assert_allclose(probs, one_by_one, atol=1e-6)
        inputs = CausalNormalizer(1).transform_night(night.features, night.good)
        whole = torch.softmax(model.net(torch.from_numpy(inputs)[None]).double(), dim=-1)[0].detach().numpy()
        np.testing.assert_allclose(probs, whole, atol=1e-5)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-12)


def test_a_join_is_a_cold_start_at_that_epoch(feature_dir):
    torch.manual_seed(0)
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())
    night = load_feature_nights(feature_dir)[0]
    joined = stage_feature_nights(model, [night], joins=[30])[0]
    np.testing.assert_allclose(
        joined, stage_feature_nights(model, [night.crop(slice(30, None))])[0], atol=1e-12
    )


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    torch.manual_seed(0)
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval(), training={"note": "x"})
    save_model(model, tmp_path / "m.pt")
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["recipe"] == RECIPE.to_dict() and raw["config"]["channels"] == ["Fpz-Cz"]
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.model_id == model.model_id and loaded.training["note"] == "x"


def test_bad_checkpoints_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable streamstage model"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a streamstage model"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_the_shipped_model_is_small_causal_and_documented():
    model = load_model()
    assert model.channels == ("Fpz-Cz",) and not model.config.bidirectional
    weights = Path(__file__).resolve().parent.parent / "streamstage" / "weights" / "default.pt"
    assert weights.stat().st_size < 5 * 2**20
    assert model.training["n_train_nights"] > 100 and model.training["best_val_kappa"] > 0.6


def test_train_and_evaluate_commands_on_features(feature_dir, tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert (
        main(
            [
                "train",
                "--features",
                str(feature_dir),
                "--out",
                str(out),
                "--max-steps",
                "4",
                "--crop-epochs",
                "32",
                "--batch-size",
                "4",
                "--d-model",
                "16",
                "--layers",
                "1",
                "--val-fraction",
                "0.25",
            ]
        )
        == 0
    )
    log = json.loads(out.with_suffix(".log.json").read_text())
    assert log["n_val_nights"] == 2 and log["val_subjects"]
    report = tmp_path / "scores.json"
    assert main(["evaluate", "--features", str(feature_dir), "--model", str(out), "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert scores["n_nights"] == 8 and set(scores["per_stage_f1"]) == {"W", "N1", "N2", "N3", "REM"}
    assert np.array(scores["confusion"]).sum() == scores["n_epochs"] == 8 * 77
    assert "kappa" in capsys.readouterr().out


@pytest.fixture
def edf_dir(tmp_path) -> Path:
    """Two Sleep-EDF-style recordings (PSG + hypnogram) of synthetic EEG."""
    folder = tmp_path / "edf"
    folder.mkdir()
    stages = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4, 2, 0], dtype=np.int8)
    for subject in (1, 2):
        eeg = SyntheticEEG(stages, 100.0, seed=subject).generate()[0]
        signal = edfio.EdfSignal(
            eeg,
            sampling_frequency=100.0,
            label="EEG Fpz-Cz",
            physical_dimension="uV",
            physical_range=(-1000, 1000),
        )
        edfio.Edf([signal]).write(folder / f"SC4{subject:02d}1E0-PSG.edf")
        write_hypnogram_edf(folder / f"SC4{subject:02d}1EC-Hypnogram.edf", Hypnogram(stages))
    return folder


def test_train_from_edf_uses_the_live_signal_path(edf_dir, tmp_path):
    out = tmp_path / "edf-model.pt"
    assert (
        main(
            [
                "train",
                "--edf",
                str(edf_dir),
                "--out",
                str(out),
                "--max-steps",
                "2",
                "--crop-epochs",
                "8",
                "--batch-size",
                "2",
                "--d-model",
                "16",
                "--layers",
                "1",
                "--val-fraction",
                "0.5",
            ]
        )
        == 0
    )
    assert load_model(out).training["n_train_nights"] == 1
    assert main(["evaluate", "--edf", str(edf_dir), "--model", str(out)]) == 0


def _without_latency(hypnogram: Path) -> list[list[str]]:
    """The rows of a hypnogram CSV without the latency column, the one field that is a timing."""
    rows = [line.split(",") for line in hypnogram.read_text().splitlines()]
    latency = rows[0].index("latency_ms")
    return [row[:latency] + row[latency + 1 :] for row in rows]


def test_evaluate_gives_exactly_the_probabilities_of_stage(edf_dir, tmp_path):
    """One code path: evaluating a recording stages it with the code of `streamstage stage`."""
    scores = tmp_path / "scores.json"
    assert (
        main(
            ["evaluate", "--edf", str(edf_dir), "--hypnograms", str(tmp_path / "eval"), "--json", str(scores)]
        )
        == 0
    )
    for recording in ("SC4011E0-PSG", "SC4021E0-PSG"):
        assert main(["stage", str(edf_dir / f"{recording}.edf"), "--out", str(tmp_path / recording)]) == 0
        staged = _without_latency(tmp_path / recording / "hypnogram.csv")
        assert _without_latency(tmp_path / "eval" / recording / "hypnogram.csv") == staged
    assert [n["recording"] for n in json.loads(scores.read_text())["nights"]] == [
        "SC4011E0-PSG.edf",
        "SC4021E0-PSG.edf",
    ]


def test_stage_command_writes_the_hypnogram(edf_dir, tmp_path):
    out = tmp_path / "staged"
    assert main(["stage", str(edf_dir / "SC4011E0-PSG.edf"), "--out", str(out)]) == 0
    rows = (out / "hypnogram.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,start_s,wall_time,stage,p_W")
    assert len(rows) == 1 + 12


def test_stage_command_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["stage", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("streamstage: error:") and err.count("\n") == 1


def test_offline_reference_models_refuse_to_stream(tmp_path):
    from streamstage.epoch_stager import EpochStager
    from streamstage.features import NIGHT_ZSCORE, NormalizerConfig

    net = StagingNet(StagerConfig(d_model=16, n_layers=1)).eval()
    reference = StagingModel(net=net, normalizer=NormalizerConfig(method=NIGHT_ZSCORE))
    save_model(reference, tmp_path / "ref.pt")
    with pytest.raises(ModelError, match="offline reference"):
        EpochStager(load_model(tmp_path / "ref.pt"))
