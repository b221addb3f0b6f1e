"""The live session without a network: timestamped chunks in, a night folder out.

Each bad input of a real night is fed here with the message the user sees checked, and the epochs staged
before and after it kept on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from streamstage.config import Settings
from streamstage.errors import ChannelError, ResumeError
from streamstage.hooks import HookSpec
from streamstage.live.session import NightSession, SessionOptions
from streamstage.lsl.meta import StreamLayout
from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.output import NightWriter
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG

SFREQ = 256.0
MUSE = ("TP9", "AF7", "AF8", "TP10")
HYPNOGRAM = np.array([0, 0, 1, 2, 2, 2, 3, 3])


def _layout(labels=MUSE, units=("microvolts",) * 4, sfreq=SFREQ, name="muse") -> StreamLayout:
    return StreamLayout(
        name, "EEG", f"{name}-id", "host", "uid", sfreq, "float32", labels, units, ("EEG",) * 4
    )


@pytest.fixture(scope="module")
def muse_night() -> np.ndarray:
    return SyntheticEEG(HYPNOGRAM, SFREQ, seed=5, montage="muse").generate().T.astype(np.float64)


_OPEN_WRITERS: list[NightWriter] = []


@pytest.fixture(autouse=True)
def _close_writers():
    """The run command closes its writer; these tests play the run command."""
    yield
    while _OPEN_WRITERS:
        _OPEN_WRITERS.pop().close()


def _writer(folder: Path, resume: bool = False) -> NightWriter:
    _OPEN_WRITERS.append(NightWriter(folder, resume=resume))
    return _OPEN_WRITERS[-1]


def _session(tiny_model, folder: Path, layout=None, **options) -> NightSession:
    return NightSession(tiny_model, layout or _layout(), _writer(folder), SessionOptions(**options))


def _feed(session: NightSession, samples: np.ndarray, t0: float = 1000.0, chunk: int = 2560) -> list:
    times = t0 + np.arange(len(samples)) / SFREQ
    staged = []
    for start in range(0, len(samples), chunk):
        staged += session.on_chunk(samples[start : start + chunk], times[start : start + chunk])
    return staged


def _rows(folder: Path) -> list[list[str]]:
    return [line.split(",") for line in (folder / "hypnogram.csv").read_text().splitlines()[1:]]


def _events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def test_headband_stream_is_staged_like_the_offline_pipeline(tiny_model, muse_night, tmp_path):
    session = _session(tiny_model, tmp_path / "night")
    staged = _feed(session, muse_night) + session.close()
    assert session.montage.labels == ("AF7-TP9",)  # the frontal fallback for a Fpz-Cz model
    offline = StagingPipeline(tiny_model, SFREQ, start_time_s=1000.0)
    derived = muse_night[:, 1:2] - muse_night[:, 0:1]
    expected = offline.push(derived) + offline.finish()
    assert [e.index for e in staged] == [e.index for e in expected] == list(range(len(HYPNOGRAM)))
    for got, want in zip(staged, expected, strict=True):
        np.testing.assert_allclose(got.probs, want.probs, atol=1e-9)
    rows = _rows(tmp_path / "night")
    assert [int(r[0]) for r in rows] == list(range(len(HYPNOGRAM)))
    assert (tmp_path / "night" / "state.npz").is_file()
    assert _events(tmp_path / "night")[0]["event"] == "night_started"


def test_wanted_channel_missing_lists_the_channels(tiny_model, tmp_path):
    with pytest.raises(ChannelError, match=r"TP9.*AF7"):
        _session(tiny_model, tmp_path / "night", channels=("Cz",))
    with pytest.raises(ChannelError, match="choose one with --channel"):
        _session(tiny_model, tmp_path / "other", layout=_layout(labels=("X1", "X2", "X3", "X4")))


def test_volts_instead_of_microvolts_is_detected_and_warned(tiny_model, muse_night, tmp_path):
    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    staged = _feed(session, muse_night * 1e-6)  # labelled µV, really V
    assert staged and all(e.quality == "units" for e in staged)
    warnings = [e for e in _events(folder) if e["event"] == "units_warning"]
    assert len(warnings) == 1 and "volts or millivolts" in warnings[0]["message"]
    assert len(_rows(folder)) == len(staged)


def test_units_from_stream_metadata_are_applied(tiny_model, muse_night, tmp_path):
    in_volts = _session(tiny_model, tmp_path / "v", layout=_layout(units=("V",) * 4))
    in_uv = _session(tiny_model, tmp_path / "uv")
    a = _feed(in_volts, muse_night * 1e-6)
    b = _feed(in_uv, muse_night)
    assert [e.quality for e in a] == [e.quality for e in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.probs, y.probs, atol=1e-6)


def test_nan_bursts_flat_clipping_and_huge_values_are_flagged_not_fatal(tiny_model, muse_night, tmp_path):
    damaged = muse_night.copy()
    epoch = int(30 * SFREQ)
    damaged[1 * epoch : 2 * epoch] = np.nan  # NaN burst: a whole epoch
    damaged[2 * epoch + 100 : 2 * epoch + 400, :] = np.inf  # Inf burst: a short one
    damaged[3 * epoch : 4 * epoch] = 5.0  # flat line
    damaged[5 * epoch : 6 * epoch : 50, 1] = 5e4  # huge spikes
    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    staged = _feed(session, damaged) + session.close()
    flags = [e.quality for e in staged]
    assert len(staged) == len(HYPNOGRAM)
    assert flags[1] == "missing" and flags[3] == "flat" and flags[5] in ("artifact", "clipped")
    assert flags[0] == "good" and flags[7] == "good"
    assert all(np.isfinite(e.probs).all() for e in staged)
    assert [r[9] for r in _rows(folder)] == flags


def test_gap_in_timestamps_is_filled_and_flagged(tiny_model, muse_night, tmp_path):
    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    times = 1000.0 + np.arange(len(muse_night)) / SFREQ
    cut = int(2.5 * 30 * SFREQ)
    gap = int(40 * SFREQ)  # 40 s of samples never arrive
    staged = session.on_chunk(muse_night[:cut], times[:cut])
    staged += session.on_chunk(muse_night[cut + gap :], times[cut + gap :]) + session.close()
    assert [e.index for e in staged] == list(range(len(HYPNOGRAM)))  # the timeline keeps its length
    assert "missing" in [e.quality for e in staged[2:4]]


def test_signal_lost_and_back_are_logged_and_hooked_with_the_night_named(tiny_model, muse_night, tmp_path):
    received: list[str] = []
    module = tmp_path / "hookmod.py"
    module.write_text("EVENTS = []\ndef record(e):\n    EVENTS.append((e.name, e.extra['night']))\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        spec = HookSpec("recorder", ("signal_lost", "signal_back"), "callable", "hookmod:record")
        folder = tmp_path / "night"
        session = _session(tiny_model, folder, settings=Settings(hooks=(spec,)))
        _feed(session, muse_night[: int(40 * SFREQ)])
        session.on_signal(False, "signal lost: test")
        session.on_signal(True, "signal back: test")
        session.close()
        import hookmod

        received = list(hookmod.EVENTS)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hookmod", None)
    night = str(folder.resolve())  # every event names its night (in a lab: which bed's)
    assert received == [("signal_lost", night), ("signal_back", night)]
    names = [e["event"] for e in _events(folder)]
    assert "signal_lost" in names and "signal_back" in names


def test_stream_back_without_the_channel_stops_with_a_message(tiny_model, muse_night, tmp_path):
    session = _session(tiny_model, tmp_path / "night")
    _feed(session, muse_night[: int(40 * SFREQ)])
    other = _layout(labels=("Fz", "Cz", "Pz"), units=("microvolts",) * 3)
    with pytest.raises(ChannelError, match="came back without the staged channel"):
        session.on_signal(True, "back", other)


def test_stream_back_with_another_channel_count_continues(tiny_model, muse_night, tmp_path):
    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    first = _feed(session, muse_night[: int(100 * SFREQ)])
    extra = np.column_stack([muse_night, np.zeros(len(muse_night))])
    layout = _layout(labels=(*MUSE, "AUX"), units=("microvolts",) * 5)
    session.on_signal(True, "back", layout)
    later = _feed(session, extra[int(100 * SFREQ) :], t0=1000.0 + 100.0)
    assert first and later and later[0].index == first[-1].index + 1
    assert "layout_changed" in [e["event"] for e in _events(folder)]


def test_irregular_rate_stream_is_gridded(tiny_model, muse_night, tmp_path):
    layout = _layout(sfreq=0.0)
    session = _session(tiny_model, tmp_path / "night", layout=layout)
    rng = np.random.default_rng(0)
    n = int(95 * SFREQ)
    times = 1000.0 + np.cumsum(rng.uniform(0.5, 1.5, n)) / SFREQ
    staged = []
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        staged += session.on_chunk(muse_night[start:stop], times[start:stop])
    assert len(staged) >= 2
    assert all(np.isfinite(e.probs).all() for e in staged)


def test_resume_refuses_another_model(tiny_model, muse_night, tmp_path):
    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    _feed(session, muse_night[: int(70 * SFREQ)])
    state = session.writer.load_state()
    session.writer.close()
    torch.manual_seed(99)
    other = StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=1)).eval())
    resumed = NightSession(other, _layout(), _writer(folder, resume=True))
    with pytest.raises(ResumeError, match="another model"):
        resumed.resume(state)


def test_resume_continues_the_night_and_marks_the_gap(tiny_model, muse_night, tmp_path):
    folder = tmp_path / "night"
    first = _session(tiny_model, folder)
    cut = int(3.4 * 30 * SFREQ)
    before = _feed(first, muse_night[:cut])
    first.writer.close()  # the process dies here: no close(), only what each epoch saved
    resumed = NightSession(tiny_model, _layout(), _writer(folder, resume=True))
    resumed.resume(resumed.writer.load_state())
    restart = cut + int(20 * SFREQ)
    times = 1000.0 + np.arange(len(muse_night)) / SFREQ
    after = resumed.on_chunk(muse_night[restart:], times[restart:]) + resumed.close()
    assert after[0].index == before[-1].index + 1
    assert [int(r[0]) for r in _rows(folder)] == list(range(len(HYPNOGRAM)))
    gap = [e for e in _events(folder) if e["event"] == "resume_gap"]
    assert len(gap) == 1 and gap[0]["gap_s"] > 19


class _ScriptedInlet:
    """Plays chunks and events to the live loop as an LSL inlet would, then reports the stream lost."""

    def __init__(self, items: list) -> None:
        self.items = list(items)
        self.lost = False

    def poll(self, timeout_s: float = 0.1):
        if self.items:
            return self.items.pop(0)
        self.lost = True
        return None


def test_a_bad_chunk_costs_that_chunk_not_the_night(tiny_model, muse_night, tmp_path):
    from streamstage.live.loop import LiveLoop, LoopOptions
    from streamstage.lsl.inlet import StreamChunk

    folder = tmp_path / "night"
    session = _session(tiny_model, folder)
    times = 1000.0 + np.arange(len(muse_night)) / SFREQ
    half = len(muse_night) // 2
    items = [
        StreamChunk(muse_night[:half], times[:half]),
        StreamChunk(muse_night[half : half + 10], times[half : half + 3]),  # garbage: 10 rows, 3 stamps
        StreamChunk(muse_night[half:], times[half:]),
    ]
    loop = LiveLoop(_ScriptedInlet(items), session, LoopOptions(exit_after_lost_s=0.0))
    loop.run()
    assert [int(r[0]) for r in _rows(folder)] == list(range(len(HYPNOGRAM)))
    errors = [e for e in _events(folder) if e["event"] == "chunk_error"]
    assert len(errors) == 1 and "ValueError" in errors[0]["error"]
