"""``streamstage lab`` over real LSL on loopback: 16 beds replayed at speed through one lab, each bed's
hypnogram against ``run_night`` of that bed alone; a bed whose stream vanishes, one that sends garbage, one
whose hook crashes and one without a channel to stage, while the others go on; ``kill -9`` and ``--resume``.
"""

from __future__ import annotations

import itertools
import math
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from streamstage.config import resolve_settings
from streamstage.lab import BedSpec, LabPlan, run_lab
from streamstage.lab.bed import BedRunner
from streamstage.lab.stepper import LabStepper
from streamstage.model.checkpoint import load_model
from streamstage.night import NightPlan, StreamQuery, run_night
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG
from tests.nights import hypnogram_rows, loopback_replay, night_events, streamstage_cli

pytestmark = pytest.mark.slow
SFREQ = 100.0
NIGHT = np.array([0, 0, 1, 2, 2, 2, 3, 3, 2, 2, 4, 4])
SPEED = 30.0
N_BEDS = 16
VANISH, GARBAGE, HOOK = 0, 1, 2
"""The beds that lose their stream halfway, send NaN/Inf/absurd values, and have a crashing hook."""


def explode(event) -> None:
    """A hook that fails on every epoch (``py:tests.test_lab:explode``)."""
    raise RuntimeError("this hook always fails")


def _night(bed: int) -> np.ndarray:
    data = SyntheticEEG(NIGHT, SFREQ, seed=bed).generate().T.astype(np.float32)
    if bed == GARBAGE:
        epoch = round(30 * SFREQ)
        data[4 * epoch : 4 * epoch + 2000] = np.nan
        data[6 * epoch + 500 : 6 * epoch + 900] = np.inf
        data[8 * epoch : 8 * epoch + 1500] = -np.inf
        data[9 * epoch : 9 * epoch + 3000] = 1e9
    return data


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def nights() -> list[np.ndarray]:
    return [_night(bed) for bed in range(N_BEDS)]


def _query(name: str) -> StreamQuery:
    return StreamQuery(name=name, resolve_timeout_s=30.0, lost_after_s=1.0)


def _replay(data: np.ndarray, name: str, stop_after: int | None = None):
    replay = loopback_replay(data, SFREQ, name, SPEED)
    if stop_after is not None:

        def vanish() -> None:
            while replay.samples_sent < stop_after and not replay.done.is_set():
                time.sleep(0.05)
            replay.stop()

        threading.Thread(target=vanish, daemon=True).start()
    return replay


def _staged(folder: Path) -> list[tuple[str, ...]]:
    """What a bed staged: epoch, stage, probabilities, quality (the stream clock differs between runs)."""
    return [(r[0], r[3], *r[4:10]) for r in hypnogram_rows(folder)]


