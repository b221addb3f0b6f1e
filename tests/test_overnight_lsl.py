"""Overnight integrity over real loopback LSL and real processes: who may take over a night's stream,
mne-lsl's conventions, a lock a ``kill -9`` does not leave behind, a kill between a row and its state, a
file size limit, damaged state and the small failures a user meets first.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pylsl
import pytest

from streamstage.hooks import Event, HookDispatcher, HookSpec, build_hook
from streamstage.lsl.inlet import SIGNAL_BACK, SOURCE_REFUSED, STREAM_RIVAL, LslInlet, StreamEvent
from streamstage.lsl.meta import write_channels
from streamstage.lsl.resolve import resolve_stream
from streamstage.sim import SyntheticEEG
from tests.nights import hypnogram_rows, loopback_replay, streamstage_cli

pytestmark = pytest.mark.slow
SFREQ = 256.0
NIGHT = np.array([0, 0, 1, 2, 2, 2, 3, 3])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def outlet(name: str, source_id: str, labels=("Fpz",), kind: str = "EEG", unit: str = "microvolts"):
    info = pylsl.StreamInfo(name, kind, len(labels), 100.0, "float32", source_id)
    write_channels(info, labels, [unit] * len(labels), ["EEG"] * len(labels))
    return pylsl.StreamOutlet(info)


def events_until(inlet: LslInlet, kind: str, timeout_s: float = 10.0) -> list[StreamEvent]:
    """Every event the inlet reports until one of ``kind`` (or the timeout)."""
    seen: list[StreamEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = inlet.poll(0.05)
        if isinstance(item, StreamEvent):
            seen.append(item)
            if item.kind == kind:
                break
    return seen


@pytest.fixture(scope="module")
def night_uv() -> np.ndarray:
    return SyntheticEEG(NIGHT, SFREQ, seed=11).generate().T.astype(np.float64)


def _run_args(name: str, *extra: str) -> list[str]:
    return [
        "run",
        "--name",
        name,
        "--no-dashboard",
        "--no-report",
        "--exit-after-lost",
        "1.5",
        "--resolve-timeout",
        "20",
        *extra,
    ]


# -- who the night's stream is ------------------------------------------------------------------------


def test_a_stream_with_the_victims_source_id_but_another_name_is_refused() -> None:
    name, source_id = unique("victim"), unique("sid")
    victim = outlet(name, source_id)
    with LslInlet.open(name=name, timeout_s=5.0, lost_after_s=0.5) as inlet:
        del victim
        attacker = outlet("ATTACKER", source_id)
        seen = events_until(inlet, SOURCE_REFUSED)
        assert [e.kind for e in seen][-1] == SOURCE_REFUSED and SIGNAL_BACK not in [e.kind for e in seen]
        assert "ATTACKER" in seen[-1].message and "--accept-new-source" in seen[-1].message
        victim = outlet(name, source_id)  # the real bridge, restarted
        seen = events_until(inlet, SIGNAL_BACK)
        assert seen[-1].kind == SIGNAL_BACK and inlet.layout.name == name
    del attacker, victim


def test_a_twin_stream_that_ran_beside_the_night_is_reported_and_never_taken_over() -> None:
    source_id = unique("MNE-LSL")
    first = outlet("MNE-LSL-Player", source_id, labels=("Fp1", "Fp2"), kind="eeg", unit="0")
    info = resolve_stream(source_id=source_id, timeout_s=5.0)
    with LslInlet(info, lost_after_s=60.0) as inlet:  # lost when it closes, not for silence
        twin = outlet("MNE-LSL-Player", source_id, labels=("F3", "F4"), kind="eeg", unit="0")
        seen = events_until(inlet, STREAM_RIVAL)
        assert seen and seen[-1].kind == STREAM_RIVAL
        del first  # the night's recording ends; its twin is still playing
        seen = events_until(inlet, SOURCE_REFUSED)
        assert SIGNAL_BACK not in [e.kind for e in seen] and seen[-1].kind == SOURCE_REFUSED
    del twin


def test_the_default_search_finds_mne_lsls_lower_case_eeg_type() -> None:
    name = unique("player")
    player = outlet(name, unique("sid"), kind="eeg", unit="0")
    info = resolve_stream(name=None, type=None, source_id=None, timeout_s=5.0)  # no criterion: the default
    assert info.name() == name and info.type() == "eeg"
    del player


# -- processes killed, locked out, out of room --------------------------------------------------------

_KILL_BETWEEN_ROW_AND_STATE = """
import os, signal, sys
import streamstage.io.files as files
from streamstage.cli import main

real_replace, saves = os.replace, []

def replace(source, target):
    if str(target).endswith("state.npz"):
        saves.append(target)
        if len(saves) == 4:  # epoch 3's row is fsynced; its state is about to be renamed into place
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, target)

