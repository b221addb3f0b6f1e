"""The night's decisions as sinks: events (sleep onset, stage changes, signal lost) with the hooks they
trigger, and the smart alarm. Each journals its own decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from streamstage.alarm import AlarmConfig, AlarmDecision, SmartAlarm
from streamstage.dashboard import AlarmStatus, DashboardState
from streamstage.hooks import Event, EventDetector, HookDispatcher, HookSpec, build_hook
from streamstage.sinks.base import Delivery, Journal, NightSink, NightStart

JOURNALLED_EVENTS = ("sleep_onset", "stage_change", "signal_lost", "signal_back")
"""Events written to events.jsonl (every event still goes to the hooks)."""


class EventSink(NightSink):
    """Detects the night's events from its epochs and hands them to the hooks; journals the hooks' results
    as they come back."""

    name = "events"

    def __init__(
        self, hooks: tuple[HookSpec, ...], sleep_onset_epochs: int, night_folder: Path | None = None
    ) -> None:
        self.hooks = HookDispatcher([build_hook(spec) for spec in hooks])
        self.sleep_onset_epochs = sleep_onset_epochs
        self.night = None if night_folder is None else str(Path(night_folder).resolve())
        """Every event a hook gets names the night's folder (``STREAMSTAGE_NIGHT``): in a lab, the bed's."""
        self.detector: EventDetector | None = None
        self.journal: Journal | None = None

    def start(self, night: NightStart, journal: Journal) -> None:
        self.detector = EventDetector(self.sleep_onset_epochs, night.clock.wall)
        self.journal = journal

    def dispatch(self, event: Event) -> None:
        """Run the hooks on an event (also the alarm's, which is decided elsewhere), with the night named."""
        if self.night is not None:
            event = replace(event, extra={**event.extra, "night": self.night})
        self.hooks.dispatch(event)

    def on_epoch(self, delivery: Delivery) -> None:
        assert self.detector is not None
        self._emit(self.detector.update(delivery.epoch))

    def on_signal(self, ok: bool, time_s: float | None) -> None:
        if self.detector is not None and time_s is not None:
            self._emit(self.detector.set_signal(ok, time_s))

    def _emit(self, events: list[Event]) -> None:
        assert self.journal is not None
        for event in events:
            if event.name in JOURNALLED_EVENTS:
                self.journal.record(event.to_dict())
            self.dispatch(event)

    def tick(self, now: datetime) -> None:
        for result in self.hooks.drain_results():
            self._journal_result(result.to_dict())

    def close(self) -> None:
        """Flush the hooks (ending any still running) and record how they went."""
        for result in self.hooks.close():
            if self.journal is not None:
                self.journal.record(result.to_dict())

    def _journal_result(self, record: dict[str, Any]) -> None:
        assert self.journal is not None
        self.journal.record(record)
        if record["status"] != "ok":
            self.journal.tell(f"hook {record['hook']} {record['status']}: {record['detail']}")

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.detector is None else self.detector.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.detector is not None
        self.detector.load_state_dict(state)


class AlarmSink(NightSink):
    """The smart alarm: decides on every epoch and on the clock, journals its decisions, fires the hooks
    through the event sink, and keeps the dashboard's alarm panel."""

    name = "alarm"

    def __init__(
        self, config: AlarmConfig, events: EventSink, dashboard: DashboardState | None = None
    ) -> None:
        self.config = config
        self.events = events
        self.dashboard = dashboard
        self.alarm: SmartAlarm | None = None
        self.journal: Journal | None = None

    def start(self, night: NightStart, journal: Journal) -> None:
        self.alarm = SmartAlarm(self.config, night.clock)
        self.journal = journal
        self._show()

    def on_epoch(self, delivery: Delivery) -> None:
        assert self.alarm is not None
        self._decided(self.alarm.update(delivery.epoch))

    def tick(self, now: datetime) -> None:
        if self.alarm is not None:
            self._decided(self.alarm.check_time(now))

    def _decided(self, decisions: list[AlarmDecision]) -> None:
        assert self.journal is not None
        for decision in decisions:
            self.journal.record(decision.to_dict())
            if decision.fired:
                self.journal.tell(f"alarm fired ({decision.kind}): {decision.detail}")
                self.events.dispatch(Event.from_alarm(decision))
        self._show()

    def _show(self) -> None:
        if self.alarm is not None and self.dashboard is not None:
            state = "fired" if self.alarm.fired else "armed"
            self.dashboard.alarm = AlarmStatus(self.alarm.window_start, self.alarm.alarm_at, state)

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.alarm is None else self.alarm.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.alarm is not None
        self.alarm.load_state_dict(state)
        self._show()
