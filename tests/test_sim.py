"""The synthetic EEG generator: reproducible, chunk-invariant, stage-typical, bounded in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfiltfilt, welch

from streamstage.errors import ConfigError, HypnogramError
from streamstage.sim import SyntheticEEG, generate, synthetic_hypnogram

BANDS_HZ = {"delta": (0.5, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 12.0), "sigma": (12.0, 16.0)}
W, N1, N2, N3, REM = range(5)
CRAFTED = [W] * 6 + [N1] * 6 + [N2] * 6 + [N3] * 6 + [REM] * 6
"""Six epochs per stage; the first of each block is skipped in power checks (it holds the cross-fade)."""


def _relative_band_powers(night: np.ndarray, sfreq: float) -> dict[str, np.ndarray]:
    """Per 30-s epoch relative band powers (over 0.5-30 Hz), as the staging features compute them."""
    epochs = night.reshape(-1, round(30 * sfreq))
    freqs, psd = welch(epochs, fs=sfreq, window="hamming", nperseg=round(4 * sfreq), axis=-1)
    total = psd[:, (freqs >= 0.5) & (freqs < 30)].sum(axis=1)
    return {
        name: psd[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) / total for name, (lo, hi) in BANDS_HZ.items()
    }


def _stage_means(values: np.ndarray, hypnogram: list[int] | np.ndarray) -> dict[int, float]:
    """Mean per stage, leaving out each bout's first epoch (half of it is the previous stage fading)."""
    codes = np.asarray(hypnogram)
    steady = np.r_[False, codes[1:] == codes[:-1]]
    return {stage: float(values[steady & (codes == stage)].mean()) for stage in range(5)}


@pytest.fixture(scope="module")
def crafted_night() -> np.ndarray:
    return generate(CRAFTED, 100.0, seed=3, artifact_rate_per_h=0.0)[0]


def test_same_seed_gives_the_same_samples_and_another_seed_does_not() -> None:
    hypnogram = [W, N2, N3, REM]
    first = generate(hypnogram, 128.0, seed=11, montage="muse")
    assert np.array_equal(first, generate(hypnogram, 128.0, seed=11, montage="muse"))
    assert not np.allclose(first, generate(hypnogram, 128.0, seed=12, montage="muse"))


@pytest.mark.parametrize("sfreq", [50.0, 101.13, 256.0, 1000.0])
def test_any_chunk_size_gives_the_samples_of_the_whole_night(sfreq: float) -> None:
    sim = SyntheticEEG([W, N1, -1, N2, N3, REM], sfreq, seed=5, artifact_rate_per_h=120.0)
    whole = sim.generate()
    assert whole.shape == (1, round(6 * 30 * sfreq))
    assert whole.dtype == np.float32
    for chunk_s in (0.1, 1.0, 7.3, 30.0, 45.0, 1000.0):
        chunks = list(sim.iter_chunks(chunk_s))
        assert np.array_equal(np.concatenate(chunks, axis=1), whole), chunk_s
        boundaries = [min(round(k * chunk_s * sfreq), whole.shape[1]) for k in range(1, len(chunks) + 1)]
        assert [chunk.shape[1] for chunk in chunks] == np.diff([0, *boundaries]).tolist()
        assert boundaries[-1] == whole.shape[1]


@settings(max_examples=25, deadline=None)
@given(
    chunk_s=st.floats(min_value=0.05, max_value=80.0),
    seed=st.integers(min_value=0, max_value=2**32),
    sfreq=st.sampled_from([50.0, 64.0, 99.7, 250.0]),
)
def test_chunking_never_changes_a_sample(chunk_s: float, seed: int, sfreq: float) -> None:
    sim = SyntheticEEG([N2, REM, W], sfreq, seed=seed, montage="muse")
    assert np.array_equal(np.concatenate(list(sim.iter_chunks(chunk_s)), axis=1), sim.generate())