files.os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_between_a_row_and_its_state_then_resume_writes_no_row_twice(night_uv, tmp_path):
    name, folder = unique("kill"), tmp_path / "night"
    replay = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 12.0, buffer_s=3600)
    first = subprocess.run(
        [sys.executable, "-c", _KILL_BETWEEN_ROW_AND_STATE, *_run_args(name, "--out", str(folder))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert [int(r[0]) for r in hypnogram_rows(folder)] == [0, 1, 2, 3]
    second = streamstage_cli(*_run_args(name, "--resume", str(folder)))
    _, err = second.communicate(timeout=120)
    replay.join()
    assert second.returncode == 0, err
    indices = [int(r[0]) for r in hypnogram_rows(folder)]
    assert indices == list(range(len(indices))) and len(indices) >= len(NIGHT)


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    folder = tmp_path / "night"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from streamstage.output import NightWriter; "
            f"NightWriter({str(folder)!r}); print('locked', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    second = streamstage_cli("run", "--resume", str(folder), "--resolve-timeout", "1")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1 and "another streamstage process" in err
    assert err.strip().splitlines()[-1].startswith("streamstage: error:") and "Traceback" not in err
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    from streamstage.output import NightWriter

    NightWriter(folder, resume=True).close()  # the kernel let go of the dead process's lock


def test_a_file_size_limit_stops_the_night_with_a_message_and_an_error_status(night_uv, tmp_path):
    name, folder = unique("fsize"), tmp_path / "night"
    replay = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 20.0, buffer_s=3600)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))  # rows fit, the state does not

    run = streamstage_cli(*_run_args(name, "--out", str(folder)), preexec_fn=limit_file_size)
    _, err = run.communicate(timeout=120)
    replay.stop()
    assert run.returncode == 1, err
    assert "streamstage: error: cannot write" in err and "--resume" in err


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04\x14\x00"], ids=["empty", "garbled", "zip"])
def test_damaged_state_is_refused_before_any_stream_with_the_way_on(tmp_path, content):
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "hypnogram.csv").write_text("epoch\n")
    (folder / "state.npz").write_bytes(content)
    run = streamstage_cli("run", "--resume", str(folder), "--resolve-timeout", "1")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert err.strip().splitlines()[-1].startswith("streamstage: error:")
    assert "--rebuild-state" in err and "Traceback" not in err


# -- the small things ---------------------------------------------------------------------------------


def test_a_misspelt_hook_command_is_refused_before_the_stream_is_looked_for(tmp_path):
    run = streamstage_cli(
        "run",
        "--hook",
        "epoch=no-such-hook-program-xyz",
        "--out",
        str(tmp_path / "n"),
        "--resolve-timeout",
        "30",
    )
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1 and "no-such-hook-program-xyz" in err
    assert "looking for the stream" not in err


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "streamstage.toml"
    config.write_bytes(b'[stream]\nname = "caf\xe9"\n')
    run = streamstage_cli("run", "--config", str(config), "--out", str(tmp_path / "n"))
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1 and "not UTF-8" in err and "Traceback" not in err


