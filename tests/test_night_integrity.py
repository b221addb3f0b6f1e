"""Every second of a night accounted for: long outages, clock resets, resumes, damaged or unwritable state.

The session is fed timestamped chunks as the LSL inlet hands them over, with the computer's clock injected,
so an outage of twenty minutes or a crash of an hour is simulated without waiting for it. What is checked is
what the README's reliability section promises: rows on a contiguous epoch grid, the time without data
written as ``unknown`` epochs of quality ``missing``, ``start_s`` in the stream's clock and ``wall_time``
true after the break, no row written twice.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from streamstage.config import Settings
from streamstage.errors import OutputError, ResumeError
from streamstage.live.session import NightSession, SessionOptions
from streamstage.lsl.meta import StreamLayout
from streamstage.output import NightWriter
from streamstage.report.night import read_night
from streamstage.sim import SyntheticEEG
from streamstage.sinks import Delivery, NightSink, night_sinks
from streamstage.stats import sleep_stats

SFREQ = 256.0
MUSE = ("TP9", "AF7", "AF8", "TP10")
HYPNOGRAM = np.array([0, 1, 2, 2, 2, 3, 3, 2])
T0 = 5000.0
WALL0 = 1_764_000_000.0


class Clock:
    """The computer's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = WALL0

    def __call__(self) -> float:
        return self.now


def _layout(labels=MUSE, units=("microvolts",) * 4, name="muse") -> StreamLayout:
    return StreamLayout(
        name, "EEG", f"{name}-id", "host", "uid", SFREQ, "float32", labels, units, ("EEG",) * len(labels)
    )


@pytest.fixture(scope="module")
def eeg() -> np.ndarray:
    return SyntheticEEG(HYPNOGRAM, SFREQ, seed=5, montage="muse").generate().T.astype(np.float64)


@pytest.fixture
def writers():
    opened: list[NightWriter] = []
    yield opened
    for writer in opened:
        writer.close()


def _session(
    tiny_model, folder: Path, clock: Clock, writers, resume=False, layout=None, **options
) -> NightSession:
    writer = NightWriter(folder, resume=resume)
    writers.append(writer)
    return NightSession(tiny_model, layout or _layout(), writer, SessionOptions(now=clock, **options))


def _feed(session, samples, t0: float, clock: Clock, chunk: int = 256) -> None:
    """Feed ``samples`` stamped from ``t0`` on, the clock keeping pace with the stream."""
    times = t0 + np.arange(len(samples)) / SFREQ
    for start in range(0, len(samples), chunk):
        clock.now += chunk / SFREQ
        session.on_chunk(samples[start : start + chunk], times[start : start + chunk])


def _rows(folder: Path) -> list[list[str]]:
    return [line.split(",") for line in (folder / "hypnogram.csv").read_text().splitlines()[1:]]


def _events(folder: Path, name: str) -> list[dict]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def _check_grid(rows: list[list[str]]) -> None:
    """Contiguous epochs, wall times 30 s apart, nothing written twice."""
    indices = [int(r[0]) for r in rows]
    assert indices == list(range(len(indices)))
    walls = [datetime.fromisoformat(r[2]).timestamp() for r in rows]
    assert np.allclose(np.diff(walls), 30.0, atol=1.01)


def test_an_outage_longer_than_ten_minutes_is_written_as_missing_epochs(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    session = _session(tiny_model, folder, clock, writers)
    half = int(120 * SFREQ)
    _feed(session, eeg[:half], T0, clock)
    clock.now += 15 * 60.0  # the headband is gone for 15 minutes
    _feed(session, eeg[half:], T0 + 120.0 + 15 * 60.0, clock)
    session.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) == len(HYPNOGRAM) + 30  # 8 epochs of data and 15 minutes marked missing
    gap_rows = [r for r in rows if r[3] == "unknown"]
    assert len(gap_rows) >= 29 and all(r[9] == "missing" for r in gap_rows)
    # after the outage start_s is the stream's own clock again, not shifted by the gap
    assert float(rows[-1][1]) == pytest.approx(T0 + 120.0 + 15 * 60.0 + 90.0, abs=0.05)
    bridged = _events(folder, "gap_bridged")
    assert len(bridged) == 1 and bridged[0]["measured_by"] == "stream"
    assert bridged[0]["gap_s"] == pytest.approx(900.0, abs=0.1)


