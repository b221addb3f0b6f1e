"""Epoch-wise agreement metrics from a confusion matrix (the field's standard set) for evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streamstage import STAGES
from streamstage.stats import cohen_kappa, confusion_matrix

N_STAGES = len(STAGES)


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
        """Cohen's kappa; NaN where undefined (no epochs, or one class only in both)."""
        kappa = cohen_kappa(self.confusion) if self.confusion.sum() else None
        return float("nan") if kappa is None else float(kappa)

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