def test_a_hanging_hook_does_not_outlive_streamstage(tmp_path):
    pid_file = tmp_path / "hook.pid"
    spec = HookSpec(
        events=("epoch",),
        target=("sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"),
        kind="command",
        timeout_s=300.0,
        name="hangs",
    )
    dispatcher = HookDispatcher([build_hook(spec)])
    dispatcher.dispatch(Event(name="epoch"))
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    dispatcher.close(timeout_s=0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_stage_falls_back_to_the_frontal_derivation_like_run(night_uv, tmp_path):
    import edfio

    path = tmp_path / "muse.edf"
    signals = [
        edfio.EdfSignal(
            night_uv[:, 0] * sign,
            sampling_frequency=SFREQ,
            label=label,
            physical_dimension="uV",
            physical_range=(-2000, 2000),
        )
        for label, sign in (("TP9", 0.0), ("AF7", 1.0))
    ]
    edfio.Edf(signals).write(path)
    run = streamstage_cli("stage", str(path), "--out", str(tmp_path / "out"))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "AF7-TP9" in err
    assert len(hypnogram_rows(tmp_path / "out")) == len(NIGHT)


def test_a_finished_replay_sends_no_signal_back(night_uv, tmp_path):
    name, folder = unique("ends"), tmp_path / "night"
    replay = loopback_replay(night_uv.astype(np.float32), SFREQ, name, 40.0, buffer_s=3600)
    run = streamstage_cli(*_run_args(name, "--out", str(folder)))
    _, err = run.communicate(timeout=120)
    replay.join()
    assert run.returncode == 0, err
    events = [json.loads(line)["event"] for line in (folder / "events.jsonl").read_text().splitlines()]
    lost = events.index("signal_lost")
    assert "signal_back" not in events[lost:]
    assert (folder.stat().st_mode & 0o777, (folder / "hypnogram.csv").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )


def test_an_unknown_epoch_goes_out_as_unknown_with_no_probabilities() -> None:
    from streamstage.lsl.outlets import PROBS_STREAM, STAGES_STREAM, StageOutlets
    from streamstage.records import UNKNOWN, StagedEpoch

    source_id = unique("outlets")
    epoch = StagedEpoch(7, pylsl.local_clock(), UNKNOWN, (0.2, 0.2, 0.2, 0.2, 0.2), quality="missing")
    with StageOutlets(source_id) as outlets:
        inlets = []
        for name in (STAGES_STREAM, PROBS_STREAM):
            info = resolve_stream(name=name, source_id=f"{name}@{source_id}", timeout_s=5.0)
            inlets.append(pylsl.StreamInlet(info))
            inlets[-1].open_stream(5.0)
        outlets.push(epoch)
        (marker, _), (probs, _) = (inlet.pull_sample(timeout=5.0) for inlet in inlets)
    assert json.loads(marker[0])["stage"] == "unknown"
    assert np.isnan(probs).all()


def test_a_clock_reset_in_a_live_stream_keeps_the_night_on_one_true_time_axis(night_uv, tmp_path):
    """A sender whose clock jumps back 45 minutes mid-night (stamps in its own clock, pushed 10x faster
    than real time): no negative gap, the break measured by this computer's clock at the stream's pace."""
    name, folder = unique("reset"), tmp_path / "night"
    info = pylsl.StreamInfo(name, "EEG", 1, SFREQ, "float32", name)
    write_channels(info, ["Fpz-Cz"], ["microvolts"], ["EEG"])
    sender = pylsl.StreamOutlet(info)
    run = streamstage_cli(*_run_args(name, "--out", str(folder)))
    assert sender.wait_for_consumers(30.0)
    data = night_uv.astype(np.float32)
    second = int(SFREQ)
    t0 = pylsl.local_clock()
    for start in range(0, len(data), second):  # 10 s of stream per wall second
        if start == len(data) // 2:
            time.sleep(6.0)  # a minute of stream time passes without data ...
            t0 -= 2700.0  # ... and the sender's clock is reset 45 minutes back
        block = data[start : start + second]
        sender.push_chunk(block, t0 + (start + len(block) - 1) / SFREQ)
        time.sleep(0.1)
    _, err = run.communicate(timeout=120)
    del sender
    assert run.returncode == 0, err
    rows = hypnogram_rows(folder)
    assert [int(r[0]) for r in rows] == list(range(len(rows))) and len(rows) > len(NIGHT)  # the gap is in
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    bridged = [e for e in events if e["event"] == "gap_bridged"]
    assert len(bridged) == 1 and bridged[0]["measured_by"] == "wall" and bridged[0]["gap_s"] >= 0
    assert bridged[0]["stream_gap_s"] < -2000
    starts = [float(r[1]) for r in rows]
    assert starts[-1] < starts[0]  # the last epochs are stamped in the reset clock, as the stream is
    assert max(np.diff(starts)) == pytest.approx(30.0, abs=0.1)  # no epoch shifted within a segment


def test_a_resume_after_a_crash_longer_than_ten_minutes_keeps_every_later_epoch_in_place(tmp_path):
    """The issue's headline: kill -9, twelve-odd minutes of stream time down, --resume. The time down is
    written as missing epochs and every later epoch keeps the start the replay gave it."""
    night = SyntheticEEG(np.full(90, 2), SFREQ, seed=3).generate().T.astype(np.float64)
    name, folder = unique("longcrash"), tmp_path / "night"
    replay = loopback_replay(night.astype(np.float32), SFREQ, name, 60.0, buffer_s=3600)  # 45 min in 45 s
    first = streamstage_cli(*_run_args(name, "--out", str(folder)))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (
        not (folder / "hypnogram.csv").exists() or len(hypnogram_rows(folder)) < 14
    ):
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    time.sleep(12.0)  # twelve minutes of stream time published into the void
    second = streamstage_cli(*_run_args(name, "--resume", str(folder)))
    _, err = second.communicate(timeout=180)
    replay.join()
    assert second.returncode == 0, err
    rows = hypnogram_rows(folder)
    assert [int(r[0]) for r in rows] == list(range(len(night) // int(30 * SFREQ)))
    starts = np.array([float(r[1]) for r in rows])
    np.testing.assert_allclose(starts, replay.t0 + 30.0 * np.arange(len(rows)), atol=0.05)
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    bridged = [e for e in events if e["event"] == "gap_bridged"]
    assert len(bridged) == 1 and bridged[0]["measured_by"] == "stream" and bridged[0]["gap_s"] > 600
    missing = [r for r in rows if r[3] == "unknown"]
    assert len(missing) >= 20 and all(r[9] == "missing" for r in missing)
