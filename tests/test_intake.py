"""The stream intake: one way in for every source, so one recording gets one set of flags."""

from __future__ import annotations

import itertools
from pathlib import Path

import edfio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.config import Settings
from streamstage.live.session import NightSession, SessionOptions, stream_format
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.sources import EdfSource
from streamstage.offline import RecordingSource, stage_recording
from streamstage.output import NightWriter
from streamstage.signal.channels import Montage
from streamstage.signal.intake import StreamFormat, StreamIntake
from streamstage.sim import SyntheticEEG
from streamstage.sinks import Delivery, NightSink, night_sinks

SFREQ = 128.0
HYPNOGRAM = np.array([0, 0, 1, 2, 2, 2, 2, 3, 3, 2])
RAIL_UV = 300.0
CLIPPED_EPOCHS = (4, 5)


def _night() -> np.ndarray:
    """Fpz and Cz (µV): Fpz sits at its amplifier's rail through two epochs, which Fpz-Cz hides."""
    eeg = SyntheticEEG(HYPNOGRAM, SFREQ, seed=3).generate()[0]
    cz = 0.5 * SyntheticEEG(HYPNOGRAM, SFREQ, seed=4).generate()[0]
    fpz = np.clip(eeg + cz, -RAIL_UV + 1, RAIL_UV - 1)
    for epoch in CLIPPED_EPOCHS:
        for second in (3, 12, 21):  # 10 % of the epoch at the rail, in bursts too short to count as flat
            start = int((epoch * 30 + second) * SFREQ)
            fpz[start : start + int(SFREQ)] = RAIL_UV
    return np.stack([fpz, cz], axis=1)


@pytest.fixture(scope="module")
def clipped_edf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("intake") / "clipped.edf"
    data = _night()
    signals = [
        edfio.EdfSignal(
            data[:, i], SFREQ, label=label, physical_dimension="uV", physical_range=(-RAIL_UV, RAIL_UV)
        )
        for i, label in enumerate(("Fpz", "Cz"))
    ]
    edfio.Edf(signals).write(path)
    return path


class _Collect(NightSink):
    def __init__(self) -> None:
        self.epochs: list = []

    def on_epoch(self, delivery: Delivery) -> None:
        self.epochs.append(delivery.outward)


def _live(model, edf: Path, folder: Path) -> list:
    """The file as ``replay`` publishes it (float32, its labels, units and ranges) into the live session."""
    source = EdfSource(edf)
    layout = StreamLayout(
        "replay",
        "EEG",
        "id",
        "host",
        "uid",
        source.sfreq_hz,
        "float32",
        source.labels,
        source.units,
        ("EEG",) * len(source.labels),
        source.physical_ranges,
    )
    collect = _Collect()
    writer = NightWriter(folder)
    try:
        sinks = night_sinks(writer, Settings(), extra=[collect])
        session = NightSession(model, layout, writer, SessionOptions(channels=("Fpz-Cz",)), sinks)
        data = np.concatenate(list(source.iter_chunks(source.labels, 10.0))).astype(np.float32)
        times = 500.0 + np.arange(len(data)) / source.sfreq_hz
        for start in range(0, len(data), 333):
            session.on_chunk(data[start : start + 333], times[start : start + 333])
        session.close()
    finally:
        writer.close()
    return collect.epochs


def test_a_file_staged_and_the_same_file_streamed_get_the_same_flags(tiny_model, clipped_edf, tmp_path):
    offline = stage_recording(RecordingSource.open(clipped_edf, ["Fpz-Cz"]), tiny_model)
    live = _live(tiny_model, clipped_edf, tmp_path / "live")
    assert [e.quality for e in live] == [e.quality for e in offline]
    assert [e.index for e in offline if e.quality == "clipped"] == list(CLIPPED_EPOCHS)
    np.testing.assert_allclose([e.probs for e in live], [e.probs for e in offline], atol=1e-4)


def _intake(n_channels: int = 2, units: str = "uV", sfreq: float = SFREQ) -> StreamIntake:
    labels = tuple(f"ch{i}" for i in range(n_channels))
    stream = StreamFormat(labels, (units,) * n_channels, sfreq, ((-RAIL_UV, RAIL_UV),) * n_channels)
    return StreamIntake.for_model(stream, ("ch0-ch1",))


def _take(intake: StreamIntake, data: np.ndarray, times: np.ndarray, cuts: list[int]) -> tuple:
    derived, missing = [], []
    edges = [0, *sorted(set(cuts)), len(data)]
    for a, b in itertools.pairwise(edges):
        for block in intake.push(data[a:b], times[a:b]).blocks:
            derived.append(block.derived_uv)
            missing.append(block.missing)
    for block in intake.flush().blocks:
        derived.append(block.derived_uv)
        missing.append(block.missing)
    return np.concatenate(derived), np.concatenate(missing)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3 * int(30 * SFREQ) - 1), max_size=12))