@pytest.mark.parametrize("jump_s", [-2700.0, 86_400.0])
def test_a_clock_reset_keeps_wall_time_true_and_start_s_in_the_new_clock(
    tiny_model, eeg, tmp_path, writers, jump_s
):
    clock, folder = Clock(), tmp_path / "night"
    session = _session(tiny_model, folder, clock, writers)
    half = int(120 * SFREQ)
    _feed(session, eeg[:half], T0, clock)
    clock.now += 60.0  # a minute passes; the stream's clock jumps by jump_s
    new_t0 = T0 + 120.0 + jump_s
    _feed(session, eeg[half:], new_t0, clock)
    session.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) == len(HYPNOGRAM) + 2  # the minute without data is two missing epochs
    bridged = _events(folder, "gap_bridged")
    assert len(bridged) == 1 and bridged[0]["measured_by"] == "wall"
    assert bridged[0]["gap_s"] == pytest.approx(60.0, abs=1.0)
    assert all(e["gap_s"] >= 0 for e in bridged)
    last_start = float(rows[-1][1])
    assert new_t0 < last_start < new_t0 + 120.0  # stamped in the new clock
    walls = [datetime.fromisoformat(r[2]).timestamp() for r in rows]
    assert walls[-1] - walls[0] == pytest.approx(30.0 * (len(rows) - 1), abs=1.0)


def test_an_outlet_back_with_another_channel_count_keeps_the_timeline(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    session = _session(tiny_model, folder, clock, writers)
    half = int(120 * SFREQ)
    _feed(session, eeg[:half], T0, clock)
    session.on_signal(False, "lost")
    clock.now += 12 * 60.0
    wider = _layout(labels=(*MUSE, "AUX"), units=("microvolts",) * 5)
    session.on_signal(True, "back", wider)
    extra = np.column_stack([eeg[half:], np.zeros(len(eeg) - half)])
    _feed(session, extra, T0 + 120.0 + 12 * 60.0, clock)
    session.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) == len(HYPNOGRAM) + 24
    assert float(rows[-1][1]) == pytest.approx(T0 + 120.0 + 12 * 60.0 + 90.0, abs=0.05)


def test_a_resume_after_a_long_crash_marks_the_whole_crash_missing(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    first = _session(tiny_model, folder, clock, writers)
    half = int(120 * SFREQ)
    _feed(first, eeg[:half], T0, clock)
    first.writer.close()  # killed: no close(), only what every epoch saved
    clock.now += 20 * 60.0
    second = _session(tiny_model, folder, clock, writers, resume=True)
    second.resume(second.writer.load_state(), second.writer.last_epoch())
    _feed(second, eeg[half:], T0 + 120.0 + 20 * 60.0, clock)
    second.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) == len(HYPNOGRAM) + 40
    assert float(rows[-1][1]) == pytest.approx(T0 + 120.0 + 20 * 60.0 + 90.0, abs=0.05)
    resumed = _events(folder, "resume_gap")
    assert len(resumed) == 1 and resumed[0]["gap_s"] == pytest.approx(1200.0, abs=31.0)


def test_a_resume_after_a_reboot_uses_the_wall_clock_not_a_negative_gap(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    first = _session(tiny_model, folder, clock, writers)
    half = int(120 * SFREQ)
    _feed(first, eeg[:half], T0, clock)
    first.writer.close()
    clock.now += 5 * 60.0  # the computer rebooted: its LSL clock starts again near zero
    second = _session(tiny_model, folder, clock, writers, resume=True)
    second.resume(second.writer.load_state(), second.writer.last_epoch())
    _feed(second, eeg[half:], 40.0, clock)
    second.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) == len(HYPNOGRAM) + 10
    assert all(e["gap_s"] >= 0 for e in _events(folder, "gap_bridged") + _events(folder, "resume_gap"))


