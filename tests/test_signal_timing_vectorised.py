"""The vectorised intake paths against the per-sample rules. The regularizer's on-time path places every
sample where the rules do: random jitter, gaps, rate drift, clock resets, NaN stamps and any chunking give
the same grid, counters and notice. The irregular-rate resampler's runs give the very same values.

The streams are jittered, as real ones are: the two paths sum the rate fit in different orders (equal to
~1e-12), so a stamp that sits on a threshold to within that, which only a jitter-free synthetic stream whose
drift steps divide a threshold exactly can produce, may go either way."""

from __future__ import annotations

import logging

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.signal.grid import RegularChunk
from streamstage.signal.interpolate import IrregularResampler
from streamstage.signal.timing import TimestampRegularizer

FS = 256.0


def stream(
    seed: int,
    n: int,
    jitter: float,
    rate_error: float,
    n_gaps: int,
    n_resets: int,
    n_nan: int,
    sfreq: float = FS,
):
    """Samples whose first channel is the sample index, and their stamps with the given faults."""
    rng = np.random.default_rng(seed)
    stamps = 1000.0 + np.arange(n) * (1.0 + rate_error) / sfreq + rng.normal(0.0, jitter / sfreq, n)
    for start in rng.integers(1, n, n_gaps):  # a dropout: everything after it comes later
        stamps[start:] += rng.uniform(0.05, 3.0)
    for start in rng.integers(1, n, n_resets):  # a clock reset: time jumps back
        stamps[start:] -= rng.uniform(2.0, 50.0)
    stamps[rng.integers(0, n, n_nan)] = np.nan
    samples = np.column_stack([np.arange(n, dtype=np.float64), rng.normal(0.0, 30.0, n)])
    return samples, stamps


def feed(
    regularizer: TimestampRegularizer, samples: np.ndarray, stamps: np.ndarray, bounds
) -> list[RegularChunk]:
    return [
        regularizer.push(x, t)
        for x, t in zip(np.split(samples, bounds), np.split(stamps, bounds), strict=True)
    ]


def joined(chunks: list[RegularChunk]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    starts = [int(o + s) for o, c in zip(offsets, chunks, strict=True) for s in c.segment_starts]
    return (
        np.concatenate([c.samples for c in chunks]),
        np.concatenate([c.missing for c in chunks]),
        np.concatenate([c.times for c in chunks]),
        starts,
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 6000),
    jitter=st.sampled_from([0.02, 0.3, 1.5]),
    rate_error=st.sampled_from([0.0, 0.003, -0.02, 0.04]),
    n_gaps=st.integers(0, 4),
    n_resets=st.integers(0, 2),
    n_nan=st.integers(0, 3),
    n_cuts=st.integers(0, 40),
    sfreq=st.sampled_from([50.0, FS, 1000.0]),
)
def test_vectorised_path_equals_the_per_sample_rules(
    seed: int,
    n: int,
    jitter: float,
    rate_error: float,
    n_gaps: int,
    n_resets: int,
    n_nan: int,
    n_cuts: int,
    sfreq: float,
) -> None:
    samples, stamps = stream(seed, n, jitter, rate_error, n_gaps, n_resets, n_nan, sfreq)
    bounds = np.sort(np.random.default_rng(seed + 1).integers(0, n + 1, n_cuts))
    reference = TimestampRegularizer(2, sfreq, vectorised=False, rate_check_s=5.0)
    fast = TimestampRegularizer(2, sfreq, rate_check_s=5.0)
    logging.disable(logging.WARNING)  # the rate notice is logged by both
    try:
        expected = joined(feed(reference, samples, stamps, []))
        got = joined(feed(fast, samples, stamps, bounds))
    finally:
        logging.disable(logging.NOTSET)
    np.testing.assert_array_equal(got[0], expected[0])  # the very values, NaN where a slot is empty
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])
    assert got[3] == expected[3]
    assert fast.counters == reference.counters
    assert fast.rate_notice == reference.rate_notice
    saved, expected_state = fast.state_dict(), reference.state_dict()
    for key in ("fit", "slope", "jitter2"):  # the sums are taken in another order: equal to rounding
        np.testing.assert_allclose(
            np.array(list(saved[key].values()) if key == "fit" else saved[key]),
            np.array(list(expected_state[key].values()) if key == "fit" else expected_state[key]),
            rtol=1e-9,
            atol=1e-9,
        )
    assert {k: v for k, v in saved.items() if k not in ("fit", "slope", "jitter2")} == {
        k: v for k, v in expected_state.items() if k not in ("fit", "slope", "jitter2")
    }


def test_an_on_time_night_goes_through_in_a_few_vectorised_runs_per_chunk() -> None:
    n = 256 * 600
    samples, stamps = stream(7, n, 0.2, 0.0, 0, 0, 0)
    regularizer = TimestampRegularizer(2, FS)
    calls: list[int] = []
    place = regularizer._place
    regularizer._place = lambda row, t, out: (calls.append(row), place(row, t, out))[1]  # type: ignore[method-assign]
    out = joined(feed(regularizer, samples, stamps, np.arange(7680, n, 7680)))
    np.testing.assert_array_equal(out[0][:, 0], np.arange(n))
    assert len(calls) <= 3  # the first sample of the night, and little else, goes one by one


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 3000),
    n_gaps=st.integers(0, 3),
    n_resets=st.integers(0, 2),
    n_nan=st.integers(0, 3),
    n_repeats=st.integers(0, 5),
    n_cuts=st.integers(0, 30),
)
def test_irregular_runs_interpolate_as_the_per_sample_rules(
    seed: int, n: int, n_gaps: int, n_resets: int, n_nan: int, n_repeats: int, n_cuts: int
) -> None:
    rng = np.random.default_rng(seed)
    stamps = 50.0 + np.cumsum(rng.exponential(1 / 90.0, n))  # a bridge stamping samples as they come
    for start in rng.integers(1, n, n_gaps):
        stamps[start:] += rng.uniform(1.5, 20.0)  # beyond the interpolation limit: NaN slots
    for start in rng.integers(1, n, n_resets):
        stamps[start:] -= rng.uniform(5.0, 30.0)
    for i in rng.integers(1, n, n_repeats):
        stamps[i] = stamps[i - 1]  # the same stamp twice
    stamps[rng.integers(0, n, n_nan)] = np.nan
    samples = rng.normal(0.0, 30.0, (n, 2))
    bounds = np.sort(rng.integers(0, n + 1, n_cuts))
    reference = IrregularResampler(2, 100.0, vectorised=False)
    fast = IrregularResampler(2, 100.0)
    expected = joined([reference.push(samples, stamps)])
    got = joined(
        [fast.push(x, t) for x, t in zip(np.split(samples, bounds), np.split(stamps, bounds), strict=True)]
    )
    for mine, theirs in zip(got[:3], expected[:3], strict=True):
        np.testing.assert_array_equal(mine, theirs)  # bit for bit: the same formula on the same samples
    assert got[3] == expected[3]
    assert fast.counters == reference.counters
    saved, expected_state = fast.state_dict(), reference.state_dict()
    np.testing.assert_array_equal(saved.pop("last_x"), expected_state.pop("last_x"))
    assert saved == expected_state
