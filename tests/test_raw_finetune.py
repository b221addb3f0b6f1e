"""End-to-end fine-tuning of a raw model on labelled raw nights the test writes (EDF + hypnogram pairs):
the loss goes down, the checkpoint loads and stages; ``streamstage train --raw --edf`` does the same."""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np
import pytest
import torch

from streamstage.cli import main
from streamstage.errors import InputFileError
from streamstage.model.checkpoint import StagingModel, load_model, save_model
from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.model.raw_model import raw_model
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.offline import RecordingSource, stage_recording
from streamstage.sim import SyntheticEEG
from streamstage.training.edf_pairs import labelled_nights
from streamstage.training.raw_finetune import FinetuneConfig, finetune

HYPNOGRAMS = ([0, 0, 1, 2, 2, 3, 3, 3, 2, 4, 4, 0], [0, 1, 2, 3, 3, 2, 2, 4, 4, 4, 1, 0])


def write_night(folder: Path, name: str, hypnogram: list[int], seed: int) -> None:
    values = SyntheticEEG(hypnogram, 100.0, seed=seed).generate()[0].astype(np.float64)
    signal = edfio.EdfSignal(values, 100, label="Fpz-Cz", physical_dimension="uV", physical_range=(-800, 800))
    edfio.Edf([signal]).write(folder / f"{name}.edf")
    (folder / f"{name}-hypnogram.txt").write_text("\n".join(str(code) for code in hypnogram) + "\n")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("labelled")
    for index, hypnogram in enumerate(HYPNOGRAMS):
        write_night(folder, f"night{index}", hypnogram, seed=index)
    return folder


@pytest.fixture(scope="module")
def small_raw() -> StagingModel:
    torch.manual_seed(0)
    feature_model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())
    return raw_model(feature_model, RawFrontEnd(FrontEndConfig(d_model=8, n_layers=1, d_state=4, n_extra=2)))


def test_labelled_nights_come_from_the_signal_path_with_their_labels(folder) -> None:
    nights = labelled_nights(folder, ["Fpz-Cz"])
    assert [n.name for n in nights] == ["night0", "night1"]
    for night, hypnogram in zip(nights, HYPNOGRAMS, strict=True):
        assert night.samples.shape == (1, len(night) * 3000)
        assert night.features.shape == (len(night), 1, 10)
        np.testing.assert_array_equal(night.labels, hypnogram[: len(night)])


def write_self_scored(path: Path, hypnogram: list[int]) -> None:
    """An EDF+ recording that carries its own "Sleep stage" annotations (no hypnogram file beside it)."""
    values = SyntheticEEG(hypnogram, 100.0, seed=3).generate()[0].astype(np.float64)
    names = {0: "W", 1: "1", 2: "2", 3: "3", 4: "R"}
    annotations = [
        edfio.EdfAnnotation(30.0 * i, 30.0, f"Sleep stage {names[c]}") for i, c in enumerate(hypnogram)
    ]
    signal = edfio.EdfSignal(values, 100, label="Fpz-Cz", physical_dimension="uV", physical_range=(-800, 800))
    edfio.Edf([signal], annotations=annotations).write(path)


def test_an_edf_plus_that_scores_itself_is_a_labelled_night(tmp_path) -> None:
    hypnogram = [0, 1, 2, 2, 3, 4, 0]
    write_self_scored(tmp_path / "scored.edf", hypnogram)
    (night,) = labelled_nights(tmp_path, ["Fpz-Cz"])
    assert night.name == "scored"
    np.testing.assert_array_equal(night.labels, hypnogram[: len(night)])


def test_evaluate_and_feature_training_read_a_self_scored_edf_plus_too(tmp_path) -> None:
    """``train --raw``, ``train --edf`` and ``evaluate --edf`` find the same labelled recordings."""
    from streamstage.training.sources import load_edf_nights

    hypnogram = [0, 1, 2, 2, 3, 4, 0]
    write_self_scored(tmp_path / "scored.edf", hypnogram)
    (night,) = load_edf_nights(tmp_path, ["Fpz-Cz"])
    np.testing.assert_array_equal(night.labels, hypnogram[: len(night.labels)])
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--edf", str(tmp_path), "--json", str(out)]) == 0
    assert out.is_file()


def test_a_folder_without_labels_is_one_clear_error(tmp_path) -> None:
    write_night(tmp_path, "unscored", [0, 1, 2], seed=0)
    (tmp_path / "unscored-hypnogram.txt").unlink()
    with pytest.raises(InputFileError, match="Sleep stage"):
        labelled_nights(tmp_path, ["Fpz-Cz"])


def test_finetuning_lowers_the_loss_and_the_checkpoint_stages(folder, small_raw, tmp_path) -> None:
    nights = labelled_nights(folder, ["Fpz-Cz"])
    config = FinetuneConfig(steps=40, batch_size=2, crop_epochs=6, learning_rate=3e-3)
    before = small_raw.model_id
    tuned, history = finetune(small_raw, nights, config)
    assert history[-1]["stage_loss"] < history[0]["stage_loss"]
    assert tuned.model_id != before
    assert StagingModel(small_raw.net, front_end=small_raw.front_end).model_id == before  # a copy was tuned
    path = tmp_path / "tuned.pt"
    save_model(tuned, path)
    loaded = load_model(path)
    assert loaded.is_raw and loaded.model_id == tuned.model_id
    assert loaded.training["finetune"]["history"] == history
    staged = stage_recording(RecordingSource.open(folder / "night0.edf", ["Fpz-Cz"]), loaded)
    assert len(staged) == len(HYPNOGRAMS[0])


def test_the_epoch_network_alone_learns_from_the_recipe_features_only(folder, small_raw) -> None:
    nights = labelled_nights(folder, ["Fpz-Cz"])
    config = FinetuneConfig(steps=5, batch_size=2, crop_epochs=6, train_front_end=False)
    tuned, _ = finetune(small_raw, nights, config)
    for name, tensor in small_raw.front_end.state_dict().items():
        assert torch.equal(tuned.front_end.state_dict()[name], tensor)
    extras = tuned.net.embed[0].weight.reshape(16, 1, -1)[..., 10:]
    assert torch.count_nonzero(extras) == 0  # withheld: the extras never reach the stages
    assert not torch.equal(tuned.net.head.weight, small_raw.net.head.weight)


def test_train_raw_on_an_edf_folder_writes_a_raw_checkpoint(folder, small_raw, tmp_path) -> None:
    start = tmp_path / "start.pt"
    save_model(small_raw, start)
    out = tmp_path / "cli.pt"
    argv = ["train", "--raw", "--edf", str(folder), "--model", str(start), "--out", str(out)]
    assert main([*argv, "--max-steps", "3", "--batch-size", "2", "--crop-epochs", "4"]) == 0
    assert load_model(out).is_raw
    assert (tmp_path / "cli.log.json").is_file()


def test_train_raw_needs_raw_recordings(tmp_path) -> None:
    assert main(["train", "--raw", "--features", str(tmp_path), "--out", str(tmp_path / "x.pt")]) != 0