@pytest.fixture(scope="module")
def alone(nights, model, tmp_path_factory) -> list[list[tuple[str, ...]]]:
    """Each bed's whole night staged by ``run_night`` on its own (16 separate nights, side by side)."""
    root = tmp_path_factory.mktemp("alone")
    tag = uuid.uuid4().hex[:6]
    plan = {"exit_after_lost_s": 1.5, "report": False, "outlets": False, "keep_raw": False}
    threads, replays = [], []
    for bed, data in enumerate(nights):
        name = f"alone-{tag}-{bed}"
        replays.append(_replay(data, name))
        night = NightPlan(out=root / f"bed{bed:02d}", **plan)
        threads.append(threading.Thread(target=run_night, args=(_query(name), model, night), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for replay in replays:
        replay.join()
    return [_staged(root / f"bed{bed:02d}") for bed in range(N_BEDS)]


def _lab(nights, model, out: Path, step: str, faults: bool) -> tuple:
    tag = uuid.uuid4().hex[:6]
    beds, replays = [], []
    half = len(nights[0]) // 2
    for bed, data in enumerate(nights):
        name = f"lab-{tag}-{bed}"
        replays.append(_replay(data, name, stop_after=half if faults and bed == VANISH else None))
        hooks = ["epoch=py:tests.test_lab:explode"] if faults and bed == HOOK else []
        beds.append(BedSpec(f"bed{bed:02d}", _query(name), resolve_settings({"hooks": hooks})))
    if faults:  # a stream with no channel the model can stage: that bed fails, alone
        name = f"lab-{tag}-aux"
        aux = loopback_replay(np.zeros((3000, 2), np.float32), SFREQ, name, SPEED, labels=("AUX1", "AUX2"))
        replays.append(aux)
        beds.append(BedSpec("aux", _query(name)))
    plan = LabPlan(
        out=out,
        step=step,
        exit_after_lost_s=1.5,
        report=False,
        outlets=False,
        keep_raw=False,  # type: ignore[arg-type]
    )
    result = run_lab(beds, model, plan)
    for replay in replays:
        replay.stop()
    return result


def test_sixteen_beds_stepped_together_stage_as_each_alone_and_survive_a_bad_neighbour(
    nights, model, alone, tmp_path
):
    result = _lab(nights, model, tmp_path, "together", faults=True)
    status = {bed.name: bed.status for bed in result.beds}
    assert status["aux"].startswith("failed") and "channel" in status["aux"]
    assert all(status[f"bed{b:02d}"] == "ended" for b in range(N_BEDS)), status
    assert result.bed_steps > result.batched_calls  # beds were stepped together
    for bed in range(N_BEDS):
        got, want = _staged(tmp_path / f"bed{bed:02d}"), alone[bed]
        if bed == VANISH:  # staged until its stream went, like its night alone up to there
            assert 0 < len(got) < len(want)
            want = want[: len(got)]
        assert [r[:2] + r[7:] for r in got] == [r[:2] + r[7:] for r in want], f"bed {bed}"
        probs = np.array([[float(p) for p in r[2:7]] for r in got])
        # A batched step sums BLAS rows in another order than a single one: float32 rounding, one unit of
        # the file's fifth decimal at most.
        np.testing.assert_allclose(probs, [[float(p) for p in r[2:7]] for r in want], atol=1.01e-5)
    assert len(_staged(tmp_path / f"bed{GARBAGE:02d}")) == len(NIGHT)
    failed_hooks = night_events(tmp_path / f"bed{HOOK:02d}", "hook_result")
    assert len(failed_hooks) == len(NIGHT) and {h["status"] for h in failed_hooks} == {"failed"}
    assert night_events(tmp_path / f"bed{VANISH:02d}", "signal_lost")


def test_beds_stepped_alone_give_exactly_the_numbers_of_run(nights, model, alone, tmp_path):
    result = _lab(nights[4:12], model, tmp_path, "alone", faults=False)
    assert result.batched_calls == 0
    for bed in range(8):
        assert _staged(tmp_path / f"bed{bed:02d}") == alone[bed + 4]


def test_a_killed_lab_resumes_every_bed(nights, tmp_path):
    tag = uuid.uuid4().hex[:6]
    long_night = [np.concatenate([data, data]) for data in nights[:8]]
    names = [f"kill-{tag}-{bed}" for bed in range(8)]
    replays = [loopback_replay(data, SFREQ, name, 20.0) for data, name in zip(long_night, names, strict=True)]
    args = ["lab", *(f"--bed=bed{b}={name}" for b, name in enumerate(names)), "--out", str(tmp_path)]
    args += ["--no-dashboard", "--no-report", "--no-outlets", "--no-raw", "--exit-after-lost", "1.5"]
    args += ["--resolve-timeout", "30", "--lost-after", "1"]
    first = streamstage_cli(*args)
    folders = [tmp_path / f"bed{b}" for b in range(8)]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all(_rows(f) >= 4 for f in folders):
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    before = [_rows(f) for f in folders]
    assert min(before) >= 4, before
    second = streamstage_cli(*args, "--resume")
    _, err = second.communicate(timeout=120)
    for replay in replays:
        replay.join()
    assert second.returncode == 0, err
    for folder, kept in zip(folders, before, strict=True):
        indices = [int(r[0]) for r in hypnogram_rows(folder)]
        assert indices == sorted(set(indices)), f"{folder.name}: an epoch written twice"
        assert len(indices) > kept, f"{folder.name} staged nothing after the resume"
        assert night_events(folder, "resumed"), folder.name
        starts = [float(r[1]) for r in hypnogram_rows(folder)]
        assert all(math.isclose(b - a, 30.0) for a, b in itertools.pairwise(starts) if b - a < 31)


def _rows(folder: Path) -> int:
    path = folder / "hypnogram.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


def test_a_bed_thread_runs_torch_with_the_labs_thread_count(model, tmp_path, monkeypatch):
    """``torch.set_num_threads`` holds for its own thread only: a bed's thread sets the lab's count before
    its night, or every model step there runs torch's kernels with OpenMP's default team (measured: a
    192-value ``torch.erfc`` 3.4 ms instead of 1.4 µs)."""
    calls: list[tuple[str, str, int]] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("set", _thread(), n)))
    monkeypatch.setattr(BedRunner, "_night", lambda runner: calls.append(("night", _thread(), 0)))
    runner = BedRunner(BedSpec("bed", _query("none")), model, NightPlan(out=tmp_path), threading.Event())
    runner.start().join(10)
    assert calls == [("set", "bed bed", torch.get_num_threads()), ("night", "bed bed", 0)]
    assert runner.status == "ended"


