"""End to end over real LSL on loopback: replay -> ``streamstage run`` in a subprocess -> night folder.

LSLAPICFG (set by conftest to the loopback-only config) is inherited by the subprocesses, so nothing leaves
127.0.0.1. Each test uses its own stream name.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import edfio
import numpy as np
import pytest

from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.resolve import resolve_stream
from streamstage.sim import SyntheticEEG
from tests.nights import hypnogram_rows, loopback_replay, night_events, streamstage_cli

pytestmark = pytest.mark.slow
SFREQ = 256.0
NIGHT = np.array([0, 0, 1, 2, 2, 2, 3, 3, 2, 2, 4, 4, 1, 2, 2, 0])


@pytest.fixture(scope="module")
def night_uv() -> np.ndarray:
    return SyntheticEEG(NIGHT, SFREQ, seed=11).generate().T.astype(np.float64)


@pytest.fixture(scope="module")
def night_edf(night_uv, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("edf") / "night.edf"
    signal_ = edfio.EdfSignal(
        night_uv[:, 0],
        sampling_frequency=SFREQ,
        label="EEG Fpz-Cz",
        physical_dimension="uV",
        physical_range=(-2000, 2000),
    )
    edfio.Edf([signal_]).write(path)
    return path


def _run_args(name: str, out: Path) -> list[str]:
    return [
        "run",
        "--name",
        name,
        "--out",
        str(out),
        "--no-dashboard",
        "--exit-after-lost",
        "1.5",
        "--resolve-timeout",
        "20",
        "--no-report",
    ]


def test_replay_into_run_gives_the_hypnogram_of_stage(night_uv, night_edf, tmp_path):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    replay = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 40.0)
    live = streamstage_cli(*_run_args(name, tmp_path / "live"))
    _, err = live.communicate(timeout=120)
    replay.join()
    assert live.returncode == 0, err
    offline = streamstage_cli("stage", str(night_edf), "--out", str(tmp_path / "offline"))
    _, offline_err = offline.communicate(timeout=120)
    assert offline.returncode == 0, offline_err
    live_rows, file_rows = hypnogram_rows(tmp_path / "live"), hypnogram_rows(tmp_path / "offline")
    assert len(live_rows) == len(file_rows) == len(NIGHT)
    assert [r[3] for r in live_rows] == [r[3] for r in file_rows]
    for a, b in zip(live_rows, file_rows, strict=True):
        # The stream carries float32 and the EDF 16-bit samples: probabilities agree closely, not bitwise.
        np.testing.assert_allclose([float(x) for x in a[4:9]], [float(x) for x in b[4:9]], atol=0.02)


def test_killed_run_resumes_and_continues_like_an_uninterrupted_run(night_uv, tmp_path):
    from streamstage.model.checkpoint import load_model
    from streamstage.pipeline import StagingPipeline
    from streamstage.signal.intake import StreamFormat, StreamIntake

    name = f"kill-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "night"
    samples = night_uv.astype(np.float32)
    replay = loopback_replay(samples, SFREQ, name, 12.0, buffer_s=3600)
    first = streamstage_cli(*_run_args(name, folder))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (
        not (folder / "hypnogram.csv").exists() or len(hypnogram_rows(folder)) < 5
    ):
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    before_kill = (folder / "hypnogram.csv").read_text()
    assert len(hypnogram_rows(folder)) >= 5
    time.sleep(1.0)  # samples published now are lost: the gap
    second = streamstage_cli(
        *[a for a in _run_args(name, folder) if a not in ("--out", str(folder))], "--resume", str(folder)
    )
    _, err = second.communicate(timeout=120)
    replay.join()
    assert second.returncode == 0, err
    text = (folder / "hypnogram.csv").read_text()
    assert text.startswith(before_kill.rsplit("\n", 1)[0])  # every row written before the kill is kept
    indices = [int(r[0]) for r in hypnogram_rows(folder)]
    assert indices == list(range(len(indices))) and indices[-1] == len(NIGHT) - 1
    gap = next(e for e in night_events(folder) if e["event"] == "resume_gap")

    # The uninterrupted reference: the same samples, with the same ones missing, through the same path.
    t0 = replay.t0
    last_before = round((gap["from_s"] - t0) * SFREQ) + 1
    first_after = round((gap["to_s"] - t0) * SFREQ)
    times = t0 + np.arange(len(samples)) / SFREQ
    intake = StreamIntake.for_model(StreamFormat(("Fpz-Cz",), ("microvolts",), SFREQ), ("Fpz-Cz",))
    pipeline: StagingPipeline | None = None
    reference = []
    for part in (slice(0, last_before), slice(first_after, len(samples))):
        for block in intake.push(samples[part], times[part]).blocks:
            if pipeline is None:
                assert block.times_s is not None
                start_s = float(block.times_s[0])
                pipeline = StagingPipeline(load_model(), SFREQ, start_s, source_clipped=intake.clipped)
            reference += pipeline.push(block.derived_uv, block.missing)
    assert pipeline is not None
    reference += pipeline.finish()
    gap_epochs = {e.index for e in reference if e.start_s < gap["to_s"] and e.end_s > gap["from_s"]}
    rows = {int(r[0]): r for r in hypnogram_rows(folder)}
    after = [e for e in reference if e.start_s >= gap["to_s"] and e.index not in gap_epochs]
    assert after, "the resumed run staged epochs after the gap"
    for epoch in after:
        assert rows[epoch.index][3] == epoch.stage_name
        np.testing.assert_allclose([float(x) for x in rows[epoch.index][4:9]], epoch.probs, atol=1e-4)


def test_missing_stream_lists_what_was_seen(night_uv, tmp_path):
    name = f"seen-{uuid.uuid4().hex[:8]}"
    replay = loopback_replay(night_uv[: int(60 * SFREQ)].astype(np.float32), SFREQ, name, 1.0)
    resolve_stream(name=name, timeout_s=20.0)  # announced before `run` looks (a loaded machine is slow)
    try:
        run = streamstage_cli(
            "run",
            "--name",
            "no-such-stream",
            "--out",
            str(tmp_path / "n"),
            "--resolve-timeout",
            "5",
            "--no-dashboard",
        )
        _, err = run.communicate(timeout=60)
    finally:
        replay.stop()
        replay.join()
    assert run.returncode == 1
    assert "streamstage: error:" in err and name in err and "Traceback" not in err


def test_wrong_channel_is_one_clear_line(night_uv, tmp_path):
    name = f"chan-{uuid.uuid4().hex[:8]}"
    replay = loopback_replay(night_uv[: int(60 * SFREQ)].astype(np.float32), SFREQ, name, 1.0)
    try:
        run = streamstage_cli(*_run_args(name, tmp_path / "n"), "--channel", "Cz")
        _, err = run.communicate(timeout=60)
    finally:
        replay.stop()
        replay.join()
    assert run.returncode == 1 and "Traceback" not in err
    assert "no channel 'Cz'" in err and "Fpz-Cz" in err


def test_unwritable_output_is_refused_before_the_night(tmp_path):
    (tmp_path / "a-file").write_text("x")
    run = streamstage_cli(
        "run", "--name", "whatever", "--out", str(tmp_path / "a-file" / "night"), "--resolve-timeout", "1"
    )
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1 and "cannot write to the output folder" in err
    assert "looking for the stream" not in err


@pytest.mark.parametrize(
    ("recording", "start_clock", "expected_kind"),
    [("synthetic", "06:53", "fallback"), ("nap", "06:38", "smart")],
)
def test_alarm_fires_its_hook_at_the_expected_epoch(
    night_uv, tmp_path, recording, start_clock, expected_kind
):
    from streamstage.alarm import AlarmConfig, ClockMap, simulate
    from streamstage.alarm.clock import parse_clock_time
    from streamstage.commands.demo import SAMPLE_EDF, bundled
    from streamstage.lsl.sources import EdfSource
    from streamstage.records import StagedEpoch
    from streamstage.report import read_night

    name = f"alarm-{uuid.uuid4().hex[:8]}"
    hook_out = tmp_path / "alarm.json"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys\nopen({str(hook_out)!r}, 'a').write(sys.stdin.read() + '\\n')\n")
    if recording == "synthetic":
        replay, extra = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 40.0), []
    else:  # the real nap: the shipped model calls it light (N2) after about 16 min, inside the window
        source = EdfSource(bundled(SAMPLE_EDF))
        replay = ReplayThread(source, 60.0, name=name, wait_for_consumer_s=30.0, linger_s=0.5)
        replay.start()
        extra = ["--channel", "F3", "--max-epochs", "40"]
    folder = tmp_path / "night"
    run = streamstage_cli(
        *_run_args(name, folder),
        *extra,
        "--start-clock",
        start_clock,
        "--alarm",
        "07:00",
        "--window",
        "6m",
        "--alarm-min-sleep",
        "1m",
        "--alarm-min-prob",
        "0.3",
        "--hook",
        f"alarm={sys.executable} {hook}",
    )
    _, err = run.communicate(timeout=120)
    replay.stop()
    replay.join()
    assert run.returncode == 0, err
    fired = [json.loads(line) for line in hook_out.read_text().splitlines()]
    assert len(fired) == 1 and fired[0]["event"] == "alarm"
    assert fired[0]["extra"]["kind"] == expected_kind

    # The same rule over the staged night, offline, says where it should have fired.
    night = read_night(folder / "hypnogram.csv")
    started = next(e for e in night_events(folder) if e["event"] == "night_started")
    clock = ClockMap.from_start_clock(start_clock, started["stream_start_s"])
    config = AlarmConfig(parse_clock_time("07:00"), window_s=360, min_sleep_s=60, min_prob=0.3)
    epochs = [
        StagedEpoch(i, started["stream_start_s"] + 30 * i, int(s), tuple(p), q)
        for i, (s, p, q) in enumerate(zip(night.stages, night.probs, night.quality, strict=True))
    ]
    expected = next(d for d in simulate(config, clock, epochs) if d.fired)
    assert expected.kind == expected_kind
    if expected_kind == "smart":
        assert fired[0]["epoch"] == expected.epoch.index
    else:  # the fallback fires when stream time reaches 07:00, whether or not an epoch just ended
        assert fired[0]["wall"] >= fired[0]["extra"]["alarm_at"]


def test_demo_ends_by_itself_with_staged_epochs(tmp_path):
    demo = streamstage_cli("demo", "--no-dashboard", "--speed", "150", "--out", str(tmp_path / "demo"))
    _, err = demo.communicate(timeout=240)
    assert demo.returncode == 0, err
    rows = hypnogram_rows(tmp_path / "demo")
    assert len(rows) >= 45  # 25 minutes of nap: 50 epochs
    assert "night folder" in err and (tmp_path / "demo" / "summary.txt").is_file()


def test_ctrl_c_stops_cleanly_with_files_flushed_and_a_summary(night_uv, tmp_path):
    name = f"sigint-{uuid.uuid4().hex[:8]}"
    replay = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 10.0)
    folder = tmp_path / "night"
    run = streamstage_cli(
        "run", "--name", name, "--out", str(folder), "--no-dashboard", "--resolve-timeout", "20"
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (
        not (folder / "hypnogram.csv").exists() or len(hypnogram_rows(folder)) < 3
    ):
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    try:
        out, err = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGABRT)  # faulthandler prints where every thread hangs
        out, err = run.communicate()
        pytest.fail(f"run did not stop after Ctrl-C:\n{err[-4000:]}")
    replay.stop()
    replay.join()
    assert run.returncode == 0, err
    assert "stopped by Ctrl-C" in err and "streamstage night report" in out
    assert len(hypnogram_rows(folder)) >= 3 and (folder / "summary.txt").is_file()
    assert night_events(folder)[-1]["event"] == "night_ended"