def test_a_stage_change_only_touches_its_epoch_and_the_fade_into_the_next() -> None:
    hypnogram = [N2] * 6
    changed = [*hypnogram[:3], REM, *hypnogram[4:]]
    sfreq, crossfade_s = 100.0, 3.0
    base = generate(hypnogram, sfreq, seed=9, crossfade_s=crossfade_s)[0]
    other = generate(changed, sfreq, seed=9, crossfade_s=crossfade_s)[0]
    differs = np.flatnonzero(base != other)
    assert differs.min() >= 3 * 30 * sfreq
    assert differs.max() < (4 * 30 + crossfade_s) * sfreq
    assert differs.max() > 4 * 30 * sfreq  # the REM epoch does fade into the next one


def test_epoch_boundaries_have_no_seams() -> None:
    sfreq = 100.0
    night = generate([W, N3, REM, N2, N1, N3, W], sfreq, seed=2, artifact_rate_per_h=0.0)[0]
    steps = np.abs(np.diff(night))
    at_boundaries = steps[np.arange(1, 7) * round(30 * sfreq) - 1]
    assert at_boundaries.max() < np.percentile(steps, 99.9)


def test_band_powers_are_stage_typical(crafted_night: np.ndarray) -> None:
    powers = {
        name: _stage_means(values, CRAFTED)
        for name, values in _relative_band_powers(crafted_night, 100.0).items()
    }
    assert powers["alpha"][W] > 2 * powers["alpha"][N3]
    assert powers["alpha"][W] == max(powers["alpha"].values())
    assert powers["delta"][N3] == max(powers["delta"].values())
    assert powers["theta"][N1] > powers["theta"][W]
    assert powers["sigma"][N2] > 1.2 * max(powers["sigma"][N1], powers["sigma"][REM])


def test_n3_delta_waves_exceed_75_uv_peak_to_peak(crafted_night: np.ndarray) -> None:
    sos = butter(4, (0.5, 2.0), btype="bandpass", fs=100.0, output="sos")
    delta = sosfiltfilt(sos, crafted_night).reshape(len(CRAFTED), 3000)
    peak_to_peak = _stage_means(np.ptp(delta, axis=1), CRAFTED)
    assert peak_to_peak[N3] > 75.0
    assert peak_to_peak[N3] > 2 * peak_to_peak[REM]


def test_headband_channels_share_sources_with_frontal_eye_movements() -> None:
    sim = SyntheticEEG([W] * 3 + [REM] * 3 + [N2] * 3, 128.0, seed=4, montage="muse", artifact_rate_per_h=0)
    assert sim.ch_names == ("TP9", "AF7", "AF8", "TP10")
    night = sim.generate()
    assert night.shape == (4, 9 * 30 * 128)
    correlation = np.corrcoef(night)
    assert np.all(correlation[np.triu_indices(4, 1)] > 0.2)
    assert np.all(correlation[np.triu_indices(4, 1)] < 0.999)
    per_epoch = (night[1] - night[2]).reshape(9, -1)  # AF7 - AF8: cortex cancels, horizontal eyes add
    assert per_epoch[4:6].std() > 3 * per_epoch[7:9].std()


def test_artifacts_come_at_the_configured_rate_on_top_of_the_same_night() -> None:
    hypnogram = [W] * 8
    clean = generate(hypnogram, 100.0, seed=6, artifact_rate_per_h=0.0)[0]
    noisy = generate(hypnogram, 100.0, seed=6, artifact_rate_per_h=480.0)[0]  # 4 per epoch on average
    added = np.abs(noisy - clean) > 1e-3
    assert 0.02 < added.mean() < 0.9
    assert np.abs(noisy - clean).max() > 100.0
    unscored = generate([-1] * 8, 100.0, seed=6, artifact_rate_per_h=0.0)[0]
    assert np.percentile(np.abs(unscored), 99.9) > np.percentile(np.abs(clean), 99.9)


