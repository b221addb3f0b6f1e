"""The record every sink receives: one staged 30-s epoch.

Sinks (dashboard, hypnogram file, LSL outlets, alarm, hooks) depend on this small frozen record and on
nothing upstream of it, so the live, replay and offline paths feed them identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamstage import STAGES

UNKNOWN = -1
"""Stage code of an epoch with too little data to stage (quality ``"missing"``)."""
UNKNOWN_NAME = "unknown"


@dataclass(frozen=True)
class StagedEpoch:
    """One epoch after the model has stepped over it.

    ``start_s`` is in the source's clock (LSL time for a live stream, seconds from the file's start for an
    EDF). ``quality`` is ``"good"`` or the name of the check the epoch failed (``"missing"``, ``"flat"``,
    ``"clipped"``, ``"artifact"``, ``"units"``); low-quality epochs are still staged so the model's state
    keeps moving, but the alarm ignores them. An epoch with too little data (``"missing"``) is stepped
    too but its ``stage`` is :data:`UNKNOWN`: no sink may count a guess made from nothing as sleep.
    """

    index: int
    start_s: float
    stage: int
    probs: tuple[float, float, float, float, float]
    quality: str = "good"
    latency_s: float = 0.0
    duration_s: float = 30.0

    @property
    def stage_name(self) -> str:
        return UNKNOWN_NAME if self.stage == UNKNOWN else STAGES[self.stage]

    @property
    def known(self) -> bool:
        return self.stage != UNKNOWN

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def quality_ok(self) -> bool:
        return self.quality == "good"

    @property
    def confidence(self) -> float:
        return self.probs[self.stage] if self.known else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used for LSL markers, hooks and events.jsonl)."""
        record = dict(vars(self))  # shallow: every field is a scalar or a tuple of them
        record["stage"] = self.stage_name
        record["probs"] = dict(zip(STAGES, (round(p, 6) for p in self.probs), strict=True))
        return record


@dataclass(frozen=True)
class ProvisionalStage:
    """The stage of the epoch still in progress, from its first ``elapsed_s`` seconds (a raw model only).

    A peek: the committed state (normaliser, Mamba) does not move, and the epoch's final
    :class:`StagedEpoch` may differ. ``index`` and ``start_s`` are those that epoch will have.
    """

    index: int
    start_s: float
    elapsed_s: float
    stage: int
    probs: tuple[float, float, float, float, float]

    @property
    def stage_name(self) -> str:
        return STAGES[self.stage]

    @property
    def at_s(self) -> float:
        """When in the source's clock the peek was taken: the end of the samples it read."""
        return self.start_s + self.elapsed_s

    @property
    def confidence(self) -> float:
        return self.probs[self.stage]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the provisional LSL marker)."""
        record = dict(vars(self))  # shallow: every field is a scalar or a tuple of them
        record["stage"] = self.stage_name
        record["provisional"] = True
        record["probs"] = dict(zip(STAGES, (round(p, 6) for p in self.probs), strict=True))
        return record
