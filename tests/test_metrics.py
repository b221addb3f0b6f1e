"""Agreement metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from streamstage.stats import confusion_matrix
from streamstage.training.metrics import score


def test_confusion_ignores_unlabelled_epochs():
    truth = np.array([0, 1, 2, -100, 4, -1])
    predicted = np.array([0, 2, 2, 3, 4, 0])
    confusion = confusion_matrix(truth, predicted)
    assert confusion.sum() == 4
    assert confusion[1, 2] == 1 and confusion[0, 0] == 1


def test_scores_match_hand_computation():
    # Two classes used: truth W W W N2, predicted W W N2 N2.
    scores = score(np.array([0, 0, 0, 2]), np.array([0, 0, 2, 2]))
    assert scores.accuracy == pytest.approx(0.75)
    # p_o = 0.75; p_e = (3*2 + 1*2) / 16 = 0.5; kappa = 0.25 / 0.5.
    assert scores.kappa == pytest.approx(0.5)
    f1 = scores.per_stage_f1
    assert f1[0] == pytest.approx(2 * 2 / (3 + 2))
    assert f1[2] == pytest.approx(2 * 1 / (1 + 2))
    assert scores.macro_f1 == pytest.approx(f1.mean())
    record = scores.to_dict()
    assert record["per_stage_f1"]["W"] == pytest.approx(0.8)
    assert record["confusion"][0] == [2, 0, 1, 0, 0]


def test_perfect_and_empty():
    perfect = score(np.arange(5), np.arange(5))
    assert perfect.kappa == pytest.approx(1.0) and perfect.accuracy == 1.0
    assert np.isnan(score(np.array([-100]), np.array([0])).accuracy)