def _thread() -> str:
    return threading.current_thread().name


def _peeked(pipeline: StagingPipeline, signal: np.ndarray) -> tuple[list, list]:
    """The epochs and provisional peeks of ``signal`` pushed in 1-s chunks, a peek taken after each (live)."""
    epochs, peeks, second = [], [], round(SFREQ)
    for start in range(0, len(signal), second):
        epochs += pipeline.push(signal[start : start + second])
        peeks += pipeline.take_provisional()
    return epochs, peeks


def test_a_raw_models_provisional_peeks_in_a_lab_are_those_of_its_night_alone():
    """Three beds' pipelines (what ``run_night`` runs) on one lab's seats, in threads: every epoch and every
    peek as their pipelines' of their own give. A peek steps a copy of the bed's state apart (it never
    waits for the other beds): the lab steps the epochs only."""
    raw = load_model("raw")
    signals = [SyntheticEEG(NIGHT[:4], SFREQ, seed=bed).generate().T.astype(np.float64) for bed in range(3)]
    alone = [_peeked(StagingPipeline(raw, SFREQ), signal) for signal in signals]
    lab, together = LabStepper(raw, len(signals)), [None] * len(signals)
    pipelines = [StagingPipeline(raw, SFREQ, stager=lab.seat(bed)) for bed in range(len(signals))]

    def run(bed: int) -> None:
        together[bed] = _peeked(pipelines[bed], signals[bed])
        lab.leave(bed)

    threads = [threading.Thread(target=run, args=(bed,)) for bed in range(len(signals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for bed, ((epochs, peeks), (want_epochs, want_peeks)) in enumerate(zip(together, alone, strict=True)):
        assert len(peeks) == len(want_peeks) > 3 * len(epochs) > 0, f"bed {bed}"
        for got, want in [*zip(epochs, want_epochs, strict=True), *zip(peeks, want_peeks, strict=True)]:
            assert (got.index, got.start_s, got.stage) == (want.index, want.start_s, want.stage)
            np.testing.assert_allclose(got.probs, want.probs, atol=1e-6)  # a batch's float32 rounding
    assert lab.steps == sum(len(epochs) for epochs, _ in together)
