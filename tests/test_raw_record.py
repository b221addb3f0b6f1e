"""The night's raw signal: a BDF+ file written record by record, readable after a crash, continued on resume.

The stream's first channel is the sample index (as in ``test_lsl_inlet.py``), staged as the reference of
``Fpz``, so the raw file holds it and proves that no sample was dropped or written twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from datetime import datetime
from pathlib import Path

import edfio
import numpy as np
import pytest

from streamstage.config import Settings
from streamstage.io.hypnogram import read_hypnogram
from streamstage.io.raw_record import (
    UV_PER_DIGIT,
    RawLayout,
    RawRecordWriter,
    annotations_path,
    raw_parts,
    read_layout,
)
from streamstage.live.session import NightSession, SessionOptions
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.sources import ArraySource
from streamstage.output import NightWriter
from streamstage.report.night import read_night
from streamstage.sinks import night_sinks
from streamstage.sinks.raw import RawSink

SFREQ = 100.0
LABELS = ("sample_index", "Fpz")
START = datetime(2026, 3, 1, 23, 10, 5, 250000).astimezone()


def indexed(first: int, stop: int) -> np.ndarray:
    index = np.arange(first, stop, dtype=np.float64)
    return np.column_stack([index, 40.0 * np.sin(index / 7.0)])


def read_raw(path: Path) -> edfio.Bdf:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return edfio.read_bdf(path)


def gap_mask(raw: edfio.Bdf, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for note in raw.annotations:
        if note.text == "signal gap":
            first = round(note.onset * SFREQ)
            mask[first : first + round(note.duration * SFREQ)] = True
    return mask


# -- the writer -----------------------------------------------------------------------------------------


def test_samples_come_back_within_a_digit_and_gaps_are_annotated(tmp_path):
    path = tmp_path / "raw.bdf"
    data = indexed(0, 1234)
    data[300:350] = np.nan
    writer = RawRecordWriter.create(path, RawLayout(LABELS, SFREQ, START))
    writer.append(data[:555])
    writer.flush()
    writer.append(data[555:])
    writer.close()
    raw = read_raw(path)
    assert [s.label for s in raw.signals] == list(LABELS) and raw.signals[0].sampling_frequency == SFREQ
    assert raw.starttime == START.time().replace(tzinfo=None)
    samples = np.column_stack([s.data for s in raw.signals])
    assert len(samples) == 1300  # padded to whole 1-s records, the padding a gap
    gaps = gap_mask(raw, len(samples))
    assert np.array_equal(gaps, np.r_[np.zeros(300), np.ones(50), np.zeros(884), np.ones(66)].astype(bool))
    np.testing.assert_allclose(samples[:1234][~gaps[:1234]], data[~np.isnan(data[:, 0])], atol=UV_PER_DIGIT)


def test_a_file_left_by_a_kill_opens_and_is_continued_where_it_stood(tmp_path):
    path = tmp_path / "raw.bdf"
    layout = RawLayout(LABELS, SFREQ, START)
    writer = RawRecordWriter.create(path, layout)
    writer.append(indexed(0, 750))
    writer.flush()
    writer.append(indexed(750, 900))  # never flushed: lost with the process
    assert read_raw(path).signals[0].data.size == 700
    with open(path, "ab") as handle:
        handle.write(b"\x00" * 100)  # a record cut off mid-write
    again = RawRecordWriter.open(path, layout)
    assert again is not None and again.n_samples == 700
    again.append(indexed(700, 1000))
    again.close()
    assert np.array_equal(np.rint(read_raw(path).signals[0].data), np.arange(1000))
    assert read_layout(path).start == START.replace(tzinfo=None)


def test_another_recording_is_not_continued(tmp_path):
    path = tmp_path / "raw.bdf"
    RawRecordWriter.create(path, RawLayout(LABELS, SFREQ, START)).close()
    later = START.replace(second=START.second + 1)
    assert RawRecordWriter.open(path, RawLayout(LABELS, SFREQ, later)) is None
    assert RawRecordWriter.open(path, RawLayout(("Fpz",), SFREQ, START)) is None


# -- the sink in a night ------------------------------------------------------------------------------


def _layout() -> StreamLayout:
    return StreamLayout(
        "idx", "EEG", "idx-id", "host", "uid", SFREQ, "float32", LABELS, ("microvolts",) * 2, ("EEG",) * 2
    )


def _night(tiny_model, folder: Path, resume: bool = False) -> tuple[NightSession, NightWriter]:
    writer = NightWriter(folder, resume=resume)
    options = SessionOptions(channels=("Fpz",), reference="sample_index", now=lambda: 1.7e9)
    session = NightSession(
        tiny_model, _layout(), writer, options, night_sinks(writer, Settings(), extra=[RawSink(folder)])
    )
    return session, writer


def _feed(session: NightSession, first: int, stop: int, t0: float = 1000.0) -> None:
    for start in range(first, stop, 50):
        chunk = indexed(start, min(start + 50, stop))
        session.on_chunk(chunk, t0 + np.arange(start, start + len(chunk)) / SFREQ)


def test_a_night_keeps_every_sample_it_staged_with_its_stages_beside_it(tiny_model, tmp_path):
    folder = tmp_path / "night"
    session, writer = _night(tiny_model, folder)
    _feed(session, 0, 9000)  # 90 s: three epochs
    session.close()
    writer.close()
    raw = read_raw(folder / "raw.bdf")
    assert [s.label for s in raw.signals] == ["sample_index", "Fpz", "Fpz-sample_index"]
    index, fpz, derived = (s.data for s in raw.signals)
    assert np.array_equal(np.rint(index), np.arange(9000))
    np.testing.assert_allclose(derived, fpz - index, atol=2 * UV_PER_DIGIT)
    companion = annotations_path(folder / "raw.bdf")
    assert np.array_equal(read_hypnogram(companion).stages, read_night(folder / "hypnogram.csv").stages)


def test_a_crash_and_resume_continue_the_same_file_with_the_time_down_as_a_gap(tiny_model, tmp_path):
    folder = tmp_path / "night"
    session, writer = _night(tiny_model, folder)
    _feed(session, 0, 6500)
    writer.close()  # killed: no close, whatever was not flushed at the last epoch is lost
    session, writer = _night(tiny_model, folder, resume=True)
    session.resume(writer.load_state(), writer.last_epoch())
    _feed(session, 8000, 12000)  # 15 s down
    session.close()
    writer.close()
    assert raw_parts(folder) == [folder / "raw.bdf"]
    raw = read_raw(folder / "raw.bdf")
    index = raw.signals[0].data
    gaps = gap_mask(raw, len(index))
    kept = np.flatnonzero(~gaps)
    assert np.array_equal(np.rint(index[kept]), kept)  # every sample at its own place
    assert set(range(6000)) <= set(kept) and set(range(8000, 12000)) <= set(kept)
    assert gaps[6500:8000].all()


# -- a real replay over LSL, killed and resumed ----------------------------------------------------------


def _run(name: str, *extra: str) -> subprocess.Popen:
    args = ["run", "--name", name, "--no-dashboard", "--no-report", "--no-outlets", "--exit-after-lost", "1"]
    staged = ["--channel", "Fpz", "--reference", "sample_index"]
    return subprocess.Popen(
        [sys.executable, "-m", "streamstage", *args, *staged, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.slow
def test_a_replayed_night_killed_and_resumed_is_in_its_raw_file_sample_for_sample(tmp_path):
    name, folder = f"raw-{uuid.uuid4().hex[:8]}", tmp_path / "night"
    n = 24000  # four minutes at 100 Hz
    source = ArraySource(indexed(0, n).astype(np.float32), SFREQ, LABELS, source_id=name)
    replay = ReplayThread(source, 10.0, name=name, wait_for_consumer_s=30.0, linger_s=0.5, buffer_s=600)
    replay.start()
    first = _run(name, "--out", str(folder))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and read_layout_samples(folder) < 6000:
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    with warnings.catch_warnings():  # a kill between a flush's records and its count leaves it behind
        warnings.filterwarnings("ignore", message=".*header indicates")
        assert edfio.read_bdf(folder / "raw.bdf").signals[0].data.size >= 6000
    second = _run(name, "--resume", str(folder))
    _, err = second.communicate(timeout=120)
    replay.join()
    assert second.returncode == 0, err
    assert "MB per hour" in " ".join(err.split())
    raw = read_raw(folder / "raw.bdf")
    index = raw.signals[0].data
    kept = np.flatnonzero(~gap_mask(raw, len(index)))
    assert np.array_equal(np.rint(index[kept]), kept)
    assert kept[-1] >= n - 200 and len(kept) >= n // 2
    assert raw_parts(folder) == [folder / "raw.bdf"]


def read_layout_samples(folder: Path) -> int:
    """Samples the raw file holds by its header's record count, 0 before it exists."""
    path = folder / "raw.bdf"
    if not path.is_file() or path.stat().st_size < 256:
        return 0
    with open(path, "rb") as handle:
        header = handle.read(256)
    return int(header[236:244]) * int(SFREQ)


def test_mne_reads_the_raw_file_and_its_gaps_where_it_is_installed(tmp_path):
    mne = pytest.importorskip("mne")
    path = tmp_path / "raw.bdf"
    data = indexed(0, 1000)
    data[300:350] = np.nan
    writer = RawRecordWriter.create(path, RawLayout(LABELS, SFREQ, START))
    writer.append(data)
    writer.close()
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    assert raw.ch_names == list(LABELS) and raw.info["sfreq"] == SFREQ
    assert list(raw.annotations.description) == ["signal gap"] and raw.annotations.onset[0] == 3.0
    assert np.array_equal(np.rint(raw.get_data()[0, :300] * 1e6), np.arange(300))
