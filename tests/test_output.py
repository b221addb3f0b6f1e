"""A night folder: rows flushed per epoch, never overwritten, resumable after a torn write."""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pytest

from streamstage.errors import OutputError
from streamstage.output import HYPNOGRAM_COLUMNS, NightWriter, default_night_folder
from streamstage.records import StagedEpoch


def _epoch(index: int, stage: int = 2, quality: str = "good") -> StagedEpoch:
    probs = [0.05] * 5
    probs[stage] = 0.8
    return StagedEpoch(index, 30.0 * index, stage, tuple(probs), quality, 0.002)


def test_rows_are_on_disk_after_each_epoch(tmp_path):
    writer = NightWriter(tmp_path / "night")
    writer.write_epoch(_epoch(0), datetime(2026, 1, 1, 23, 0, 30), truth="N2")
    lines = (tmp_path / "night" / "hypnogram.csv").read_text().splitlines()
    assert lines[0].split(",") == list(HYPNOGRAM_COLUMNS)
    row = dict(zip(HYPNOGRAM_COLUMNS, lines[1].split(","), strict=True))
    assert row["stage"] == "N2" and row["truth"] == "N2" and row["wall_time"] == "2026-01-01T23:00:30"
    assert float(row["p_N2"]) == pytest.approx(0.8)
    writer.write_event("signal_lost", stream_time_s=12.0)
    event = json.loads((tmp_path / "night" / "events.jsonl").read_text())
    assert event["event"] == "signal_lost" and event["stream_time_s"] == 12.0
    writer.close()


def test_existing_night_is_never_overwritten(tmp_path):
    with NightWriter(tmp_path / "night") as writer:
        writer.write_epoch(_epoch(0))
    with pytest.raises(OutputError, match=r"already holds a night.*--resume"):
        NightWriter(tmp_path / "night")
    assert len((tmp_path / "night" / "hypnogram.csv").read_text().splitlines()) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_refused_before_the_night(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="cannot write"):
        NightWriter(locked / "night")


def test_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write to the output folder"):
        NightWriter(tmp_path / "file" / "night")


def test_resume_repairs_a_torn_last_line(tmp_path):
    folder = tmp_path / "night"
    with NightWriter(folder) as writer:
        writer.write_epoch(_epoch(0))
        writer.save_state({"n": np.array([1])})
    with open(folder / "hypnogram.csv", "a") as handle:
        handle.write("1,30.000,,N")  # killed mid-row
    with NightWriter(folder, resume=True) as writer:
        writer.write_epoch(_epoch(1, stage=3))
        assert writer.load_state()["n"].tolist() == [1]
    lines = (folder / "hypnogram.csv").read_text().splitlines()
    assert [line.split(",")[3] for line in lines[1:]] == ["N2", "N3"]


def test_resume_needs_a_saved_state(tmp_path):
    with pytest.raises(OutputError, match="no resumable night"):
        NightWriter(tmp_path, resume=True)


def test_default_folders_are_new(tmp_path):
    first = default_night_folder(tmp_path)
    first.mkdir()
    assert default_night_folder(tmp_path) != first
