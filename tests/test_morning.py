"""The morning after: a night with its raw recording re-scored by the bidirectional model, the report showing
both hypnograms with their agreement, and the hypnogram exported for scorers (EDF+, CSV, text) so that it
reads back unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from streamstage.cli import main
from streamstage.config import Settings
from streamstage.errors import ModelError
from streamstage.io.hypnogram import read_hypnogram
from streamstage.live.session import NightSession, SessionOptions
from streamstage.lsl.meta import StreamLayout
from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.output import NightWriter
from streamstage.report import write_report
from streamstage.report.night import read_night
from streamstage.report.rescore import RESCORED_FILE, read_rescored, read_rescored_probs, rescore_night
from streamstage.sim import SyntheticEEG
from streamstage.sinks import night_sinks
from streamstage.sinks.raw import RawSink
from streamstage.stats import UNKNOWN

SFREQ = 100.0
HYPNOGRAM = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4])


@pytest.fixture(scope="module")
def night_dir(tmp_path_factory) -> Path:
    """A live night of ten epochs, staged with its raw signal kept (a tiny untrained live model)."""
    torch.manual_seed(1)
    model = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())
    folder = tmp_path_factory.mktemp("morning") / "night"
    eeg = SyntheticEEG(HYPNOGRAM, SFREQ, seed=4).generate().T.astype(np.float64)
    layout = StreamLayout(
        "psg", "EEG", "psg-id", "host", "uid", SFREQ, "float32", ("Fpz-Cz",), ("microvolts",), ("EEG",)
    )
    writer = NightWriter(folder)
    session = NightSession(
        model,
        layout,
        writer,
        SessionOptions(now=lambda: 1.7e9),
        night_sinks(writer, Settings(), extra=[RawSink(folder)]),
    )
    times = 1000.0 + np.arange(len(eeg)) / SFREQ
    for start in range(0, len(eeg), 100):
        session.on_chunk(eeg[start : start + 100], times[start : start + 100])
    session.close()
    writer.close()
    return folder


def test_report_rescore_writes_both_hypnograms_and_their_agreement(night_dir, capsys):
    assert main(["report", str(night_dir), "--rescore"]) == 0
    night = read_night(night_dir / "hypnogram.csv")
    rescored = read_rescored(night_dir, night)
    assert rescored is not None and len(rescored) == night.n_epochs == len(HYPNOGRAM)
    assert set(rescored.tolist()) <= {UNKNOWN, 0, 1, 2, 3, 4}
    summary = (night_dir / "summary.txt").read_text()
    assert "re-scored" in summary and "live" in summary
    assert "Agreement of the live hypnogram with the morning re-score" in summary
    assert "Cohen's kappa" in summary
    assert "re-scored" in capsys.readouterr().out


def test_the_rescore_is_the_bidirectional_models_whole_night_staging(night_dir):
    night = read_night(night_dir / "hypnogram.csv")
    first = rescore_night(night_dir, night)
    assert np.array_equal(first, rescore_night(night_dir, night))  # offline: the same every morning
    probs = read_rescored_probs(night_dir, night)
    assert probs is not None and (night_dir / RESCORED_FILE).is_file()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(probs.argmax(axis=1), first)


def test_rescore_with_yasa_says_how_to_get_it_when_it_is_missing(night_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "yasa", None)  # import yasa fails, whether or not it is installed
    with pytest.raises(ModelError, match=r"streamstage\[yasa\]"):
        write_report(night_dir, rescore="yasa")


@pytest.mark.parametrize("fmt", ["edf+", "csv", "txt"])
def test_an_export_reads_back_as_the_same_hypnogram(night_dir, fmt, capsys):
    out = night_dir / f"scored-{fmt}"
    assert main(["export", str(night_dir), "--format", fmt, "--live", "--out", str(out)]) == 0
    night = read_night(night_dir / "hypnogram.csv")
    back = read_hypnogram(out)
    assert np.array_equal(back.stages, night.stages) and back.epoch_s == night.epoch_s
    assert back.start_s == 0.0
    if fmt != "edf+":
        text = out.read_text()
        assert "# epoch 30 s" in text and f"# start {night.wall_time[0][:10]}" in text


def test_export_takes_the_rescore_where_there_is_one(night_dir):
    night = read_night(night_dir / "hypnogram.csv")
    rescored = rescore_night(night_dir, night)
    assert main(["export", str(night_dir), "--format", "txt"]) == 0
    assert np.array_equal(read_hypnogram(night_dir / "export.txt").stages, rescored)


def test_the_mornings_files_are_private_like_the_night(night_dir):
    night = read_night(night_dir / "hypnogram.csv")
    rescore_night(night_dir, night)
    for name in ("raw.bdf", "raw.annotations.edf", RESCORED_FILE):
        assert (night_dir / name).stat().st_mode & 0o777 == 0o600, name
