"""The smart-alarm rule: wake the sleeper in light sleep inside a window before the alarm time.

Inside the window ``[alarm - window, alarm)``, the alarm fires at the end of the first epoch where the last
``consecutive`` epochs were all *light*: good signal quality, a light stage (default N1 or N2) as the model's
stage, and a **summed** probability of the light stages of at least ``min_prob``. Summing matters because an
epoch at the N1/N2 boundary (0.35 N1, 0.35 N2) is clearly light even though neither stage alone is sure.
It never fires before the sleeper has slept: an N2 epoch must have been seen and ``min_sleep`` must have
passed since sleep onset (see :mod:`streamstage.alarm.onset`). The alarm time itself always fires when
nothing fired earlier, from an epoch or from :meth:`SmartAlarm.check_time` when no epochs arrive.

Every decision inside the window is returned as an :class:`AlarmDecision` for events.jsonl and logged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from streamstage import STAGES
from streamstage.alarm.clock import ClockMap, aware
from streamstage.alarm.onset import DEFAULT_ONSET_EPOCHS, SleepOnsetTracker
from streamstage.errors import ConfigError, ResumeError
from streamstage.records import StagedEpoch

log = logging.getLogger("streamstage.alarm")


@dataclass(frozen=True)
class AlarmConfig:
    """The alarm rule's settings; the defaults are the ones the CLI documents."""

    time: time
    window_s: float = 30 * 60.0
    light_stages: tuple[int, ...] = (1, 2)
    consecutive: int = 2
    min_prob: float = 0.6
    min_sleep_s: float = 20 * 60.0
    snooze_s: float = 9 * 60.0
    onset_epochs: int = DEFAULT_ONSET_EPOCHS

    def __post_init__(self) -> None:
        if not 0 < self.window_s < 24 * 3600:
            raise ConfigError(f"alarm.window: must be between 0 and 24 h, got {self.window_s:g} s.")
        if not self.light_stages or not set(self.light_stages) <= set(range(1, len(STAGES))):
            raise ConfigError("alarm.light_stages: give one or more sleep stages among N1, N2, N3, REM.")
        if self.consecutive < 1 or self.onset_epochs < 1:
            raise ConfigError("alarm.consecutive and events.sleep_onset_epochs must be at least 1.")
        if not 0 < self.min_prob <= 1:
            raise ConfigError(f"alarm.min_prob: must be in (0, 1], got {self.min_prob:g}.")
        for key, value in (("min_sleep", self.min_sleep_s), ("snooze", self.snooze_s)):
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"alarm.{key}: must be a non-negative duration, got {value:g} s.")


@dataclass(frozen=True)
class AlarmDecision:
    """One step of the rule: ``action`` is considered, rejected, fired or snoozed; ``reason`` a short code.

    Reason codes: ``bad_quality``, ``not_light``, ``low_probability``, ``not_asleep``, ``too_soon``
    (rejected), ``waiting`` (considered: light, but fewer than ``consecutive`` light epochs yet), ``smart``
    and ``fallback`` (fired), ``snoozed``. ``detail`` says the same in words.
    """

    action: str
    reason: str
    detail: str
    wall: datetime
    alarm_at: datetime
    epoch: StagedEpoch | None = None
    light_prob: float | None = None

    @property
    def fired(self) -> bool:
        return self.action == "fired"

    @property
    def kind(self) -> str | None:
        """``smart`` or ``fallback`` for a fired alarm, else None."""
        return self.reason if self.fired else None

    def to_dict(self) -> dict[str, Any]:
        epoch = self.epoch
        return {
            "event": "alarm_decision",
            "action": self.action,
            "reason": self.reason,
            "detail": self.detail,
            "wall": self.wall.isoformat(),
            "alarm_at": self.alarm_at.isoformat(),
            "epoch": None if epoch is None else epoch.index,
            "time_s": None if epoch is None else epoch.end_s,
            "stage": None if epoch is None else epoch.stage_name,
            "quality": None if epoch is None else epoch.quality,
            "light_prob": None if self.light_prob is None else round(self.light_prob, 4),
        }


