"""The live inlet on loopback: every sample once, across chunking and reconnects; clear resolve errors."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pylsl
import pytest

from streamstage.errors import StreamError
from streamstage.lsl.inlet import SIGNAL_BACK, SIGNAL_LOST, LslInlet, StreamChunk, StreamEvent
from streamstage.lsl.meta import write_channels
from streamstage.lsl.resolve import stream_predicate
from streamstage.signal.timing import TimestampRegularizer

FS = 1000.0


def unique(prefix: str = "test-inlet") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def eeg_outlet(
    name: str, source_id: str, labels=("sample_index", "Fpz"), fs: float = FS
) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EEG", len(labels), fs, "float32", source_id)
    write_channels(
        info, labels, ["samples", *["microvolts"] * (len(labels) - 1)], ["misc", *["EEG"] * (len(labels) - 1)]
    )
    return pylsl.StreamOutlet(info)


def indexed(first: int, stop: int, n_channels: int = 2) -> np.ndarray:
    """Sample-index channel, then channels derived from it (exact in float32)."""
    index = np.arange(first, stop, dtype=np.float64)
    return np.column_stack([index] + [index * 0.25 + c for c in range(n_channels - 1)]).astype(np.float32)


def push(outlet: pylsl.StreamOutlet, data: np.ndarray, first: int, t0: float, sizes) -> None:
    """Push rows of ``data`` (sample ``first`` onwards) in chunks of the given sizes, stamped t0 + i/FS."""
    start, k = 0, 0
    while start < len(data):
        block = data[start : start + sizes[k % len(sizes)]]
        outlet.push_chunk(block, t0 + (first + start + len(block) - 1) / FS)
        start, k = start + len(block), k + 1


def drain(
    inlet: LslInlet, n_samples: int, timeout_s: float = 5.0
) -> tuple[list[StreamChunk], list[StreamEvent]]:
    chunks: list[StreamChunk] = []
    events: list[StreamEvent] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(c.samples) for c in chunks) < n_samples and time.monotonic() < deadline:
        item = inlet.poll(0.05)
        if isinstance(item, StreamChunk):
            chunks.append(item)
        elif item is not None:
            events.append(item)
    return chunks, events


def wait_for(inlet: LslInlet, kind: str, timeout_s: float = 6.0) -> tuple[StreamEvent, list[StreamChunk]]:
    chunks = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        item = inlet.poll(0.05)
        if isinstance(item, StreamEvent):
            assert item.kind == kind, item.message
            return item, chunks
        if item is not None:
            chunks.append(item)
    raise AssertionError(f"no {kind} within {timeout_s} s")


@pytest.mark.parametrize(
    ("push_sizes", "chunk_samples"), [((1, 3, 250), 7), ((64,), 1000), ((500, 1, 17), 64), ((1000,), None)]
)
def test_every_sample_arrives_once_whatever_the_chunking(push_sizes, chunk_samples) -> None:
    name = unique()
    outlet = eeg_outlet(name, f"sid-{name}")
    with LslInlet.open(name=name, timeout_s=2.0, chunk_samples=chunk_samples) as inlet:
        assert outlet.wait_for_consumers(2.0)
        assert inlet.layout.labels == ("sample_index", "Fpz")
        assert inlet.layout.units == ("samples", "microvolts")
        assert inlet.layout.sfreq_hz == FS
        n = 3000
        data = indexed(0, n)
        t0 = pylsl.local_clock()
        push(outlet, data, 0, t0, push_sizes)
        chunks, events = drain(inlet, n)
    assert events == []
    if chunk_samples:
        assert max(len(c.samples) for c in chunks) <= chunk_samples
    samples = np.concatenate([c.samples for c in chunks])
    stamps = np.concatenate([c.timestamps for c in chunks])
    assert samples.dtype == np.float64
    assert np.array_equal(samples, data.astype(np.float64))  # none dropped, none duplicated, exact values
    np.testing.assert_allclose(stamps, t0 + np.arange(n) / FS, rtol=0, atol=2e-3)  # clocksync: microseconds
    regularizer = TimestampRegularizer(2, FS)
    grid = [regularizer.push(c.samples, c.timestamps) for c in chunks]
    assert np.array_equal(np.concatenate([g.samples for g in grid]), samples)


def test_reconnect_marks_the_gap_with_the_right_number_of_nan_samples() -> None:
    name = unique()
    source_id = f"sid-{name}"
    outlet = eeg_outlet(name, source_id)
    regularizer = TimestampRegularizer(2, FS)
    grid = []
    with LslInlet.open(source_id=source_id, timeout_s=2.0, lost_after_s=2.0) as inlet:
        assert outlet.wait_for_consumers(2.0)
        t0 = pylsl.local_clock()
        push(outlet, indexed(0, 1500), 0, t0, (100,))
        chunks, _ = drain(inlet, 1500)
        grid += [regularizer.push(c.samples, c.timestamps) for c in chunks]
        first_uid = inlet.layout.uid

        del outlet  # the bridge crashes ...
        lost, _ = wait_for(inlet, SIGNAL_LOST)
        assert inlet.lost and "closed" in lost.message

        outlet = eeg_outlet(name, source_id)  # ... and is restarted: same source id, new stream
        back, _ = wait_for(inlet, SIGNAL_BACK)
        assert not back.layout_changed and back.layout.uid != first_uid and not inlet.lost
        assert outlet.wait_for_consumers(2.0)
        push(outlet, indexed(2300, 3000), 2300, t0, (7, 300))
        chunks, events = drain(inlet, 700)
        grid += [regularizer.push(c.samples, c.timestamps) for c in chunks]
    assert events == []
    samples = np.concatenate([g.samples for g in grid])
    missing = np.concatenate([g.empty_slots for g in grid])
    assert len(samples) == 3000
    assert np.array_equal(np.flatnonzero(missing), np.arange(1500, 2300))
    assert np.isnan(samples[1500:2300]).all()
    assert np.array_equal(samples[~missing], np.concatenate([indexed(0, 1500), indexed(2300, 3000)]))
    assert (regularizer.counters.gaps, regularizer.counters.filled) == (1, 800)


def test_stream_back_with_other_channels_says_so() -> None:
    name = unique()
    outlet = eeg_outlet(name, f"sid-{name}")
    with LslInlet.open(name=name, timeout_s=2.0) as inlet:
        del outlet
        wait_for(inlet, SIGNAL_LOST)
        outlet = eeg_outlet(name, f"sid-{name}", labels=("sample_index", "Fpz", "Pz"))
        back, _ = wait_for(inlet, SIGNAL_BACK)
        assert back.layout_changed and back.layout.labels == ("sample_index", "Fpz", "Pz")
        assert "3 channels (sample_index, Fpz, Pz)" in back.message
        assert outlet.wait_for_consumers(2.0)
        push(outlet, indexed(0, 50, 3), 0, pylsl.local_clock(), (50,))
        chunks, _ = drain(inlet, 50)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), indexed(0, 50, 3))


def test_silence_counts_as_lost_and_data_brings_it_back() -> None:
    name = unique()
    outlet = eeg_outlet(name, f"sid-{name}")
    with LslInlet.open(name=name, timeout_s=2.0, lost_after_s=0.3) as inlet:
        assert outlet.wait_for_consumers(2.0)
        t0 = pylsl.local_clock()
        push(outlet, indexed(0, 100), 0, t0, (100,))
        drain(inlet, 100)
        lost, _ = wait_for(inlet, SIGNAL_LOST, timeout_s=3.0)
        assert "no data" in lost.message
        push(outlet, indexed(100, 200), 100, t0, (100,))
        back, _ = wait_for(inlet, SIGNAL_BACK, timeout_s=3.0)
        assert not back.layout_changed
        chunks, _ = drain(inlet, 100)
    assert np.array_equal(np.concatenate([c.samples for c in chunks])[:, 0], np.arange(100, 200))


def test_no_matching_stream_lists_the_streams_seen() -> None:
    name = unique("test-visible")
    _outlet = eeg_outlet(name, f"sid-{name}")
    with pytest.raises(StreamError) as caught:
        LslInlet.open(name=unique("test-absent"), timeout_s=0.5)
    message = str(caught.value)
    assert "no LSL stream matches name='test-absent-" in message
    assert f"'{name}' (EEG, 2 ch, 1000 Hz, source id 'sid-{name}', host '" in message
    assert "\n" not in message


def test_two_matching_streams_are_ambiguous() -> None:
    name = unique()
    _first, _second = eeg_outlet(name, f"sid-a-{name}"), eeg_outlet(name, f"sid-b-{name}")
    time.sleep(1.0)  # both outlets announced before the search: a loaded machine is slow to start them
    with pytest.raises(StreamError, match=r"2 LSL streams match .*--source-id"):
        LslInlet.open(name=name, timeout_s=1.0)


def test_marker_stream_is_refused() -> None:
    name = unique()
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", f"sid-{name}")
    _outlet = pylsl.StreamOutlet(info)
    with pytest.raises(StreamError, match="carries string values, not samples"):
        LslInlet.open(name=name, timeout_s=2.0)


def test_predicate_quotes_any_name() -> None:
    assert stream_predicate() == "type='EEG' or type='eeg'"  # mne-lsl's type is lower case
    assert stream_predicate(name="Muse", source_id="x") == "name='Muse' and source_id='x'"
    assert stream_predicate(name="Bob's") == 'name="Bob\'s"'
    assert stream_predicate(name="a'b\"c") == "name=concat('a', \"'\", 'b\"c')"


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "streamstage-lsl-reader" and t.is_alive()]


def test_a_consumer_far_behind_loses_nothing_and_close_ends_the_reader() -> None:
    """More chunks than the reader may queue wait in liblsl's buffer, then come in order; close stops it."""
    name = unique()
    outlet = eeg_outlet(name, f"sid-{name}")
    before = len(readers())
    with LslInlet.open(name=name, timeout_s=2.0, chunk_samples=50) as inlet:
        assert outlet.wait_for_consumers(2.0)
        assert len(readers()) == before + 1
        n = 5000  # 100 chunks of 50 against a queue of a few
        push(outlet, indexed(0, n), 0, pylsl.local_clock(), (1000,))
        time.sleep(0.5)  # the consumer is busy: the reader fills its queue and stops pulling
        chunks, events = drain(inlet, n)
    assert events == []
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), indexed(0, n).astype(np.float64))
    deadline = time.monotonic() + 2.0
    while len(readers()) > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(readers()) == before