def test_any_chunking_gives_the_same_samples_and_mask(cuts: list[int]) -> None:
    data = _night()[: 3 * int(30 * SFREQ)].copy()
    data[1000:1010, 1] = np.nan
    data[2000, 0] = np.inf
    times = 10.0 + np.arange(len(data)) / SFREQ
    whole = _take(_intake(), data, times, [])
    cut = _take(_intake(), data, times, cuts)
    np.testing.assert_array_equal(cut[1], whole[1])
    np.testing.assert_array_equal(cut[0], whole[0])
    assert whole[1][1000:1010].all() and whole[1][2000].all()  # NaN and Inf: missing, either source
    assert not whole[1][:1000].any()


def test_units_are_read_from_the_amplitude_when_the_stream_gives_none() -> None:
    intake = _intake(units="")
    volts = _night()[: int(10 * SFREQ)] * 1e-6
    taken = intake.push(volts, np.arange(len(volts)) / SFREQ)
    assert intake.unit_factors == (1e6, 1e6)
    assert [kind for kind, _ in taken.notices] == ["units_notice"] * 2
    assert all("no unit" in message and "read as V" in message for _, message in taken.notices)
    derived = np.concatenate([b.derived_uv for b in taken.blocks])
    np.testing.assert_allclose(derived[:, 0], (volts[:, 0] - volts[:, 1]) * 1e6, rtol=1e-6)


def test_a_restored_intake_continues_exactly(tmp_path) -> None:
    data = _night()[: 4 * int(30 * SFREQ)]
    times = 3.0 + np.arange(len(data)) / SFREQ
    half = len(data) // 2
    straight = _intake()
    first = [b.derived_uv for b in straight.push(data[:half], times[:half]).blocks]
    state = straight.state_dict()
    rest = [b.derived_uv for b in straight.push(data[half:], times[half:]).blocks]
    restored = _intake()
    restored.load_state_dict(state)
    again = [b.derived_uv for b in restored.push(data[half:], times[half:]).blocks]
    assert first
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(rest))
    assert restored.n_samples == straight.n_samples


def test_the_intake_for_a_model_picks_the_montage_as_run_does() -> None:
    stream = StreamFormat(("TP9", "AF7", "AF8", "TP10"), ("microvolts",) * 4, 256.0)
    assert StreamIntake.for_model(stream, ("Fpz-Cz",)).montage.labels == ("AF7-TP9",)
    layout = StreamLayout("m", "EEG", "", "", "", 256.0, "float32", stream.labels, stream.units, ("EEG",) * 4)
    assert stream_format(layout) == stream
    assert isinstance(StreamIntake.for_model(stream, ("Fpz-Cz",), ["AF8"], "TP10").montage, Montage)


def test_a_raw_model_night_hands_provisional_stages_to_the_sinks(tmp_path) -> None:
    from streamstage.dashboard import DashboardState
    from streamstage.model.checkpoint import load_model

    class Provisional(NightSink):
        def __init__(self) -> None:
            self.seen: list = []

        def on_provisional(self, provisional) -> None:
            self.seen.append(provisional)

    seen, dashboard = Provisional(), DashboardState()
    layout = StreamLayout("m", "EEG", "", "", "", SFREQ, "float32", ("Fpz", "Cz"), ("uV", "uV"), ("EEG",) * 2)
    writer = NightWriter(tmp_path / "night")
    try:
        sinks = night_sinks(writer, Settings(), dashboard, extra=[seen])
        session = NightSession(load_model("raw"), layout, writer, SessionOptions(channels=("Fpz-Cz",)), sinks)
        data = _night()[: int(70 * SFREQ)]
        times = np.arange(len(data)) / SFREQ
        for start in range(0, len(data), int(SFREQ)):
            session.on_chunk(data[start : start + int(SFREQ)], times[start : start + int(SFREQ)])
        session.close()
    finally:
        writer.close()
    assert len(seen.seen) >= 8  # every 5 s of each epoch in progress
    assert dashboard.provisional == seen.seen[-1]


def test_training_streams_read_a_file_as_staging_does(clipped_edf):
    """The raw front end's training streams, the feature model's training features and staging read a file
    through one intake: the same features, and a clipped source epoch is not good in either."""
    from streamstage.offline import recording_features
    from streamstage.training.distill import recording_streams

    (stream,) = recording_streams(clipped_edf, ["Fpz-Cz"])
    features, good = recording_features(RecordingSource.open(clipped_edf, ["Fpz-Cz"]))
    np.testing.assert_array_equal(stream.features, features[:, 0])
    np.testing.assert_array_equal(stream.good, good)
    assert not good[list(CLIPPED_EPOCHS)].any() and good.sum() >= len(HYPNOGRAM) - len(CLIPPED_EPOCHS) - 1
