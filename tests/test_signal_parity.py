"""The core invariant: however a stream is chunked, and across a save/restore, the same epochs come out.

A live LSL inlet, a file replay and a resumed night cut the same signal differently; staging must not
depend on that. Epoch data must agree to 1e-6 µV, and quality flags and start times exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.signal import Epoch, Montage, SignalPath

RATES = (100.0, 256.0, 250.0, 50.0, 500.0, 128.5)
SOURCE_LABELS = ("EEG Fpz-Cz", "EEG Pz-Oz", "TP9", "AF7")
MONTAGES = (("fpz-cz",), ("AF7-TP9",), ("Fpz-Cz", "AF7-TP9", "pz-oz"))


def source_signal(seed: int, sfreq: float, duration_s: float) -> np.ndarray:
    """Four EEG-like channels in µV with DC offsets, slow drift, NaN bursts, a flat stretch and a spike."""
    rng = np.random.default_rng(seed)
    n = round(sfreq * duration_s)
    t = np.arange(n) / sfreq
    data = rng.normal(0.0, 15.0, (n, 4)) + rng.uniform(-300.0, 300.0, 4)
    data += 40.0 * np.sin(2 * np.pi * rng.uniform(0.5, 12.0, 4) * t[:, None] + rng.uniform(0, 6, 4))
    data += 100.0 * np.sin(2 * np.pi * 0.02 * t)[:, None]
    for _ in range(rng.integers(1, 5)):
        start, length = rng.integers(0, n), rng.integers(1, round(8 * sfreq))
        data[start : start + length, rng.integers(0, 4)] = np.nan
    start = rng.integers(0, n)
    data[start : start + round(6 * sfreq), rng.integers(0, 4)] = 7.0
    data[rng.integers(0, n), rng.integers(0, 4)] = 5000.0
    return data


def json_roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state, default=lambda array: array.tolist()))


def run(sfreq: float, data: np.ndarray, bounds: Sequence[int], restore_at: int | None = None) -> list[Epoch]:
    """Push ``data`` cut at ``bounds``; at chunk ``restore_at``, continue in a path restored from JSON."""
    path = SignalPath(sfreq, data.shape[1])
    epochs = []
    for number, chunk in enumerate(np.split(data, bounds)):
        if number == restore_at:
            restored = SignalPath(sfreq, data.shape[1])
            restored.load_state_dict(json_roundtrip(path.state_dict()))
            path = restored
        epochs += path.push(chunk)
    assert path.n_samples_in == len(data)
    return epochs


def assert_same_epochs(got: list[Epoch], expected: list[Epoch]) -> None:
    assert len(got) == len(expected) >= 1
    for mine, theirs in zip(got, expected, strict=True):
        assert (mine.index, mine.start_s) == (theirs.index, theirs.start_s)
        assert np.abs(mine.data_uv - theirs.data_uv).max() < 1e-6
        assert np.array_equal(mine.missing, theirs.missing)
        assert [q.flag for q in mine.channel_quality] == [q.flag for q in theirs.channel_quality]
        for q_mine, q_theirs in zip(mine.channel_quality, theirs.channel_quality, strict=True):
            measures = ("missing_frac", "std_uv", "ptp_uv", "flat_s", "clipped_frac")
            for name in measures:
                assert getattr(q_mine, name) == pytest.approx(getattr(q_theirs, name), rel=1e-9, nan_ok=True)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sfreq=st.sampled_from(RATES),
    montage=st.sampled_from(MONTAGES),
    duration_s=st.floats(65.0, 150.0),
    chunk_sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=40),
    restore=st.booleans(),
)
def test_any_chunking_gives_the_same_epochs(
    seed: int,
    sfreq: float,
    montage: tuple[str, ...],
    duration_s: float,
    chunk_sizes: list[int],
    restore: bool,
) -> None:
    data = Montage.resolve(SOURCE_LABELS, montage).apply(source_signal(seed, sfreq, duration_s))
    expected = run(sfreq, data, [])
    repeats = len(data) // sum(chunk_sizes) + 1
    bounds = np.cumsum(chunk_sizes * repeats)
    bounds = bounds[bounds < len(data)]
    restore_at = len(bounds) // 2 if restore and len(bounds) else None
    assert_same_epochs(run(sfreq, data, bounds, restore_at), expected)


@pytest.mark.parametrize("sfreq", [50.0, 128.5])
def test_one_sample_chunks_give_the_same_epochs(sfreq: float) -> None:
    data = Montage.resolve(SOURCE_LABELS, MONTAGES[2]).apply(source_signal(11, sfreq, 31.0))
    assert_same_epochs(run(sfreq, data, np.arange(1, len(data))), run(sfreq, data, []))
