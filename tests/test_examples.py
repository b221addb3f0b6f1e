"""The examples run as written (on the loopback LSL configuration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
