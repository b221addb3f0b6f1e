"""Sleep statistics on small hand-scored hypnograms, invariants on random ones, and a real night."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import HypnogramError
from streamstage.stats import (
    N1,
    N2,
    N3,
    REM,
    UNKNOWN,
    WAKE,
    agreement,
    as_stage_codes,
    count_cycles,
    sleep_stats,
)

W, U = WAKE, UNKNOWN


def test_hand_scored_night() -> None:
    stages = [W, W, N1, N2, N2, W, N2, N3, N3, REM, REM, W]
    stats = sleep_stats(stages, epoch_s=30.0)
    assert stats.n_epochs == 12
    assert stats.time_in_bed_s == 360.0
    assert stats.sleep_onset_latency_s == 60.0  # first N1 at epoch 2
    assert stats.total_sleep_s == 240.0  # 8 sleep epochs
    assert stats.efficiency == pytest.approx(240 / 360)
    assert stats.waso_s == 60.0  # epochs 5 and 11
    assert stats.rem_latency_s == 210.0  # epoch 9, 7 epochs after onset
    assert stats.stage_s == (120.0, 30.0, 90.0, 60.0, 60.0)
    assert stats.percent_of_sleep(N2) == pytest.approx(37.5)
    assert stats.percent_of_sleep(WAKE) is None
    assert stats.n_cycles == 0
    assert stats.unknown_s == 0.0


def test_unknown_epochs_count_in_bed_but_not_as_sleep_or_wake() -> None:
    stats = sleep_stats([U, W, U, N2, U, W, N2], epoch_s=30.0)
    assert stats.time_in_bed_s == 210.0
    assert stats.unknown_s == 90.0
    assert stats.sleep_onset_latency_s == 90.0
    assert stats.total_sleep_s == 60.0
    assert stats.waso_s == 30.0
    assert stats.efficiency == pytest.approx(60 / 210)


def test_no_sleep_leaves_sleep_quantities_undefined() -> None:
    stats = sleep_stats([W, W, U], epoch_s=30.0)
    assert stats.sleep_onset_latency_s is None
    assert stats.rem_latency_s is None
    assert stats.total_sleep_s == 0.0
    assert stats.efficiency == 0.0
    assert stats.percent_of_sleep(N2) is None
    assert stats.waso_s == 0.0


def test_empty_night() -> None:
    stats = sleep_stats([], epoch_s=30.0)
    assert stats.n_epochs == 0
    assert stats.efficiency is None
    assert stats.n_cycles == 0


@pytest.mark.parametrize(
    ("stages", "cycles"),
    [
        ([N2] * 15 + [REM] * 5, 1),
        ([N2] * 15 + [REM] * 4, 0),  # REM episode under 5 min
        ([N2] * 14 + [REM] * 5, 0),  # NREM period under 15 min
        ([N1] * 5 + [N3] * 10 + [REM] * 5, 1),  # any NREM stage counts
        ([N2] * 15 + [REM] * 3 + [W] * 2 + [REM] * 2, 1),  # short awakening inside one REM episode
        ([N2] * 15 + [REM] * 3 + [N2] * 14 + [REM] * 2, 1),  # interruption < 15 min merges
        ([N2] * 15 + [REM] * 3 + [W] * 2 + [REM] * 2 + [N2] * 15 + [REM] * 5, 2),
        ([N2] * 15 + [REM] * 5 + [W] * 20 + [REM] * 5, 1),  # no NREM before the second episode
        ([N2] * 15 + [REM] * 5 + [N2] * 30, 1),  # trailing NREM is an unfinished cycle
        ([W] * 10 + [U] * 5, 0),
    ],
)
def test_cycles_on_one_minute_epochs(stages: list[int], cycles: int) -> None:
    assert count_cycles(stages, epoch_s=60.0) == cycles


def test_cycles_scale_with_epoch_length() -> None:
    night = [N2] * 30 + [REM] * 10  # 15 min NREM + 5 min REM at 30 s
    assert count_cycles(night, epoch_s=30.0) == 1
    assert count_cycles(night, epoch_s=20.0) == 0


def test_kappa_matches_hand_computation() -> None:
    predicted = [0, 0, 1, 1, 2, 2, 2, 2, UNKNOWN, 3]
    truth = [0, 1, 1, 1, 2, 2, 2, 0, 2, UNKNOWN]
    result = agreement(predicted, truth)
    # confusion rows (truth) [1,0,1], [1,2,0], [0,0,3]: p_o = 6/8, p_e = (2*2 + 3*2 + 3*4)/64 = 22/64
    assert result.n_epochs == 8
    assert result.accuracy == pytest.approx(0.75)
    assert result.kappa == pytest.approx((0.75 - 22 / 64) / (1 - 22 / 64))
    assert result.kappa == pytest.approx(13 / 21)
    assert result.confusion[:3, :3].tolist() == [[1, 0, 1], [1, 2, 0], [0, 0, 3]]


def test_kappa_undefined_when_chance_agreement_is_total() -> None:
    result = agreement([N2, N2, N2], [N2, N2, N2])
    assert result.accuracy == 1.0
    assert result.kappa is None


def test_agreement_without_common_epochs() -> None:
    result = agreement([N2, UNKNOWN], [UNKNOWN, N3])
    assert (result.n_epochs, result.accuracy, result.kappa) == (0, None, None)
    assert result.confusion.sum() == 0


def test_agreement_needs_aligned_hypnograms() -> None:
    with pytest.raises(HypnogramError, match="align"):
        agreement([N2, N2], [N2])


@pytest.mark.parametrize(
    ("stages", "match"),
    [([[0, 1], [2, 3]], "1-D"), ([0.0, 1.5], "integer"), ([0, 5], "-1..4"), ([-2, 0], "-1..4")],
)
def test_invalid_hypnograms_raise(stages: object, match: str) -> None:
    with pytest.raises(HypnogramError, match=match):
        as_stage_codes(stages)  # type: ignore[arg-type]


def test_nonpositive_epoch_length_raises() -> None:
    with pytest.raises(HypnogramError, match="positive"):
        sleep_stats([W, N2], epoch_s=0)


hypnograms = st.lists(st.integers(min_value=-1, max_value=4), max_size=300)


@settings(max_examples=40, deadline=None)
@given(hypnograms)
def test_statistics_add_up(stages: list[int]) -> None:
    stats = sleep_stats(stages, epoch_s=30.0)
    assert stats.total_sleep_s + stats.stage_s[WAKE] + stats.unknown_s == pytest.approx(stats.time_in_bed_s)
    assert sum(stats.stage_s[1:]) == pytest.approx(stats.total_sleep_s)
    assert 0.0 <= stats.waso_s <= stats.stage_s[WAKE]
    if stats.total_sleep_s:
        assert 0.0 < stats.efficiency <= 1.0
        assert sum(stats.percent_of_sleep(s) for s in (N1, N2, N3, REM)) == pytest.approx(100.0)
        onset = stats.sleep_onset_latency_s
        assert onset is not None and stages[int(onset // 30)] >= N1
        assert all(s < N1 for s in stages[: int(onset // 30)])
    rem_epochs = stages.count(REM)
    assert stats.n_cycles <= rem_epochs // 10  # each cycle holds >= 5 min of REM


@settings(max_examples=40, deadline=None)
@given(hypnograms, st.randoms(use_true_random=False))
def test_kappa_is_symmetric_and_bounded(truth: list[int], rng: random.Random) -> None:
    predicted = list(truth)
    rng.shuffle(predicted)
    forward, backward = agreement(predicted, truth), agreement(truth, predicted)
    assert forward.n_epochs == backward.n_epochs
    assert forward.kappa == backward.kappa or forward.kappa == pytest.approx(backward.kappa)
    assert np.array_equal(forward.confusion, backward.confusion.T)
    if forward.kappa is not None:
        assert -1.0 <= forward.kappa <= 1.0
    identical = agreement(truth, truth)
    if identical.kappa is not None:
        assert identical.kappa == pytest.approx(1.0)


def test_real_six_hour_hypnogram(shared_data: Path) -> None:
    stages = np.loadtxt(shared_data / "hypnograms" / "yasa-full-6hrs-hypno-30s.txt").astype(int)
    stats = sleep_stats(stages, epoch_s=30.0)
    assert stats.time_in_bed_s == 6 * 3600
    assert stats.unknown_s == 0.0
    assert stats.total_sleep_s + stats.stage_s[WAKE] == stats.time_in_bed_s
    assert 0.8 < stats.efficiency <= 1.0
    assert 30 * 60 < stats.rem_latency_s < 120 * 60
    assert 3 <= stats.n_cycles <= 6
    assert agreement(stages, stages).kappa == pytest.approx(1.0)