def test_epochs_without_data_are_unknown_everywhere_but_the_model_steps_on(
    tiny_model, eeg, tmp_path, writers
):
    clock, folder = Clock(), tmp_path / "night"
    received = []

    class Sink(NightSink):
        def on_epoch(self, delivery: Delivery) -> None:
            received.append(delivery.outward)

    writer = NightWriter(folder)
    writers.append(writer)
    sinks = night_sinks(writer, Settings(), extra=[Sink()])
    session = NightSession(tiny_model, _layout(), writer, SessionOptions(now=clock), sinks)
    damaged = eeg.copy()
    damaged[int(60 * SFREQ) : int(150 * SFREQ)] = np.nan  # three epochs without any sample
    before = session.pipeline
    _feed(session, damaged, T0, clock)
    session.close()
    assert before is None and session.pipeline is not None
    unknown = [e for e in received if e.quality == "missing"]
    assert len(unknown) == 3 and all(e.stage_name == "unknown" and not e.known for e in unknown)
    assert all(np.isfinite(e.probs).all() for e in unknown)  # the model did step over them
    night = read_night(folder / "hypnogram.csv")
    assert list(night.stages[2:5]) == [-1, -1, -1]
    stats = sleep_stats(night.stages)
    assert stats.unknown_s == 90.0 and stats.total_sleep_s <= 30.0 * (len(HYPNOGRAM) - 3)
    changes = _events(folder, "stage_change")
    assert all("unknown" not in (c["extra"]["from"], c["extra"]["to"]) for c in changes)


def test_a_crash_between_row_and_state_writes_no_row_twice(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    first = _session(tiny_model, folder, clock, writers)
    _feed(first, eeg[: int(100 * SFREQ)], T0, clock)
    stale_state = (folder / "state.npz").read_bytes()
    _feed(first, eeg[int(100 * SFREQ) : int(125 * SFREQ)], T0 + 100.0, clock)  # epoch 3 is written...
    first.writer.close()
    (folder / "state.npz").write_bytes(stale_state)  # ...and the process dies before its state is renamed
    assert [int(r[0]) for r in _rows(folder)] == [0, 1, 2, 3]
    second = _session(tiny_model, folder, clock, writers, resume=True)
    second.resume(second.writer.load_state(), second.writer.last_epoch())
    _feed(second, eeg[int(125 * SFREQ) :], T0 + 125.0, clock)
    second.close()
    indices = [int(r[0]) for r in _rows(folder)]
    assert indices == list(range(len(HYPNOGRAM)))


@pytest.mark.parametrize(
    "damage",
    [b"", b"PK\x03\x04 not a zip", "truncate"],
    ids=["empty", "garbled", "truncated"],
)
def test_damaged_state_is_one_clear_error_and_rebuild_state_continues(
    tiny_model, eeg, tmp_path, writers, damage
):
    clock, folder = Clock(), tmp_path / "night"
    first = _session(tiny_model, folder, clock, writers)
    _feed(first, eeg[: int(95 * SFREQ)], T0, clock)
    first.writer.close()
    state = folder / "state.npz"
    state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2] if damage == "truncate" else damage)
    second = _session(tiny_model, folder, clock, writers, resume=True)
    with pytest.raises(ResumeError, match="--rebuild-state"):
        second.writer.load_state()
    clock.now += 120.0
    last = second.writer.last_epoch()
    assert last is not None and last.index == 2
    second.continue_from(last)
    _feed(second, eeg[int(95 * SFREQ) :], T0 + 95.0 + 120.0, clock)
    second.close()
    rows = _rows(folder)
    _check_grid(rows)
    assert len(rows) >= len(HYPNOGRAM) + 3
    assert float(rows[-1][1]) == pytest.approx(T0 + 330.0, abs=1.0)  # the last full epoch of the data


def test_a_full_disk_stops_the_night_with_a_message(tiny_model, eeg, tmp_path, writers, monkeypatch):
    import errno

    import streamstage.output as output

    clock, folder = Clock(), tmp_path / "night"
    session = _session(tiny_model, folder, clock, writers)
    _feed(session, eeg[: int(65 * SFREQ)], T0, clock)

    def full(path, state):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "save_state", full)
    with pytest.raises(OutputError, match=r"No space left on device.*--resume"):
        _feed(session, eeg[int(65 * SFREQ) :], T0 + 65.0, clock)


def test_a_second_writer_is_locked_out_and_a_closed_one_leaves_no_lock(tmp_path):
    folder = tmp_path / "night"
    first = NightWriter(folder)
    with pytest.raises(OutputError, match="another streamstage process"):
        NightWriter(folder, resume=True)
    first.close()
    NightWriter(folder, resume=True).close()


