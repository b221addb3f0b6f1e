"""The record every sink receives: one staged 30-s epoch.

Sinks (dashboard, hypnogram file, LSL outlets, alarm, hooks) depend on this small frozen record and on
nothing upstream of it, so the live, replay and offline paths feed them identically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from streamstage import STAGES


@dataclass(frozen=True)
class StagedEpoch:
    """One epoch after the model has stepped over it.

    ``start_s`` is in the source's clock (LSL time for a live stream, seconds from the file's start for an
    EDF). ``quality`` is ``"good"`` or the name of the check the epoch failed (``"missing"``, ``"flat"``,
    ``"clipped"``, ``"artifact"``, ``"units"``); low-quality epochs are still staged so the model's state
    keeps moving, but the alarm ignores them.
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
        return STAGES[self.stage]

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def quality_ok(self) -> bool:
        return self.quality == "good"

    @property
    def confidence(self) -> float:
        return self.probs[self.stage]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used for LSL markers, hooks and events.jsonl)."""
        record = asdict(self)
        record["stage"] = self.stage_name
        record["probs"] = dict(zip(STAGES, (round(p, 6) for p in self.probs), strict=True))
        return record
