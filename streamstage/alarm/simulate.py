"""Run the alarm rule over a scored night, to try alarm settings on a hypnogram before trusting them.

A hypnogram (one stage code per 30-s epoch) becomes a sequence of :class:`StagedEpoch` with confident,
"one-hot-ish" probabilities, which is also how the tests drive the rule with real nights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import cast

from streamstage import STAGES
from streamstage.alarm.clock import ClockMap
from streamstage.alarm.rule import AlarmConfig, AlarmDecision, SmartAlarm
from streamstage.records import StagedEpoch


def epochs_from_hypnogram(
    stages: Sequence[int],
    start_s: float = 0.0,
    confidence: float = 0.9,
    qualities: Sequence[str] | None = None,
    epoch_s: float = 30.0,
) -> list[StagedEpoch]:
    """Epochs whose scored stage gets ``confidence`` and the other stages share the rest evenly."""
    if not 0 < confidence <= 1:
        raise ValueError("confidence must be in (0, 1]")
    others = (1.0 - confidence) / (len(STAGES) - 1)
    epochs = []
    for index, stage in enumerate(stages):
        probs = tuple(confidence if code == stage else others for code in range(len(STAGES)))
        epochs.append(
            StagedEpoch(
                index=index,
                start_s=start_s + index * epoch_s,
                stage=int(stage),
                probs=cast("tuple[float, float, float, float, float]", probs),
                quality="good" if qualities is None else qualities[index],
                duration_s=epoch_s,
            )
        )
    return epochs


def simulate(
    config: AlarmConfig, clock: ClockMap, epochs: Iterable[StagedEpoch], tick_s: float = 30.0
) -> list[AlarmDecision]:
    """Every decision of one night: epochs in order, then ``check_time`` ticks until the alarm time so the
    fallback also fires when the recording ends first (as a live caller's periodic check would)."""
    alarm = SmartAlarm(config, clock)
    decisions = [decision for epoch in epochs for decision in alarm.update(epoch)]
    while not alarm.fired:
        decisions += alarm.check_time(alarm.now + timedelta(seconds=tick_s))
    return decisions
