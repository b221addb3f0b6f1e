"""Epoch-wise agreement metrics from a confusion matrix (the field's standard set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streamstage import STAGES

N_STAGES = len(STAGES)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int = N_STAGES) -> np.ndarray:
    """Counts ``[true, predicted]``; epochs whose truth is outside ``0..n_classes-1`` are ignored."""
    truth = np.asarray(truth).ravel()
    predicted = np.asarray(predicted).ravel()
    keep = (truth >= 0) & (truth < n_classes)
    flat = truth[keep].astype(np.int64) * n_classes + predicted[keep].astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class StagingScores:
    """Pooled accuracy, macro-F1, Cohen's kappa and per-stage F1 of one confusion matrix."""

    confusion: np.ndarray

    @property
    def n_epochs(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def per_stage_f1(self) -> np.ndarray:
        tp = np.diag(self.confusion).astype(np.float64)
        denominator = self.confusion.sum(axis=0) + self.confusion.sum(axis=1)
        return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)

    @property
    def macro_f1(self) -> float:
        return float(self.per_stage_f1.mean())

    @property
    def kappa(self) -> float:
        total = self.confusion.sum()
        if not total:
            return float("nan")
        observed = np.trace(self.confusion) / total
        expected = float((self.confusion.sum(axis=0) * self.confusion.sum(axis=1)).sum()) / total**2
        return float((observed - expected) / (1 - expected)) if expected < 1 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_epochs": self.n_epochs,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "kappa": round(self.kappa, 4),
            "per_stage_f1": {s: round(float(f), 4) for s, f in zip(STAGES, self.per_stage_f1, strict=True)},
            "confusion": self.confusion.tolist(),
        }


def score(truth: np.ndarray, predicted: np.ndarray) -> StagingScores:
    return StagingScores(confusion_matrix(truth, predicted))
