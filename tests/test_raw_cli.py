"""``--model raw`` everywhere: ``stage`` and ``evaluate --edf`` in process, ``run`` over loopback LSL. The
shipped raw model reproduces the recipe's features exactly, so it stages as the default model does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import edfio
import numpy as np
import pytest

from streamstage.cli import main
from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.sources import ArraySource
from streamstage.sim import SyntheticEEG

SFREQ = 256.0
NIGHT = [0, 0, 1, 2, 2, 3, 3, 2, 4, 4, 1, 0]


@pytest.fixture(scope="module")
def night_uv() -> np.ndarray:
    return SyntheticEEG(NIGHT, SFREQ, seed=7).generate()[0].astype(np.float64)


@pytest.fixture(scope="module")
def folder(night_uv, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw-cli")
    channel = edfio.EdfSignal(
        night_uv, SFREQ, label="EEG Fpz-Cz", physical_dimension="uV", physical_range=(-2000, 2000)
    )
    edfio.Edf([channel]).write(folder / "night.edf")
    (folder / "night-hypnogram.txt").write_text("\n".join(map(str, NIGHT)) + "\n")
    return folder


def _rows(folder: Path) -> list[list[str]]:
    return [line.split(",") for line in (folder / "hypnogram.csv").read_text().splitlines()[1:]]


def _probs(rows: list[list[str]]) -> np.ndarray:
    return np.array([[float(x) for x in row[4:9]] for row in rows])


def test_stage_with_the_raw_model_gives_the_default_models_hypnogram(folder, tmp_path, capsys) -> None:
    edf = str(folder / "night.edf")
    assert main(["stage", edf, "--model", "raw", "--out", str(tmp_path / "raw")]) == 0
    assert "the shipped raw model" in capsys.readouterr().err
    assert main(["stage", edf, "--out", str(tmp_path / "default")]) == 0
    raw, default = _rows(tmp_path / "raw"), _rows(tmp_path / "default")
    assert len(raw) == len(NIGHT)
    assert [r[3] for r in raw] == [r[3] for r in default]
    np.testing.assert_allclose(_probs(raw), _probs(default), atol=1e-4)


def test_evaluate_the_raw_model_on_edf_pairs(folder, tmp_path) -> None:
    scores = {}
    for model in ("raw", "default"):
        out = tmp_path / f"{model}.json"
        assert main(["evaluate", "--model", model, "--edf", str(folder), "--json", str(out)]) == 0
        scores[model] = json.loads(out.read_text())
    assert scores["raw"]["n_epochs"] == scores["default"]["n_epochs"] > 0
    assert scores["raw"]["kappa"] == pytest.approx(scores["default"]["kappa"])


def test_evaluate_the_raw_model_on_a_feature_set_is_one_clear_error(tmp_path, capsys) -> None:
    assert main(["evaluate", "--model", "raw", "--features", str(tmp_path)]) == 1
    assert "--edf" in capsys.readouterr().err


def _replay(night_uv: np.ndarray, speed: float, name: str) -> ReplayThread:
    source = ArraySource(night_uv[:, None].astype(np.float32), SFREQ, ["Fpz-Cz"], source_id=name)
    replay = ReplayThread(source, speed, name=name, wait_for_consumer_s=30.0, linger_s=0.5, buffer_s=3600)
    replay.start()
    return replay


def _run_raw(name: str, *options: str) -> subprocess.Popen:
    arguments = ["run", "--model", "raw", "--name", name, "--no-dashboard", "--exit-after-lost", "1.5"]
    return subprocess.Popen(
        [sys.executable, "-m", "streamstage", *arguments, "--resolve-timeout", "20", "--no-report", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.slow
def test_run_with_the_raw_model_stages_a_live_stream_as_stage_does(night_uv, folder, tmp_path) -> None:
    name = f"raw-{uuid.uuid4().hex[:8]}"
    replay = _replay(night_uv, 40.0, name)
    live = _run_raw(name, "--out", str(tmp_path / "live"))
    _, err = live.communicate(timeout=120)
    replay.join()
    assert live.returncode == 0, err
    assert main(["stage", str(folder / "night.edf"), "--model", "raw", "--out", str(tmp_path / "file")]) == 0
    live_rows, file_rows = _rows(tmp_path / "live"), _rows(tmp_path / "file")
    assert [r[3] for r in live_rows] == [r[3] for r in file_rows]
    np.testing.assert_allclose(
        _probs(live_rows), _probs(file_rows), atol=0.02
    )  # float32 stream vs 16-bit EDF


@pytest.mark.slow
def test_a_killed_raw_run_resumes_mid_night(night_uv, tmp_path) -> None:
    name = f"raw-kill-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "night"
    replay = _replay(night_uv, 12.0, name)
    first = _run_raw(name, "--out", str(folder))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not (folder / "hypnogram.csv").exists() or len(_rows(folder)) < 4):
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert len(_rows(folder)) >= 4
    second = _run_raw(name, "--resume", str(folder))
    _, err = second.communicate(timeout=120)
    replay.join()
    assert second.returncode == 0, err
    indices = [int(row[0]) for row in _rows(folder)]
    assert indices == list(range(len(NIGHT)))
