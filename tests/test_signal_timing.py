"""Timestamps -> regular grid: exact pass-through, gaps, jitter, rate drift, clock resets, irregular rate."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import ResumeError
from streamstage.signal.grid import RegularChunk
from streamstage.signal.interpolate import IrregularResampler
from streamstage.signal.timing import TimestampRegularizer, make_regularizer

FS = 256.0
T0 = 5000.0


def signal(n: int, n_channels: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 30.0, (n, n_channels))


def feed(regularizer, samples: np.ndarray, stamps: np.ndarray, sizes=(32,)) -> RegularChunk:
    """Push in chunks of the given sizes (cycled) and concatenate what comes out."""
    chunks, first, k = [], 0, 0
    while first < len(stamps):
        stop = first + sizes[k % len(sizes)]
        chunks.append(regularizer.push(samples[first:stop], stamps[first:stop]))
        first, k = stop, k + 1
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    return RegularChunk(
        np.concatenate([c.samples for c in chunks]),
        np.concatenate([c.missing for c in chunks]),
        np.concatenate([c.times for c in chunks]),
        tuple(int(o + s) for o, c in zip(offsets, chunks, strict=True) for s in c.segment_starts),
    )


def test_a_regular_input_passes_through_bit_identical() -> None:
    x = signal(5000)
    stamps = T0 + np.arange(5000) / FS
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, x, stamps, sizes=(1, 7, 64, 300))
    assert np.array_equal(out.samples, x)  # the very values: no interpolation, no rounding
    assert not out.missing.any()
    np.testing.assert_allclose(out.times, stamps, rtol=0, atol=1e-9)
    counters = regularizer.counters
    assert (counters.samples_in, counters.samples_out) == (5000, 5000)
    assert (
        counters.filled == counters.drift_filled == counters.dropped == counters.gaps == counters.resets == 0
    )


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    jitter=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_output_does_not_depend_on_chunking(sizes: list[int], jitter: float, seed: int) -> None:
    n = 4000
    rng = np.random.default_rng(seed)
    keep = np.ones(n, dtype=bool)
    keep[rng.integers(200, n - 200, 3)[:, None] + np.arange(40)] = False  # three gaps
    stamps = (T0 + np.arange(n) / FS + rng.uniform(-jitter, jitter, n) / FS)[keep]
    x = signal(n, seed=seed)[keep]
    whole = feed(TimestampRegularizer(2, FS), x, stamps, sizes=(n,))
    chunked = feed(TimestampRegularizer(2, FS), x, stamps, sizes=tuple(sizes))
    assert np.array_equal(whole.samples, chunked.samples, equal_nan=True)
    assert np.array_equal(whole.missing, chunked.missing)
    np.testing.assert_allclose(whole.times, chunked.times, rtol=0, atol=1e-9)


def test_b_gaps_become_nan_slots_of_the_right_count() -> None:
    n = 6000
    keep = np.ones(n, dtype=bool)
    keep[3000:3128] = False  # half a second
    keep[4500] = False  # one sample, once the stream has shown it has no jitter
    x = signal(n)
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, x[keep], (T0 + np.arange(n) / FS)[keep], sizes=(50,))
    expected = x.copy()
    expected[~keep] = np.nan
    assert np.array_equal(out.samples, expected, equal_nan=True)
    assert np.array_equal(out.empty_slots, ~keep) and np.array_equal(out.missing, np.isnan(out.samples))
    np.testing.assert_allclose(out.times, T0 + np.arange(n) / FS, rtol=0, atol=1e-9)
    assert (regularizer.counters.gaps, regularizer.counters.filled) == (2, 129)


def test_c_jittered_stamps_make_no_false_gaps() -> None:
    n = 20000
    rng = np.random.default_rng(1)
    stamps = T0 + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / FS
    x = signal(n)
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, x, stamps, sizes=(12,))
    assert np.array_equal(out.samples, x)
    assert regularizer.counters.gaps == regularizer.counters.drift_filled == regularizer.counters.dropped == 0
    assert np.abs(out.times - (T0 + np.arange(n) / FS)).max() < 0.35 / FS


def test_gap_in_a_jittered_stream_is_filled_within_one_sample() -> None:
    n = 8000
    rng = np.random.default_rng(2)
    keep = np.ones(n, dtype=bool)
    keep[5000:5256] = False
    stamps = (T0 + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) / FS)[keep]
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, signal(n)[keep], stamps)
    assert regularizer.counters.gaps == 1
    assert abs(regularizer.counters.filled - 256) <= 1
    assert abs(len(out) - n) <= 1


@pytest.mark.parametrize("rate_factor", [1.02, 0.97])
def test_d_off_nominal_rate_stays_aligned_and_is_reported_once(rate_factor: float, caplog) -> None:
    n = 30000
    actual_hz = FS * rate_factor
    stamps = T0 + np.arange(n) / actual_hz
    x = signal(n)
    regularizer = TimestampRegularizer(2, FS, rate_check_s=20.0)
    with caplog.at_level(logging.WARNING, logger="streamstage.signal.timing"):
        out = feed(regularizer, x, stamps, sizes=(25,))
    # Every real sample sits within about a slot of its true stream time, however long the night.
    source_row = np.searchsorted(x[:, 0], out.samples[~out.empty_slots, 0], sorter=np.argsort(x[:, 0]))
    source_row = np.argsort(x[:, 0])[source_row]
    misalignment = np.abs(out.times[~out.empty_slots] - stamps[source_row]) * FS
    assert misalignment.max() < 2.0
    assert abs(len(out) - (stamps[-1] - T0) * FS) < 2.5
    counters = regularizer.counters
    corrections = counters.dropped if rate_factor > 1 else counters.drift_filled
    assert abs(corrections - abs(n - len(out))) <= 1 and corrections > 0.9 * abs(n * (1 - 1 / rate_factor))
    assert counters.gaps == 0
    assert regularizer.measured_srate_hz == pytest.approx(actual_hz, rel=1e-4)
    warnings = [r for r in caplog.records if "nominal" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{actual_hz:.3f} Hz" in warnings[0].getMessage()
    assert regularizer.rate_notice == warnings[0].getMessage()


def test_small_rate_error_is_not_warned_about() -> None:
    n = 20000
    regularizer = TimestampRegularizer(1, FS, rate_check_s=10.0)
    feed(regularizer, signal(n, 1), T0 + np.arange(n) / (FS * 1.001))
    assert regularizer.rate_notice == ""


@pytest.mark.parametrize("jump_s", [-100.0, 3 * 3600.0])
def test_e_clock_reset_starts_a_new_segment(jump_s: float) -> None:
    n, at = 6000, 4000
    stamps = T0 + np.arange(n) / FS
    stamps[at:] += jump_s
    x = signal(n)
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, x, stamps, sizes=(64,))
    assert out.segment_starts == (at,)
    assert out.missing[at].all() and np.isnan(out.samples[at]).all()
    assert np.array_equal(np.delete(out.samples, at, axis=0), x)  # not one real sample lost
    np.testing.assert_allclose(out.times[at + 1 :], stamps[at:], rtol=0, atol=1e-9)
    assert (regularizer.counters.resets, regularizer.counters.gaps, regularizer.counters.filled) == (1, 1, 0)


def test_non_finite_timestamps_are_dropped_and_counted() -> None:
    stamps = T0 + np.arange(1000) / FS
    stamps[500] = np.nan
    x = signal(1000)
    regularizer = TimestampRegularizer(2, FS)
    out = feed(regularizer, x, stamps)
    assert regularizer.counters.dropped == 1
    assert np.isnan(out.samples[500]).all() and out.empty_slots.sum() == 1  # the slot stays, as a gap
    assert np.array_equal(out.samples[~out.empty_slots], np.delete(x, 500, axis=0))


def test_f_irregular_stream_is_interpolated_onto_the_grid() -> None:
    rng = np.random.default_rng(3)
    stamps = T0 + np.cumsum(rng.uniform(0.001, 0.02, 3000))
    ramp = np.column_stack([stamps - T0, 2.0 * (stamps - T0) + 1.0])  # linear: interpolation is exact
    resampler = make_regularizer(2, 0.0, sfreq_hz=100.0)
    assert isinstance(resampler, IrregularResampler)
    out = feed(resampler, ramp, stamps, sizes=(17, 1, 250))
    assert not out.missing.any()
    np.testing.assert_allclose(np.diff(out.times), 0.01, atol=1e-9)
    assert out.times[0] == stamps[0] and out.times[-1] <= stamps[-1] < out.times[-1] + 0.01
    np.testing.assert_allclose(out.samples[:, 0], out.times - T0, atol=1e-9)
    np.testing.assert_allclose(out.samples[:, 1], 2.0 * (out.times - T0) + 1.0, atol=1e-9)


def test_irregular_gap_and_reset() -> None:
    stamps = np.concatenate(
        [T0 + np.arange(0, 1, 0.01), T0 + 3.0 + np.arange(0, 1, 0.01), T0 - 50 + np.arange(5) * 0.01]
    )
    x = np.ones((len(stamps), 1))
    resampler = IrregularResampler(1, 100.0, max_interp_gap_s=0.5)
    out = feed(resampler, x, stamps, sizes=(30,))
    gap = out.empty_slots & (out.times > T0 + 0.99) & (out.times < T0 + 3.0 - 1e-6)
    assert gap.sum() == 200 and resampler.counters.filled == 200
    assert len(out.segment_starts) == 1 and resampler.counters.resets == 1
    assert out.times[out.segment_starts[0] + 1] == pytest.approx(T0 - 50)
    assert not out.empty_slots[out.segment_starts[0] + 1 :].any()


def test_irregular_needs_an_output_rate() -> None:
    with pytest.raises(ValueError, match="sfreq_hz"):
        make_regularizer(1, 0.0)


@pytest.mark.parametrize("make", [lambda: TimestampRegularizer(2, FS), lambda: IrregularResampler(2, 100.0)])
def test_state_round_trip_continues_identically(make) -> None:
    n = 6000
    rng = np.random.default_rng(4)
    stamps = T0 + (np.arange(n) + rng.uniform(-0.2, 0.2, n)) / FS
    stamps[4000:] += 0.5  # a gap after the resume point
    x = signal(n)
    straight = make()
    expected = feed(straight, x, stamps, sizes=(n,))
    first = make()
    head = first.push(x[:3000], stamps[:3000])
    saved = json.loads(json.dumps(first.state_dict(), default=lambda a: a.tolist()))  # JSON-safe
    second = make()
    second.load_state_dict(saved)
    tail = second.push(x[3000:], stamps[3000:])
    assert np.array_equal(np.concatenate([head.samples, tail.samples]), expected.samples, equal_nan=True)
    assert second.counters == straight.counters


def test_state_of_another_stream_is_refused() -> None:
    state = TimestampRegularizer(2, FS).state_dict()
    with pytest.raises(ResumeError, match="sfreq_hz"):
        TimestampRegularizer(2, 500.0).load_state_dict(state)
