"""The examples run (a config file: parse) as written (on the loopback LSL configuration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamstage.lab.beds import check_beds, read_lab_file
from tests.nights import hypnogram_rows, night_events

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_a_replayed_night_runs_from_python(tmp_path: Path) -> None:
    folder = tmp_path / "night"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "night_from_python.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "20 epochs staged into" in done.stdout
    rows = hypnogram_rows(folder)
    assert [int(r[0]) for r in rows] == list(range(20))
    assert night_events(folder, "night_started")[0]["channels"] == ["F3"]
    assert (folder / "summary.txt").is_file() and (folder / "raw.bdf").is_file()


def test_the_example_lab_file_names_valid_beds_with_their_own_settings() -> None:
    lab = read_lab_file(EXAMPLES / "lab.toml")
    beds = {bed.name: bed for bed in check_beds(lab.beds)}
    assert list(beds) == ["bed01", "bed02", "bed03", "bed04"]
    assert (lab.out, lab.step, lab.batch_window_s) == (EXAMPLES / "nights" / "lab", "together", 0.05)
    assert beds["bed03"].stream.source_id == "cyton-7f3a" and beds["bed03"].stream.name is None
    assert (
        beds["bed01"].settings.stream.channel == ("AF7",) and beds["bed01"].settings.stream.reference == "TP9"
    )
    alarms = {name: bed.settings.alarm for name, bed in beds.items()}
    assert all(alarm is not None and alarm.window_s == 30 * 60 for alarm in alarms.values())
    assert {name: f"{alarm.time:%H:%M}" for name, alarm in alarms.items() if alarm} == {
        "bed01": "07:00",
        "bed02": "06:30",
        "bed03": "07:00",
        "bed04": "07:00",
    }
    hooks = {name: [hook.name for hook in bed.settings.hooks] for name, bed in beds.items()}
    assert hooks == {
        "bed01": ["chime", "journal"],
        "bed02": ["chime"],
        "bed03": ["chime"],
        "bed04": ["chime", "lights"],
    }
