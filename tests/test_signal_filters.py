"""The causal band-pass and the stateful resampler, each on its own."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import signal

from streamstage.errors import ConfigError
from streamstage.signal import Bandpass, Resampler, design_bandpass, sfreq_ratio


def sine(freq_hz: float, sfreq_hz: float, duration_s: float, start: int = 0) -> np.ndarray:
    index = np.arange(start, start + round(duration_s * sfreq_hz))
    return np.sin(2 * np.pi * freq_hz * index / sfreq_hz)


def filtered_gain(freq_hz: float, sfreq_hz: float = 256.0) -> float:
    data = sine(freq_hz, sfreq_hz, 60.0)[:, None]
    filtered, _ = Bandpass(sfreq_hz, 1).push(data)
    settled = filtered[len(filtered) // 2 :, 0]
    return float(np.sqrt(2 * np.mean(settled**2)))


def test_bandpass_passes_10_hz_and_attenuates_drift_and_high_frequencies() -> None:
    assert 0.95 < filtered_gain(10.0) < 1.05
    assert filtered_gain(0.1) < 0.05
    assert filtered_gain(45.0) < 0.25


def test_high_edge_is_clipped_for_low_input_rates() -> None:
    sos = design_bandpass(50.0, 0.5, 30.0, 4)
    _, response = signal.sosfreqz(sos, worN=[10.0, 22.5, 24.0], fs=50.0)
    gain = np.abs(response)
    assert gain[0] > 0.99
    assert gain[1] == pytest.approx(1 / np.sqrt(2), abs=0.01)  # -3 dB at 0.45 x 50 Hz
    assert gain[2] < gain[1]


def test_empty_band_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="l_freq_hz"):
        design_bandpass(100.0, 30.0, 20.0, 4)


def test_dc_offset_gives_no_start_transient() -> None:
    data = (800.0 + 5.0 * sine(10.0, 256.0, 5.0))[:, None]
    filtered, _ = Bandpass(256.0, 1).push(data)
    assert np.abs(filtered).max() < 10.0


def test_missing_samples_are_held_and_masked() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(0.0, 20.0, (2000, 2))
    data[500:700, 0] = np.nan
    data[900, 1] = np.inf
    flagged = np.zeros(data.shape, dtype=bool)
    flagged[1500:1510, 1] = True
    filtered, mask = Bandpass(200.0, 2).push(data, flagged)
    assert np.isfinite(filtered).all()
    expected_mask = ~np.isfinite(data) | flagged
    assert np.array_equal(mask, expected_mask)
    held = data.copy()
    held[500:700, 0] = data[499, 0]
    held[900, 1] = data[899, 1]
    held[1500:1510, 1] = data[1499, 1]
    reference, _ = Bandpass(200.0, 2).push(held)
    assert np.array_equal(filtered, reference)


def test_channel_starts_at_its_first_valid_sample() -> None:
    data = 50.0 + sine(8.0, 128.0, 4.0)[:, None]
    data[:100] = np.nan
    filtered, _ = Bandpass(128.0, 1).push(data)
    assert np.array_equal(filtered[:100], np.zeros((100, 1)))
    late_start, _ = Bandpass(128.0, 1).push(data[100:])
    assert np.array_equal(filtered[100:], late_start)


def test_bandpass_output_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(4)
    data = rng.normal(0.0, 20.0, (3000, 3))
    data[:40, 1] = np.nan
    data[1000:1100, 2] = np.nan
    whole, whole_mask = Bandpass(250.0, 3).push(data)
    bandpass = Bandpass(250.0, 3)
    parts = [bandpass.push(chunk) for chunk in np.array_split(data, [1, 2, 30, 41, 999, 1500, 2999])]
    assert np.array_equal(np.concatenate([part[0] for part in parts]), whole)
    assert np.array_equal(np.concatenate([part[1] for part in parts]), whole_mask)


@pytest.mark.parametrize("sfreq_in", [256.0, 250.0, 50.0, 128.5, 500.0, 1000.0])
def test_resampler_reproduces_a_band_limited_sine_in_time(sfreq_in: float) -> None:
    data = sine(10.0, sfreq_in, 20.0)[:, None]
    resampler = Resampler(sfreq_in, 100.0, 1)
    out, _ = resampler.push(data, np.zeros(data.shape, dtype=bool))
    expected = sine(10.0, 100.0, len(out) / 100.0)
    assert len(out) > 1950
    assert np.abs(out[100:, 0] - expected[100:]).max() < 1e-3  # output k sits at time k / 100 Hz


def test_equal_rates_pass_samples_through() -> None:
    data = np.random.default_rng(5).normal(size=(321, 2))
    mask = np.zeros(data.shape, dtype=bool)
    mask[7, 1] = True
    out, out_mask = Resampler(100.0, 100.0, 2).push(data, mask)
    assert np.array_equal(out, data)
    assert np.array_equal(out_mask, mask)


def test_resampled_mask_follows_the_nearest_input_sample() -> None:
    mask = np.zeros((2560, 1), dtype=bool)
    mask[1000:1256] = True  # one second missing, from 1000/256 s to 1256/256 s
    resampler = Resampler(256.0, 100.0, 1)
    _, out_mask = resampler.push(np.zeros(mask.shape), mask)
    nearest = np.floor(np.arange(len(out_mask)) * 2.56 + 0.5).astype(int)
    assert np.array_equal(out_mask[:, 0], mask[nearest, 0])
    assert 99 <= out_mask.sum() <= 101


def test_resampler_is_chunk_invariant_with_bounded_state() -> None:
    rng = np.random.default_rng(6)
    data = rng.normal(size=(5000, 2))
    mask = rng.random(data.shape) < 0.01
    whole, whole_mask = Resampler(128.5, 100.0, 2).push(data, mask)
    resampler = Resampler(128.5, 100.0, 2)
    outputs, masks = [], []
    bounds = np.cumsum(rng.integers(1, 200, size=100))
    for part, part_mask in zip(np.split(data, bounds), np.split(mask, bounds), strict=True):
        out, out_mask = resampler.push(part, part_mask)
        outputs.append(out)
        masks.append(out_mask)
        assert len(resampler.state_dict()["buffer"]) <= 2 * resampler.half_width_in
    assert np.abs(np.concatenate(outputs) - whole).max() < 1e-12
    assert np.array_equal(np.concatenate(masks), whole_mask)


def test_rates_are_exact_fractions_and_the_epoch_grid_does_not_drift() -> None:
    assert sfreq_ratio(128.5, 100.0) == Fraction(257, 200)
    assert sfreq_ratio(256.0, 100.0) == Fraction(64, 25)
    epochs_in_72_h = 72 * 3600 // 30
    assert epochs_in_72_h * 3000 * sfreq_ratio(128.5, 100.0) == 72 * 3600 * 128.5


def test_outputs_stay_aligned_after_72_hours() -> None:
    """Fast-forward a resampler's counters by a whole number of rate periods to 72 h, then check that
    output k still samples the input's sine at time k / 100 Hz (integer positions do not drift)."""
    sfreq_in, ratio = 128.5, Fraction(257, 200)
    skip_out = 72 * 3600 * 100
    skip_in = int(skip_out * ratio)
    resampler = Resampler(sfreq_in, 100.0, 1)
    warmup = sine(7.0, sfreq_in, 2.0, start=skip_in)[:, None]
    resampler.push(warmup, np.zeros(warmup.shape, dtype=bool))
    state = resampler.state_dict()
    state["n_in"] += skip_in
    state["n_out"] += skip_out
    state["buffer_start"] += skip_in
    resampler.load_state_dict(state)
    first_out = resampler.n_out
    more = sine(7.0, sfreq_in, 3.0, start=skip_in + len(warmup))[:, None]
    out, _ = resampler.push(more, np.zeros(more.shape, dtype=bool))
    expected = np.sin(2 * np.pi * 7.0 * np.arange(first_out, first_out + len(out)) / 100.0)
    assert first_out > skip_out
    assert np.abs(out[:, 0] - expected).max() < 1e-3
