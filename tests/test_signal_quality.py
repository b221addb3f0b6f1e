"""Per-epoch quality: each flag on crafted epochs, the running accumulators against a direct computation."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.signal import FLAGS, EpochQuality, QualityMeter, QualityThresholds, worst_quality

SFREQ = 100.0
EPOCH = 3000


def measure(
    epoch_uv: np.ndarray, clip_range: tuple[float, float] | None = None, chunk: int | None = None
) -> EpochQuality:
    """Quality of one single-channel epoch pushed through a meter (in chunks of ``chunk`` samples)."""
    meter = QualityMeter(SFREQ, Fraction(EPOCH), 1, QualityThresholds(), [clip_range])
    data = epoch_uv[:, None]
    finished = []
    for start in range(0, len(data), chunk or len(data)):
        part = data[start : start + (chunk or len(data))]
        finished += meter.push(part, ~np.isfinite(part))
    assert len(finished) == 1
    return finished[0][0]


def eeg(seed: int = 0, std_uv: float = 30.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, std_uv, EPOCH)


def test_plain_eeg_is_good() -> None:
    quality = measure(eeg())
    assert quality.ok
    assert quality.flag == quality.reason == "good"
    assert quality.std_uv == pytest.approx(30.0, rel=0.05)
    assert quality.missing_frac == 0.0
    assert quality.clipped_frac < 0.01


def test_missing_samples_flag() -> None:
    data = eeg()
    data[:750] = np.nan
    quality = measure(data)
    assert quality.flag == "missing"
    assert quality.missing_frac == 0.25
    assert quality.std_uv == pytest.approx(30.0, rel=0.05)  # measured on the samples that are there


def test_all_missing_epoch_has_nan_measures() -> None:
    quality = measure(np.full(EPOCH, np.nan))
    assert quality.flag == "missing"
    assert quality.missing_frac == 1.0
    assert np.isnan(quality.std_uv)


@pytest.mark.parametrize("value", [0.0, 4321.5])
def test_constant_epoch_is_flat(value: float) -> None:
    quality = measure(np.full(EPOCH, value), chunk=7)
    assert quality.flag == "flat"
    assert quality.std_uv == 0.0
    assert quality.flat_s == 30.0


def test_a_six_second_constant_run_is_flat() -> None:
    data = eeg()
    data[1000:1600] = 12.0
    quality = measure(data, chunk=256)
    assert quality.flag == "flat"
    assert quality.flat_s == 6.0
    assert "6.0 s" in quality.reason


def test_tiny_low_variance_noise_is_flat() -> None:
    assert measure(eeg(std_uv=0.2)).flag == "flat"


@pytest.mark.parametrize("scale", [1e-6, 1e-3 / 30])
def test_eeg_in_volts_or_millivolts_is_flagged_units(scale: float) -> None:
    quality = measure(eeg() * scale)
    assert quality.flag == "units"
    assert "volts" in quality.reason


def clipped_slow_wave() -> np.ndarray:
    """A 0.5-Hz, 200-µV wave with noise, railing at +-100 µV for a while each half-cycle."""
    t = np.arange(EPOCH) / SFREQ
    return np.clip(200.0 * np.sin(2 * np.pi * 0.5 * t) + eeg(std_uv=10.0), -100.0, 100.0)


def test_clipping_at_a_known_range() -> None:
    quality = measure(clipped_slow_wave(), clip_range=(-100.0, 100.0))
    assert quality.flag == "clipped"
    assert quality.clipped_frac == np.mean(np.abs(clipped_slow_wave()) == 100.0)
    assert measure(eeg(), clip_range=(-100.0, 100.0)).ok


def test_clipping_recognised_as_runs_at_the_extremes_without_a_range() -> None:
    quality = measure(clipped_slow_wave(), chunk=33)
    assert quality.flag == "clipped"
    at_rail = np.mean(np.abs(clipped_slow_wave()) == 100.0)
    assert 0.9 * at_rail < quality.clipped_frac <= at_rail  # short touches of the rail are not counted


def test_huge_amplitude_is_an_artifact() -> None:
    assert measure(eeg(std_uv=400.0)).flag == "artifact"
    spike = eeg()
    spike[1234] = 2500.0
    assert measure(spike).flag == "artifact"


def test_missing_comes_before_flat() -> None:
    data = np.zeros(EPOCH)
    data[::2] = np.nan
    assert measure(data).flag == "missing"


def test_worst_quality_follows_flag_order_then_channel() -> None:
    def quality(flag: str, channel: int) -> EpochQuality:
        return EpochQuality(0.0, 1.0, 1.0, 0.0, 0.0, flag, flag, channel)

    assert worst_quality([quality("good", 0), quality("artifact", 1), quality("flat", 2)]).channel == 2
    assert worst_quality([quality("good", 0), quality("good", 1)]).channel == 0
    assert worst_quality([quality("clipped", 0), quality("missing", 1)]).flag == "missing"
    assert FLAGS == ("missing", "flat", "units", "clipped", "artifact")


def test_epochs_follow_the_exact_rational_grid() -> None:
    """With 2.5 samples per epoch, epochs hold samples [0, 3), [3, 5), [5, 8), [8, 10)."""
    meter = QualityMeter(SFREQ, Fraction(5, 2), 1, QualityThresholds())
    data = np.arange(10.0)[:, None]
    finished = meter.push(data, np.zeros(data.shape, dtype=bool))
    assert [epoch[0].ptp_uv for epoch in finished] == [2.0, 1.0, 2.0, 1.0]
    assert [meter.epoch_start(epoch) for epoch in range(5)] == [0, 3, 5, 8, 10]


def runs_at_extremes(valid: np.ndarray, min_run: int) -> tuple[int, int]:
    """Direct computation: (samples in runs >= min_run at the min or max, longest run)."""
    starts = np.flatnonzero(np.concatenate(([True], valid[1:] != valid[:-1])))
    lengths = np.diff(starts, append=len(valid))
    values = valid[starts]
    at_extreme = (values == valid.min()) | (values == valid.max())
    return int(lengths[(lengths >= min_run) & at_extreme].sum()), int(lengths.max())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    move_prob=st.floats(0.1, 0.9),
    chunk_sizes=st.lists(st.integers(1, 400), min_size=1, max_size=20),
)
def test_running_accumulators_match_a_direct_computation(
    seed: int, move_prob: float, chunk_sizes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    steps = rng.integers(-1, 2, size=EPOCH) * (rng.random(EPOCH) < move_prob)
    data = np.cumsum(steps).astype(float)  # an integer walk: many runs, and extremes that move on
    data[rng.random(EPOCH) < 0.05] = np.nan
    meter = QualityMeter(SFREQ, Fraction(EPOCH), 1, QualityThresholds())
    bounds = np.cumsum(chunk_sizes * (EPOCH // sum(chunk_sizes) + 1))
    finished = []
    for part in np.split(data[:, None], bounds[bounds < EPOCH]):
        finished += meter.push(part, np.isnan(part))
    quality = finished[0][0]
    valid = data[~np.isnan(data)]
    at_extremes, longest = runs_at_extremes(valid, 3)
    assert quality.clipped_frac == at_extremes / len(valid)
    assert quality.flat_s == longest / SFREQ
    assert quality.std_uv == pytest.approx(valid.std(), rel=1e-9)
    assert quality.ptp_uv == np.ptp(valid)
    assert quality.missing_frac == np.isnan(data).mean()


def test_meter_state_survives_json_mid_epoch() -> None:
    data = np.clip(eeg(std_uv=60.0), -80.0, 80.0)[:, None]
    mask = np.zeros(data.shape, dtype=bool)
    meter = QualityMeter(SFREQ, Fraction(EPOCH), 1, QualityThresholds())
    meter.push(data[:1234], mask[:1234])
    restored = QualityMeter(SFREQ, Fraction(EPOCH), 1, QualityThresholds())
    restored.load_state_dict(json.loads(json.dumps(meter.state_dict())))
    assert restored.push(data[1234:], mask[1234:]) == meter.push(data[1234:], mask[1234:])
