"""Accuracy of a stream joined mid-night, by minutes since the join.

A user who starts streamstage late, or restarts it without ``--resume``, joins the night at some point of
sleep: the normaliser and the model start cold there. :func:`join_scores` stages each night from random
join points (inside the sleep period) and scores every epoch by the minutes since its join, beside the
same epochs staged from the night's start, so what the join costs is read directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamstage.model.checkpoint import StagingModel
from streamstage.stats import confusion_matrix
from streamstage.training.data import FeatureNight
from streamstage.training.metrics import StagingScores
from streamstage.training.predict import stage_feature_nights

EPOCHS_PER_MINUTE = 2
MINUTE_BINS: tuple[tuple[int, int | None], ...] = ((0, 10), (10, 30), (30, None))
"""Minutes since the join: [0, 10), [10, 30), 30 and later."""


def bin_label(low: int, high: int | None) -> str:
    return f"{low}-{high} min" if high is not None else f"{low}+ min"


def random_joins(nights: Sequence[FeatureNight], per_night: int, seed: int) -> list[tuple[int, int]]:
    """``(night index, join epoch)`` pairs, uniform between the first sleep epoch and 60 epochs before the
    last, so every join lands in the sleep period and leaves at least 30 min to stage."""
    rng = np.random.default_rng(seed)
    joins = []
    for index, night in enumerate(nights):
        sleep = np.flatnonzero((night.labels > 0) & (night.labels <= 4))
        if len(sleep) < 2 or sleep[-1] - 60 <= sleep[0]:
            continue
        joins.extend((index, int(j)) for j in rng.integers(sleep[0], sleep[-1] - 60, per_night))
    return joins


@dataclass(frozen=True)
class JoinScores:
    """Per minute bin: scores of the joined streams and of the same epochs staged from the night start."""

    joined: dict[str, StagingScores]
    whole_night: dict[str, StagingScores]

    @classmethod
    def merged(cls, parts: Sequence[JoinScores]) -> JoinScores:
        """Pooled over folds: each bin's confusion matrices summed."""

        def pool(which: str, label: str) -> StagingScores:
            return StagingScores(sum(getattr(part, which)[label].confusion for part in parts))

        labels = list(parts[0].joined)
        return cls({k: pool("joined", k) for k in labels}, {k: pool("whole_night", k) for k in labels})

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {
            label: {
                "epochs": self.joined[label].n_epochs,
                "joined_accuracy": round(self.joined[label].accuracy, 4),
                "joined_kappa": round(self.joined[label].kappa, 4),
                "whole_night_accuracy": round(self.whole_night[label].accuracy, 4),
                "whole_night_kappa": round(self.whole_night[label].kappa, 4),
            }
            for label in self.joined
        }


def scores_by_minutes(
    truth: Sequence[np.ndarray], predicted: Sequence[np.ndarray]
) -> dict[str, StagingScores]:
    """Pooled scores per :data:`MINUTE_BINS` bin of streams that each start at their first epoch (a join, or
    a recording's first sample): ``truth`` and ``predicted`` stages per stream."""
    scores = {}
    for low, high in MINUTE_BINS:
        kept_truth, kept_predicted = [], []
        for labels, stages in zip(truth, predicted, strict=True):
            since = np.arange(len(labels)) / EPOCHS_PER_MINUTE
            keep = (since >= low) & (since < high if high is not None else True)
            kept_truth.append(labels[keep])
            kept_predicted.append(stages[keep])
        matrix = confusion_matrix(np.concatenate(kept_truth), np.concatenate(kept_predicted))
        scores[bin_label(low, high)] = StagingScores(matrix)
    return scores


def join_scores(
    model: StagingModel, nights: Sequence[FeatureNight], joins: Sequence[tuple[int, int]]
) -> JoinScores:
    """Stage each ``(night, join)`` cold from its join; score by minutes since the join against the truth,
    beside the same epochs of the night staged from its start."""
    whole = stage_feature_nights(model, nights)
    joined = stage_feature_nights(model, [nights[i] for i, _ in joins], [j for _, j in joins])
    truth = [nights[index].labels[join:] for index, join in joins]
    from_start = [whole[index][join:].argmax(axis=-1) for index, join in joins]
    return JoinScores(
        scores_by_minutes(truth, [probs.argmax(axis=-1) for probs in joined]),
        scores_by_minutes(truth, from_start),
    )
