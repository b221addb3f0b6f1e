"""Subject-wise cross-validation: train on some subjects, score the held-out ones through the streaming
model, pool every held-out epoch into one confusion matrix (the convention of the published anchors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamstage.features import NormalizerConfig
from streamstage.model.stager import StagerConfig
from streamstage.training.data import FeatureNight, subject_folds, subjects_of
from streamstage.training.joins import JoinScores, join_scores, random_joins
from streamstage.training.metrics import StagingScores
from streamstage.training.predict import score_nights
from streamstage.training.train import TrainConfig, train_ensemble

SEDF20_SUBJECTS = tuple(f"{i:02d}" for i in range(20))


def split_validation(
    nights: Sequence[FeatureNight], fraction: float, seed: int
) -> tuple[list[FeatureNight], list[FeatureNight]]:
    """Hold out a fraction of the *subjects* for early stopping."""
    subjects = subjects_of(nights)
    n_val = max(1, round(len(subjects) * fraction)) if len(subjects) > 1 else 0
    val_subjects = set(np.random.default_rng(seed).permutation(subjects)[:n_val].tolist())
    return [n for n in nights if n.subject not in val_subjects], [
        n for n in nights if n.subject in val_subjects
    ]


def with_montages(
    train: Sequence[FeatureNight], extra_montages: Sequence[FeatureNight]
) -> list[FeatureNight]:
    """``train`` plus the other montages of exactly its nights."""
    names = {night.name for night in train}
    return [*train, *(night for night in extra_montages if night.name in names)]


def cross_validate(
    nights: Sequence[FeatureNight],
    n_folds: int,
    stager_config: StagerConfig,
    train_config: TrainConfig,
    normalizer: NormalizerConfig | None = None,
    val_fraction: float = 0.1,
    n_members: int = 1,
    joins_per_night: int = 3,
    extra_montages: Sequence[FeatureNight] = (),
    on_fold: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``n_folds``-fold subject-wise CV; returns pooled scores and per-fold records.

    ``extra_montages`` are the same nights through other derivations (a single-channel model trained on
    several montages); a fold trains on those of its training subjects only, never validates or tests on
    them.

    Held-out nights are staged cold from their start, and (for a streaming model) also joined at
    ``joins_per_night`` random points of sleep, scored by minutes since the join beside the same epochs of
    the whole night: what a stream joined mid-night costs, on subjects the model never saw.
    """
    folds = subject_folds(subjects_of(nights), n_folds, seed=train_config.seed)
    pooled = np.zeros((len(stager_config.stages),) * 2, dtype=np.int64)
    records, join_results = [], []
    for fold_index, test_subjects in enumerate(folds):
        test = [n for n in nights if n.subject in test_subjects]
        rest = [n for n in nights if n.subject not in test_subjects]
        train, val = split_validation(rest, val_fraction, seed=train_config.seed + fold_index)
        train = with_montages(train, extra_montages)
        model = train_ensemble(train, val, stager_config, train_config, n_members, normalizer)
        scores = score_nights(model, test)
        pooled += scores.confusion
        record = {
            "fold": fold_index,
            "test_subjects": test_subjects,
            "best_val_kappa": model.training.get("best_val_kappa"),
            **{
                k: v
                for k, v in scores.to_dict().items()
                if k in ("n_epochs", "accuracy", "macro_f1", "kappa", "confusion")
            },
        }
        records.append(record)
        if joins_per_night and model.streams:
            joins = random_joins(test, joins_per_night, seed=train_config.seed + fold_index)
            join_results.append(join_scores(model, test, joins))
        if on_fold:
            on_fold(fold_index, len(folds), record)
    result: dict[str, Any] = {"pooled": StagingScores(pooled).to_dict(), "folds": records, "n_folds": n_folds}
    if join_results:
        result["joins"] = JoinScores.merged(join_results).to_dict()
    return result