def test_streaming_memory_stays_bounded_by_an_epoch_and_a_chunk() -> None:
    sim = SyntheticEEG([N2] * 240, 100.0, seed=0, montage="muse")  # 2 h: 11.5 MB as one array
    tracemalloc.start()
    try:
        n_samples = sum(chunk.shape[1] for chunk in sim.iter_chunks(5.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n_samples == sim.n_samples == 240 * 3000
    assert peak < 3_000_000


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: SyntheticEEG([W], 40.0), ConfigError),
        (lambda: SyntheticEEG([W], 2000.0), ConfigError),
        (lambda: SyntheticEEG([W], 100.0, crossfade_s=0.0), ConfigError),
        (lambda: SyntheticEEG([W], 100.0, seed=-1), ConfigError),
        (lambda: SyntheticEEG([W], 100.0, montage="cap-64"), ConfigError),
        (lambda: SyntheticEEG([W], 100.0, artifact_rate_per_h=-1.0), ConfigError),
        (lambda: next(SyntheticEEG([W], 100.0).iter_chunks(0.001)), ConfigError),
        (lambda: SyntheticEEG([], 100.0), HypnogramError),
        (lambda: SyntheticEEG([0, 5, 2], 100.0), HypnogramError),
        (lambda: SyntheticEEG([0, -100], 100.0), HypnogramError),
        (lambda: SyntheticEEG([[0, 1]], 100.0), HypnogramError),
    ],
)
def test_bad_settings_raise_clear_errors(call, error) -> None:
    with pytest.raises(error):
        call()


def test_synthetic_hypnogram_has_the_shape_of_a_night() -> None:
    night = synthetic_hypnogram(8.0, seed=1)
    assert night.shape == (960,)
    assert np.array_equal(night, synthetic_hypnogram(8.0, seed=1))
    assert not np.array_equal(night, synthetic_hypnogram(8.0, seed=2))
    assert set(np.unique(night)) <= {W, N1, N2, N3, REM}
    assert night[0] == W and night[-1] == W
    nights = np.stack([synthetic_hypnogram(8.0, seed) for seed in range(10)])
    first, last = nights[:, :320], nights[:, -320:]  # thirds of the night, pooled over ten nights
    assert np.mean(first == N3) > 2 * np.mean(last == N3)
    assert np.mean(last == REM) > 1.5 * np.mean(first == REM)
    fractions = np.bincount(night, minlength=5) / night.size
    assert fractions[N2] == fractions.max()
    rem_bouts = np.sum((night[1:] == REM) & (night[:-1] != REM))
    assert 3 <= rem_bouts <= 12


def test_a_72_hour_hypnogram_repeats_nights_with_wake_between() -> None:
    codes = synthetic_hypnogram(72.0, seed=0, night_h=8.0, wake_between_h=1.0)
    assert codes.shape == (72 * 120,)
    for night in range(8):  # every 9 h: 8 h night then 1 h of wake
        start = night * 9 * 120
        assert np.any(codes[start : start + 960] == N3)
        assert np.all(codes[start + 960 : start + 1080] == W)


def test_a_real_hypnogram_drives_the_generator(shared_data: Path) -> None:
    path = shared_data / "hypnograms" / "yasa-full-6hrs-hypno-30s.txt"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in the shared data")
    hypnogram = np.loadtxt(path, comments="#", dtype=np.int64)
    sfreq = 100.0
    night = generate(hypnogram, sfreq, seed=0)[0]
    assert night.shape == (len(hypnogram) * 3000,)
    powers = {
        name: _stage_means(values, hypnogram) for name, values in _relative_band_powers(night, sfreq).items()
    }
    assert powers["delta"][N3] == max(powers["delta"].values())
    assert powers["alpha"][W] == max(powers["alpha"].values())
    assert powers["sigma"][N2] > max(powers["sigma"][N1], powers["sigma"][REM])
