"""Replay on loopback: exact values, labels, units and stream times; hypnogram markers; the EDF command."""

from __future__ import annotations

import argparse
import threading
import time
import uuid

import edfio
import numpy as np
import pylsl
import pytest

from streamstage.errors import ChannelError, InputFileError
from streamstage.io.edf import EdfRecording
from streamstage.io.hypnogram import Hypnogram
from streamstage.lsl.inlet import LslInlet, StreamChunk
from streamstage.lsl.replay import INDEX_LABEL, ReplayThread
from streamstage.lsl.sources import ArraySource, EdfSource

FS = 200.0


def unique(prefix: str = "test-replay") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def drain(inlet: LslInlet, n_samples: int, timeout_s: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    chunks: list[StreamChunk] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(c.samples) for c in chunks) < n_samples and time.monotonic() < deadline:
        item = inlet.poll(0.05)
        if isinstance(item, StreamChunk):
            chunks.append(item)
    return np.concatenate([c.samples for c in chunks]), np.concatenate([c.timestamps for c in chunks])


def marker_inlet(name: str) -> pylsl.StreamInlet:
    infos = pylsl.resolve_byprop("name", name, 1, 2.0)
    assert infos, f"no marker stream {name}"
    inlet = pylsl.StreamInlet(infos[0], processing_flags=pylsl.proc_clocksync)
    inlet.open_stream(2.0)
    return inlet


def pull_markers(inlet: pylsl.StreamInlet, count: int) -> tuple[list[str], list[float]]:
    values, stamps = [], []
    deadline = time.monotonic() + 5.0
    while len(values) < count and time.monotonic() < deadline:
        sample, stamp = inlet.pull_sample(timeout=0.05)
        if sample is not None:
            values.append(sample[0])
            stamps.append(stamp)
    return values, stamps


def test_replay_publishes_exact_samples_at_exact_stream_times() -> None:
    n = 2001
    data = np.random.default_rng(0).normal(0.0, 40.0, (n, 2))
    name = unique()
    source = ArraySource(data, FS, ["Fpz-Cz", "Pz-Oz"], source_id=f"sid-{name}")
    replay = ReplayThread(
        source, speed=0, name=name, chunk_s=0.13, include_index=True, wait_for_consumer_s=5.0, linger_s=10.0
    ).start()
    try:
        with LslInlet.open(name=name, timeout_s=2.0) as inlet:
            layout = inlet.layout
            samples, stamps = drain(inlet, n)
        assert replay.done.wait(5.0)
    finally:
        replay.stop()
        replay.join(5.0)
    assert (layout.type, layout.sfreq_hz, layout.channel_format, layout.source_id) == (
        "EEG",
        FS,
        "float32",
        f"sid-{name}",
    )
    assert layout.labels == (INDEX_LABEL, "Fpz-Cz", "Pz-Oz")
    assert layout.units == ("samples", "microvolts", "microvolts")
    assert np.array_equal(samples[:, 0], np.arange(n))  # every sample once, in order
    assert np.array_equal(samples[:, 1:], data.astype(np.float32).astype(np.float64))  # float32 of the µV
    assert replay.samples_sent == n
    assert replay.last_timestamp == replay.t0 + (n - 1) / FS
    np.testing.assert_allclose(stamps, replay.t0 + np.arange(n) / FS, rtol=0, atol=2e-3)  # clocksync only
    assert stamps[-1] == pytest.approx(replay.t0 + (n - 1) / FS, abs=2e-3)


def test_hypnogram_goes_out_as_markers_at_epoch_starts_and_loops() -> None:
    data = np.zeros((int(2 * FS), 1))
    name = unique()
    hypnogram = Hypnogram(np.array([1, -1]), epoch_s=1.0, start_s=0.5)
    replay = ReplayThread(
        ArraySource(data, FS, ["C3"], source_id=f"sid-{name}"),
        speed=40.0,
        name=name,
        loop=True,
        hypnogram=hypnogram,
        include_index=True,
        wait_for_consumer_s=5.0,
        linger_s=10.0,
    ).start()
    try:
        markers = marker_inlet(f"{name}-stages")
        with LslInlet.open(name=name, timeout_s=2.0) as inlet:
            samples, _ = drain(inlet, 1000)
            values, stamps = pull_markers(markers, 4)
    finally:
        replay.stop()
        replay.join(5.0)
    assert np.array_equal(samples[:1000, 0], np.arange(1000))  # the second pass continues the stream
    assert values == ["N1", "?", "N1", "?"]
    np.testing.assert_allclose(stamps, replay.t0 + np.array([0.5, 1.5, 2.5, 3.5]), rtol=0, atol=2e-3)