class SmartAlarm:
    """Feed it every staged epoch with :meth:`update` and call :meth:`check_time` periodically.

    The alarm time is resolved once, against the night's start (``clock``), and kept in the state, so a
    night resumed after midnight still wakes at this morning's 07:00 rather than tomorrow's.
    """

    def __init__(self, config: AlarmConfig, clock: ClockMap) -> None:
        self.config = config
        self.clock = clock
        self.alarm_at = clock.next_occurrence(config.time)
        self.window_start = self.alarm_at - timedelta(seconds=config.window_s)
        self.now = clock.wall_start
        self.fired = False
        self.fire_count = 0
        self._onset = SleepOnsetTracker(config.onset_epochs)
        self._light_run = 0
        self._last_index: int | None = None

    def update(self, epoch: StagedEpoch) -> list[AlarmDecision]:
        """Decisions taken at the end of ``epoch``: none before the window opens or once fired, else one."""
        end = self.clock.wall(epoch.end_s)
        self.now = max(self.now, end)
        self._onset.update(epoch)
        light_prob = sum(epoch.probs[stage] for stage in self.config.light_stages)
        epoch_reason = self._epoch_rejection(epoch, light_prob)
        contiguous = self._last_index is not None and epoch.index == self._last_index + 1
        self._last_index = epoch.index
        self._light_run = 0 if epoch_reason else (self._light_run + 1 if contiguous else 1)
        if self.fired or end < self.window_start:
            return []
        if end >= self.alarm_at:
            return [self._fire("fallback", "the alarm time has come", end, epoch, light_prob)]
        reason = epoch_reason or self._sleeper_rejection(epoch)
        if reason:
            return [self._decide("rejected", *reason, end, epoch, light_prob)]
        if self._light_run < self.config.consecutive:
            detail = f"light epoch {self._light_run} of {self.config.consecutive} needed"
            return [self._decide("considered", "waiting", detail, end, epoch, light_prob)]
        detail = f"{self._light_run} light epochs in a row (light probability {light_prob:.2f})"
        return [self._fire("smart", detail, end, epoch, light_prob)]

    def check_time(self, now: datetime) -> list[AlarmDecision]:
        """Fire the fallback once ``now`` reaches the alarm time; call it every few seconds, also when the
        signal is lost. For a replay pass ``clock.wall(current stream time)``, not the real clock; a naive
        ``now`` is taken as local time."""
        now = aware(now)
        self.now = max(self.now, now)
        if self.fired or now < self.alarm_at:
            return []
        return [self._fire("fallback", "the alarm time has come", now, None, None)]

    def snooze(self, minutes: float | None = None, *, now: datetime | None = None) -> AlarmDecision:
        """Move the alarm time to ``now + minutes`` (default: the configured snooze) and re-arm the rule.

        ``now`` defaults to the latest time the alarm has seen (epoch end or ``check_time``), which works for
        live nights and replays alike. Smart triggering restarts from zero light epochs, so the alarm does
        not ring again at once just because the sleeper was already in light sleep.
        """
        now = self.now if now is None else aware(now)
        delay_s = self.config.snooze_s if minutes is None else minutes * 60.0
        if not delay_s > 0:
            raise ValueError(f"snooze for a positive time, not {delay_s / 60:g} min")
        self.alarm_at = now + timedelta(seconds=delay_s)
        self.window_start = now
        self.fired = False
        self._light_run = 0
        detail = f"snoozed for {delay_s / 60:g} min"
        return self._decide("snoozed", "snoozed", detail, now, None, None, level=logging.INFO)

    def _epoch_rejection(self, epoch: StagedEpoch, light_prob: float) -> tuple[str, str] | None:
        if not epoch.quality_ok:
            return "bad_quality", f"signal quality is {epoch.quality}"
        if epoch.stage not in self.config.light_stages:
            return "not_light", f"stage {epoch.stage_name} is not a light stage"
        if light_prob < self.config.min_prob:
            return "low_probability", f"light probability {light_prob:.2f} < {self.config.min_prob:.2f}"
        return None

    def _sleeper_rejection(self, epoch: StagedEpoch) -> tuple[str, str] | None:
        if not self._onset.seen_n2 or self._onset.onset_s is None:
            return "not_asleep", "no N2 epoch yet: the sleeper has not slept"
        slept_s = epoch.end_s - self._onset.onset_s
        if slept_s < self.config.min_sleep_s:
            needed_min = self.config.min_sleep_s / 60
            return "too_soon", f"{slept_s / 60:.0f} min since sleep onset < {needed_min:g} min"
        return None

    def _fire(
        self, kind: str, detail: str, wall: datetime, epoch: StagedEpoch | None, light_prob: float | None
    ) -> AlarmDecision:
        self.fired = True
        self.fire_count += 1
        return self._decide("fired", kind, detail, wall, epoch, light_prob, level=logging.INFO)

    def _decide(
        self,
        action: str,
        reason: str,
        detail: str,
        wall: datetime,
        epoch: StagedEpoch | None,
        light_prob: float | None,
        level: int = logging.DEBUG,
    ) -> AlarmDecision:
        decision = AlarmDecision(action, reason, detail, wall, self.alarm_at, epoch, light_prob)
        where = "" if epoch is None else f" at epoch {epoch.index}"
        log.log(level, "alarm %s (%s)%s: %s", action, reason, where, detail)
        return decision

    def state_dict(self) -> dict[str, Any]:
        return {
            "alarm_at": self.alarm_at.isoformat(),
            "window_start": self.window_start.isoformat(),
            "now": self.now.isoformat(),
            "fired": self.fired,
            "fire_count": self.fire_count,
            "light_run": self._light_run,
            "last_index": self._last_index,
            "onset": self._onset.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.alarm_at = datetime.fromisoformat(state["alarm_at"])
            self.window_start = datetime.fromisoformat(state["window_start"])
            self.now = datetime.fromisoformat(state["now"])
            self.fired = bool(state["fired"])
            self.fire_count = int(state["fire_count"])
            self._light_run = int(state["light_run"])
            self._last_index = None if state["last_index"] is None else int(state["last_index"])
            self._onset.load_state_dict(state["onset"])
        except (KeyError, TypeError, ValueError) as error:
            raise ResumeError(
                f"the saved alarm state is damaged ({error!r}); start a new night or delete alarm state."
            ) from error
