"""The live feature recipe is pinned to the training set's, and the causal normaliser is gain-invariant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal as sps

from streamstage.features import (
    BANDS_HZ,
    FEATURE_NAMES,
    RECIPE,
    CausalNormalizer,
    NormalizerConfig,
    WelchRecipe,
    band_powers,
    epoch_features,
)

SFREQ = 100.0
T = np.arange(3000) / SFREQ


def test_recipe_matches_the_training_set_metadata(shared_data):
    meta = json.loads((shared_data / "sleep-edf-features" / "00__1.json").read_text())
    welch = meta["bandpower_settings"]["welch"]
    assert welch == {k: v for k, v in RECIPE.to_dict().items() if k != "sfreq_hz"}
    assert meta["expected_sfreq"] == RECIPE.sfreq_hz
    assert [tuple(b) for b in meta["bands_hz"]] == [tuple(b) for b in BANDS_HZ]
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert meta["eps"] == 1e-10


def test_training_features_obey_our_definitions(shared_data):
    """Their relative powers are their band powers over the five-band sum, as ours are."""
    with np.load(shared_data / "sleep-edf-features" / "00__1.npz") as data:
        features = data["features"].astype(np.float64)
    powers = np.exp(features[..., :5])
    np.testing.assert_allclose(features[..., 5:], powers / powers.sum(-1, keepdims=True), atol=1e-5)


def test_sine_power_lands_in_its_band():
    amplitude = 20.0
    features = epoch_features(amplitude * np.sin(2 * np.pi * 10.0 * T))
    assert features.shape == (10,)
    assert features[5 + 2] > 0.99  # rel_alpha
    # A sine of amplitude A has power A^2 / 2. Median averaging (the recipe's) divides by the median bias
    # of a chi-square(2) over the 14 Welch segments, which a pure tone, identical in every segment, keeps.
    halves = 2 * np.arange(1, (14 - 1) // 2 + 1)
    median_bias = 1 + np.sum(1.0 / (halves + 1) - 1.0 / halves)
    assert features[2] == pytest.approx(np.log(amplitude**2 / 2 / median_bias), abs=0.01)


def test_band_power_is_trapezoid_over_closed_band():
    rng = np.random.default_rng(0)
    epoch = rng.normal(0, 10, 3000)
    freqs, psd = sps.welch(
        epoch,
        fs=100,
        window="hamming",
        nperseg=400,
        noverlap=200,
        nfft=400,
        average="median",
        detrend="constant",
        scaling="density",
    )
    for index, (_, lo, hi) in enumerate(BANDS_HZ):
        mask = (freqs >= lo) & (freqs <= hi)
        expected = np.log(np.trapezoid(psd[mask], freqs[mask]) + 1e-10)
        assert epoch_features(epoch)[index] == pytest.approx(expected, rel=1e-5)


def test_batched_epochs_match_single_epochs():
    rng = np.random.default_rng(1)
    epochs = rng.normal(0, 30, (4, 2, 3000))
    batched = epoch_features(epochs)
    assert batched.shape == (4, 2, 10)
    np.testing.assert_allclose(batched[2, 1], epoch_features(epochs[2, 1]), rtol=1e-6)


def test_normaliser_is_exactly_gain_invariant():
    rng = np.random.default_rng(2)
    epochs = rng.normal(0, 20, (30, 1, 3000)) * np.linspace(0.5, 2, 30)[:, None, None]
    reference = CausalNormalizer(1).transform_night(epoch_features(epochs))
    scaled = CausalNormalizer(1).transform_night(epoch_features(epochs * 1e-3))  # µV read as mV
    np.testing.assert_allclose(reference, scaled, atol=1e-4)


def test_normaliser_is_causal_and_switches_to_ema():
    features = np.zeros((1500, 1, 10), dtype=np.float32)
    features[:, 0, 0] = np.arange(1500)
    out = CausalNormalizer(1, NormalizerConfig(horizon_epochs=120)).transform_night(features)
    # First hour: cumulative mean of 0..t is t/2, so the output is t - t/2.
    assert out[10, 0, 0] == pytest.approx(5.0)
    changed = features.copy()
    changed[200:, 0, 0] = -50
    np.testing.assert_array_equal(CausalNormalizer(1).transform_night(changed)[:200], out[:200])
    # After the horizon the weight stays at 1/120: a ramp's lag settles at (1 - a) / a = 119 epochs.
    assert out[1499, 0, 0] == pytest.approx(119, abs=1)


def test_skipped_update_keeps_the_mean():
    normalizer = CausalNormalizer(1)
    normalizer.push(np.full((1, 10), 2.0))
    before = normalizer.state_dict()["mean"].copy()
    out = normalizer.push(np.full((1, 10), -30.0), update=False)
    np.testing.assert_array_equal(normalizer.state_dict()["mean"], before)
    assert out[0, 0] == pytest.approx(-32.0)


def test_normaliser_state_round_trip():
    rng = np.random.default_rng(3)
    stream = rng.normal(size=(20, 2, 10))
    first = CausalNormalizer(2)
    first.transform_night(stream[:10])
    second = CausalNormalizer(2)
    second.load_state_dict(first.state_dict())
    np.testing.assert_array_equal(first.transform_night(stream[10:]), second.transform_night(stream[10:]))


def scipy_band_powers(epochs: np.ndarray) -> np.ndarray:
    """The oracle: the training recipe by ``scipy.signal.welch`` and ``np.trapezoid`` themselves."""
    freqs, psd = sps.welch(
        epochs,
        fs=100,
        window="hamming",
        nperseg=400,
        noverlap=200,
        nfft=400,
        average="median",
        detrend="constant",
        scaling="density",
        axis=-1,
    )
    psd = np.maximum(psd, 0.0)
    bands = [(freqs >= lo) & (freqs <= hi) for _, lo, hi in BANDS_HZ]
    return np.stack([np.trapezoid(psd[..., mask], freqs[mask], axis=-1) for mask in bands], axis=-1)


@pytest.mark.parametrize("shape", [(3000,), (7, 3000), (3, 2, 3000), (3001,), (2, 4567), (400,)])
def test_band_powers_equal_scipy_welch_on_random_epochs(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    epochs = rng.normal(0, 1, shape) * 10.0 ** rng.uniform(-2, 3) + rng.normal(0, 50)
    epochs += 40 * np.sin(2 * np.pi * rng.uniform(0.5, 30) * np.arange(shape[-1]) / SFREQ)
    np.testing.assert_allclose(band_powers(epochs), scipy_band_powers(epochs), rtol=1e-9, atol=0)


def test_band_powers_equal_scipy_welch_on_real_eeg(shared_data):
    """Every 30-s epoch of a real 100-Hz C3-A1 recording (DREAMS excerpt 1, 30 min)."""
    signal_uv = np.loadtxt(shared_data / "dreams-spindles-dev" / "excerpt1.txt", skiprows=1)
    epochs = signal_uv[: len(signal_uv) // 3000 * 3000].reshape(-1, 3000)
    assert len(epochs) == 60
    np.testing.assert_allclose(band_powers(epochs), scipy_band_powers(epochs), rtol=1e-9, atol=0)
    np.testing.assert_allclose(band_powers(epochs[17]), scipy_band_powers(epochs[17]), rtol=1e-9, atol=0)


def test_band_powers_of_another_recipe_follow_it() -> None:
    epoch = np.random.default_rng(3).normal(0, 10, 3000)
    recipe = WelchRecipe(window="hann", nperseg=256, noverlap=128, nfft=256, average="mean")
    freqs, psd = sps.welch(epoch, fs=100, window="hann", nperseg=256, noverlap=128, average="mean")
    mask = (freqs >= 0.5) & (freqs <= 4.0)
    assert band_powers(epoch, recipe)[0] == pytest.approx(np.trapezoid(psd[mask], freqs[mask]), rel=1e-12)