def test_errors_in_the_thread_reach_join() -> None:
    class Broken(ArraySource):
        def iter_chunks(self, labels, chunk_s):
            yield self.data_uv[:10]
            raise InputFileError("the file ends early")

    replay = ReplayThread(Broken(np.zeros((100, 1)), FS, ["C3"], "sid-broken"), speed=0, name=unique())
    replay.start()
    assert replay.done.wait(5.0)
    with pytest.raises(InputFileError, match="ends early"):
        replay.join(5.0)


def test_bad_arguments_are_refused() -> None:
    source = ArraySource(np.zeros((10, 2)), FS, ["C3", "C4"])
    with pytest.raises(ChannelError, match="no channel 'Cz' to replay; the channels are: C3, C4"):
        ReplayThread(source, labels=["Cz"])
    with pytest.raises(ValueError, match="speed"):
        ReplayThread(source, speed=-1.0)
    with pytest.raises(ChannelError, match="2 labels for data of shape"):
        ArraySource(np.zeros((10, 3)), FS, ["C3", "C4"])


def write_edf(path, seconds: int = 60) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    truth = {label: rng.normal(0.0, 30.0, seconds * 100) for label in ("EEG Fpz-Cz", "EEG Pz-Oz")}
    signals = [
        edfio.EdfSignal(values, 100, label=label, physical_dimension="uV", physical_range=(-500, 500))
        for label, values in truth.items()
    ]
    signals.append(edfio.EdfSignal(np.zeros(seconds * 10), 10, label="Resp", physical_dimension="uV"))
    signals.append(edfio.EdfSignal(np.zeros(seconds * 100), 100, label="Marker", physical_dimension=""))
    edfio.Edf(signals).write(path)
    return truth


def test_edf_source_picks_voltage_channels_of_one_rate_and_a_stable_source_id(tmp_path) -> None:
    path = tmp_path / "night.edf"
    write_edf(path)
    source = EdfSource(path)
    assert source.labels == ("EEG Fpz-Cz", "EEG Pz-Oz")  # not Resp (10 Hz), not Marker (no unit)
    assert (source.sfreq_hz, source.units) == (100.0, ("microvolts", "microvolts"))
    assert EdfSource(path).source_id == source.source_id  # a restarted replay is the same source
    assert EdfSource(path, ["EEG Pz-Oz"]).source_id != source.source_id
    with pytest.raises(ChannelError, match=r"EEG Fpz-Cz 100 Hz, Resp 10 Hz.*--channels"):
        EdfSource(path, ["EEG Fpz-Cz", "Resp"])


def test_replay_command_publishes_the_file_and_its_hypnogram(tmp_path, capsys) -> None:
    from streamstage.commands import replay as replay_command

    path = tmp_path / "night.edf"
    write_edf(path)
    stages = tmp_path / "stages.txt"
    stages.write_text("W\nN2\n")
    parser = argparse.ArgumentParser()
    replay_command.register(parser.add_subparsers())
    name = unique()
    args = parser.parse_args(
        ["replay", str(path), "--speed", "max", "--name", name, "--hypnogram", str(stages)]
    )
    exit_codes: list[int] = []
    worker = threading.Thread(target=lambda: exit_codes.append(args.handler(args)), daemon=True)
    worker.start()
    markers = marker_inlet(f"{name}-stages")
    with LslInlet.open(name=name, timeout_s=3.0) as inlet:
        samples, stamps = drain(inlet, 6000)
        values, marker_stamps = pull_markers(markers, 2)
    worker.join(10.0)
    assert exit_codes == [0]
    recording = EdfRecording.open(path)
    expected = np.column_stack([recording.read_uv(label) for label in ("EEG Fpz-Cz", "EEG Pz-Oz")])
    assert np.array_equal(samples, expected.astype(np.float32).astype(np.float64))
    assert values == ["W", "N2"]
    assert marker_stamps[1] - marker_stamps[0] == pytest.approx(30.0, abs=1e-6)
    assert marker_stamps[0] == pytest.approx(stamps[0], abs=2e-3)  # same clock as the samples
    out = capsys.readouterr().out
    assert f"as LSL stream {name!r}" in out and "done: 6000 samples" in out


@pytest.mark.parametrize(("text", "speed"), [("max", 0.0), ("0", 0.0), ("60", 60.0), ("1.5", 1.5)])
def test_speed_option(text: str, speed: float) -> None:
    from streamstage.commands.replay import replay_speed

    assert replay_speed(text) == speed


@pytest.mark.parametrize("text", ["-2", "fast"])
def test_bad_speed_is_refused(text: str) -> None:
    from streamstage.commands.replay import replay_speed

    with pytest.raises(argparse.ArgumentTypeError):
        replay_speed(text)
