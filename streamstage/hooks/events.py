"""Event payloads for hooks, and the detector that turns staged epochs into events.

Event names: ``epoch`` (every staged epoch), ``stage_change``, ``sleep_onset`` (once a night, see
:mod:`streamstage.alarm.onset` for the definition), ``signal_lost`` / ``signal_back`` and ``alarm`` (built
from a fired :class:`~streamstage.alarm.AlarmDecision`, with ``extra["kind"]`` ``smart`` or ``fallback``).
``time_s`` is in the stream's clock: an epoch's start for epoch-derived events, the firing moment for alarms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from streamstage import STAGES
from streamstage.alarm.onset import DEFAULT_ONSET_EPOCHS, SleepOnsetTracker
from streamstage.records import StagedEpoch

if TYPE_CHECKING:
    from streamstage.alarm.rule import AlarmDecision

EVENT_NAMES: tuple[str, ...] = ("alarm", "stage_change", "epoch", "sleep_onset", "signal_lost", "signal_back")
ENV_PREFIX = "STREAMSTAGE_"


@dataclass(frozen=True)
class Event:
    """What a hook receives: as JSON on stdin / in a POST body, or as this object for Python hooks."""

    name: str
    time_s: float | None = None
    wall: str | None = None
    epoch: int | None = None
    stage: str | None = None
    probs: dict[str, float] | None = None
    quality: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in EVENT_NAMES:
            raise ValueError(f"unknown event {self.name!r}; expected one of {', '.join(EVENT_NAMES)}")

    @classmethod
    def from_epoch(cls, name: str, epoch: StagedEpoch, wall: datetime | None = None, **extra: Any) -> Event:
        record = epoch.to_dict()
        return cls(
            name=name,
            time_s=epoch.start_s,
            wall=None if wall is None else wall.isoformat(),
            epoch=epoch.index,
            stage=record["stage"],
            probs=record["probs"],
            quality=epoch.quality,
            extra=extra,
        )

    @classmethod
    def from_alarm(cls, decision: AlarmDecision) -> Event:
        """The ``alarm`` event of a fired decision; the epoch fields are empty for a fallback without one."""
        extra = {"kind": decision.kind, "detail": decision.detail, "alarm_at": decision.alarm_at.isoformat()}
        if decision.epoch is None:
            return cls(name="alarm", wall=decision.wall.isoformat(), extra=extra)
        event = cls.from_epoch("alarm", decision.epoch, decision.wall, **extra)
        return replace(event, time_s=decision.epoch.end_s)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.name, **{key: value for key, value in asdict(self).items() if key != "name"}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    def env(self) -> dict[str, str]:
        """``STREAMSTAGE_*`` variables for command hooks: EVENT, TIME (wall, ISO), TIME_S, EPOCH, STAGE,
        QUALITY, PROB_<STAGE> and one per scalar ``extra`` key (e.g. KIND); empty when not applicable."""
        values: dict[str, Any] = {
            "EVENT": self.name,
            "TIME": self.wall,
            "TIME_S": self.time_s,
            "EPOCH": self.epoch,
            "STAGE": self.stage,
            "QUALITY": self.quality,
        }
        values.update({f"PROB_{stage}": (self.probs or {}).get(stage) for stage in STAGES})
        for key, value in self.extra.items():
            if value is None or isinstance(value, str | int | float | bool):
                values.setdefault(re.sub(r"\W", "_", key).upper(), value)
        return {ENV_PREFIX + key: "" if value is None else str(value) for key, value in values.items()}


class EventDetector:
    """Turns staged epochs into events; :meth:`update` takes an epoch and returns the events it produced.

    ``stage_change`` compares good-quality epochs only, so a flat stretch scored as W does not send the lights
    on. Signal loss is read from epochs whose quality is ``missing``; an inlet that notices it sooner can
    call :meth:`set_signal` and the epoch path will not repeat it, nor contradict it with an epoch from
    before that moment (the last epoch of a finished replay, released at the end, is not ``signal_back``).
    """

    def __init__(
        self,
        onset_epochs: int = DEFAULT_ONSET_EPOCHS,
        to_wall: Callable[[float], datetime] | None = None,
        epoch_events: bool = True,
    ) -> None:
        self._onset = SleepOnsetTracker(onset_epochs)
        self._to_wall = to_wall
        self._epoch_events = epoch_events
        self._last_stage: int | None = None
        self._signal_ok = True
        self._signal_since_s = float("-inf")

    def update(self, epoch: StagedEpoch) -> list[Event]:
        ok = epoch.quality != "missing"
        events = self.set_signal(ok, epoch.start_s) if epoch.start_s >= self._signal_since_s else []
        wall = self._wall(epoch.start_s)
        if self._epoch_events:
            events.append(Event.from_epoch("epoch", epoch, wall))
        onset = self._onset.update(epoch)
        if onset is not None:
            onset_wall = self._wall(onset[1])
            where: dict[str, Any] = {"onset_epoch": onset[0], "onset_s": onset[1]}
            if onset_wall is not None:
                where["onset_wall"] = onset_wall.isoformat()
            events.append(Event.from_epoch("sleep_onset", epoch, wall, **where))
        if epoch.quality_ok:
            if self._last_stage is not None and epoch.stage != self._last_stage:
                change = {"from": STAGES[self._last_stage], "to": epoch.stage_name}
                events.append(Event.from_epoch("stage_change", epoch, wall, **change))
            self._last_stage = epoch.stage
        return events

    def set_signal(self, ok: bool, time_s: float) -> list[Event]:
        """``signal_lost`` / ``signal_back`` on a change of signal state, else nothing."""
        if ok == self._signal_ok:
            return []
        self._signal_ok = ok
        self._signal_since_s = time_s
        wall = self._wall(time_s)
        name = "signal_back" if ok else "signal_lost"
        return [Event(name=name, time_s=time_s, wall=None if wall is None else wall.isoformat())]

    def _wall(self, stream_s: float) -> datetime | None:
        return None if self._to_wall is None else self._to_wall(stream_s)

    def state_dict(self) -> dict[str, Any]:
        return {
            "onset": self._onset.state_dict(),
            "last_stage": self._last_stage,
            "signal_ok": self._signal_ok,
            "signal_since_s": self._signal_since_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._onset.load_state_dict(state["onset"])
        self._last_stage = None if state["last_stage"] is None else int(state["last_stage"])
        self._signal_ok = bool(state["signal_ok"])
        self._signal_since_s = float(state.get("signal_since_s", float("-inf")))