def test_night_files_are_private_and_a_failed_start_can_be_retried(tmp_path):
    folder = tmp_path / "night"
    NightWriter(folder).close()  # the start failed before any epoch: only the header is there
    writer = NightWriter(folder)  # accepted as a new night
    writer.close()
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("hypnogram.csv", "events.jsonl"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600


def test_resume_on_another_recording_is_refused_unless_accepted(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    first = _session(tiny_model, folder, clock, writers)
    _feed(first, eeg[: int(65 * SFREQ)], T0, clock)
    first.writer.close()
    other = _layout(name="other-player")
    second = _session(tiny_model, folder, clock, writers, resume=True, layout=other)
    state = second.writer.load_state()
    with pytest.raises(ResumeError, match="not the stream the night was started on"):
        second.resume(state)
    second.writer.close()
    accepted = _session(tiny_model, folder, clock, writers, resume=True, layout=other, accept_new_source=True)
    accepted.resume(state)


def test_clipping_of_one_electrode_is_caught_on_the_bipolar_derivation(tiny_model, eeg, tmp_path, writers):
    clock, folder = Clock(), tmp_path / "night"
    session = _session(tiny_model, folder, clock, writers)
    railed = eeg.copy()
    epoch = int(30 * SFREQ)
    block = railed[2 * epoch : 3 * epoch, 1]
    railed[2 * epoch : 3 * epoch, 1] = np.clip(block, -5.0, 5.0)  # AF7 at its rails a third of the time
    _feed(session, railed, T0, clock)
    session.close()
    qualities = [r[9] for r in _rows(folder)]
    assert session.montage.labels == ("AF7-TP9",)
    assert qualities[2] == "clipped" and qualities.count("clipped") == 1


def test_mne_lsl_volts_and_unknown_units_are_read_not_assumed(tiny_model, eeg, tmp_path, writers):
    clock = Clock()
    in_mne_codes = _session(tiny_model, tmp_path / "mne", clock, writers, layout=_layout(units=("0",) * 4))
    no_units = _session(tiny_model, tmp_path / "none", clock, writers, layout=_layout(units=("",) * 4))
    reference = _session(tiny_model, tmp_path / "uv", clock, writers)
    for session, data in ((in_mne_codes, eeg * 1e-6), (no_units, eeg * 1e-6), (reference, eeg)):
        _feed(session, data, T0, clock)
        session.close()
    expected = [r[3:10] for r in _rows(tmp_path / "uv")]
    for folder in ("mne", "none"):
        rows = _rows(tmp_path / folder)
        assert [r[9] for r in rows] == [e[6] for e in expected]  # no epoch flagged "units"
        np.testing.assert_allclose(
            [[float(x) for x in r[4:9]] for r in rows],
            [[float(x) for x in e[1:6]] for e in expected],
            atol=1e-4,
        )
    notices = _events(tmp_path / "none", "units_notice")
    assert notices and "read as V" in notices[0]["message"]
    assert not _events(tmp_path / "mne", "units_notice")


def test_microvolts_labelled_volts_get_the_same_hint_as_the_reverse(tiny_model, eeg, tmp_path, writers):
    clock = Clock()
    too_large = _session(tiny_model, tmp_path / "large", clock, writers, layout=_layout(units=("V",) * 4))
    too_small = _session(tiny_model, tmp_path / "small", clock, writers)
    _feed(too_large, eeg, T0, clock)
    _feed(too_small, eeg * 1e-6, T0, clock)
    large = _events(tmp_path / "large", "units_notice")
    small = _events(tmp_path / "small", "units_notice")
    assert large and "far too large for EEG in V" in large[0]["message"]
    assert small and "far too small for EEG in microvolts" in small[0]["message"]
    assert all("check the unit in the stream's channel metadata" in n[0]["message"] for n in (large, small))


def test_a_stream_back_with_another_staged_channel_is_refused_not_rederived(
    tiny_model, eeg, tmp_path, writers
):
    session = _session(tiny_model, tmp_path / "night", Clock(), writers)
    assert session.refusal(_layout(labels=(*MUSE, "AUX"))) == ""
    moved = session.refusal(_layout(labels=("TP10", "AF8", "AF7", "TP9")))
    assert moved == ""  # the same electrodes in another order are the same channel
    other = session.refusal(_layout(labels=("F3", "F4", "C3", "C4")))
    assert "F3" in other and "AF7-TP9" in other
    assert "Hz" in session.refusal(
        StreamLayout(
            "muse", "EEG", "muse-id", "host", "u2", 128.0, "float32", MUSE, ("uV",) * 4, ("EEG",) * 4
        )
    )
