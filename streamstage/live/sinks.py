"""Where each staged epoch of a night goes: the night folder, the LSL outlets, events, alarm, dashboard.

A sink that fails is logged and the night goes on, with one exception: a night folder that cannot be
written (:class:`OutputError`) ends it, since nothing the night did from then on would be kept.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from streamstage import STAGES
from streamstage.alarm import ClockMap, SmartAlarm
from streamstage.config import Settings
from streamstage.dashboard import AlarmStatus, DashboardState
from streamstage.errors import OutputError
from streamstage.hooks import Event, EventDetector, HookDispatcher, build_hook
from streamstage.live.units import staged_sources
from streamstage.output import NightWriter
from streamstage.records import StagedEpoch
from streamstage.signal.channels import Montage

log = logging.getLogger(__name__)
RECORDED_EVENTS = ("sleep_onset", "stage_change", "signal_lost", "signal_back")
TRUTH_KEPT_S = 120.0


class EpochSink(Protocol):
    """Anything else that wants each staged epoch (LSL outlets)."""

    def push(self, epoch: StagedEpoch) -> None: ...


@dataclass(frozen=True)
class SignalBlock:
    """Samples about to be staged, in µV (NaN: missing): the source channels the montage reads, then each
    derived channel that is not a source itself. ``first_index`` is the first sample's index on the night's
    time axis, whose sample 0 was taken at wall time ``start``."""

    first_index: int
    sfreq_hz: float
    start: datetime
    labels: tuple[str, ...]
    samples_uv: np.ndarray

    @classmethod
    def of(
        cls,
        montage: Montage,
        stream_labels: tuple[str, ...],
        raw_uv: np.ndarray | None,
        derived_uv: np.ndarray,
        position: tuple[int, float, datetime],
    ) -> SignalBlock:
        """A block from a chunk's source samples (None: a bridged gap) and its derived channels, at
        ``position`` = (first index, rate, wall time of sample 0)."""
        sources, own, labels = recorded_channels(montage, stream_labels)
        raw = np.full((len(derived_uv), len(sources)), np.nan) if raw_uv is None else raw_uv[:, sources]
        return cls(*position, labels, np.hstack([raw, derived_uv[:, own]]))


def recorded_channels(
    montage: Montage, stream_labels: tuple[str, ...]
) -> tuple[list[int], list[int], tuple[str, ...]]:
    """What a raw recording keeps: the stream columns the montage reads, the derivations that are not one
    of them (those with a reference), and the labels of both."""
    sources = staged_sources(montage)
    own = [k for k, d in enumerate(montage.derivations) if d.reference is not None]
    return sources, own, (*(stream_labels[i] for i in sources), *(montage.labels[k] for k in own))


class SignalSink(EpochSink, Protocol):
    """A sink that also keeps the signal (the raw recording): every block, then each epoch, then close."""

    def record(self, block: SignalBlock) -> None: ...

    def close(self) -> None: ...


class NightSinks:
    """The sinks of one night and the decisions taken on its epochs (events, smart alarm)."""

    def __init__(
        self,
        writer: NightWriter,
        settings: Settings,
        sinks: tuple[EpochSink, ...],
        dashboard: DashboardState,
        signal_sinks: tuple[SignalSink, ...] = (),
    ) -> None:
        self.writer = writer
        self.settings = settings
        self.signal_sinks = signal_sinks
        self.sinks = (*sinks, *signal_sinks)
        self.dashboard = dashboard
        self.hooks = HookDispatcher([build_hook(spec) for spec in settings.hooks])
        self.detector: EventDetector | None = None
        self.alarm: SmartAlarm | None = None
        self.truth: dict[int, int] = {}
        self._units_warned = False

    def start(self, clock: ClockMap) -> None:
        """The night's clock is known: the event detector and the alarm can run."""
        self.detector = EventDetector(self.settings.sleep_onset_epochs, clock.wall)
        if self.settings.alarm is not None:
            self.alarm = SmartAlarm(self.settings.alarm, clock)
            self._refresh_alarm_panel()

    def deliver(self, epoch: StagedEpoch, outward: StagedEpoch, wall_end: datetime, elapsed_s: float) -> None:
        """Write one epoch and hand it on: ``epoch`` in night time (alarm, events, dashboard), ``outward``
        in the stream's clock (hypnogram, LSL outlets)."""
        assert self.detector is not None
        truth = self._truth_for(outward)
        self.writer.write_epoch(outward, wall_end, None if truth is None else STAGES[truth])
        for sink in self.sinks:
            self.guarded(sink.push, outward)
        self.dashboard.add_epoch(epoch, truth)
        self.dashboard.elapsed_s = elapsed_s
        self.dashboard.quality = "good" if epoch.quality_ok else f"{epoch.quality}"
        self.dashboard.latencies.append(epoch.latency_s)
        if epoch.quality == "units" and not self._units_warned:
            self._units_warned = True
            self.notice(
                "units_warning",
                "the signal is far too small for EEG in µV: is the stream in volts or millivolts? "
                "check the unit in the stream's channel metadata",
                epoch=epoch.index,
            )
        for event in self.detector.update(epoch):
            if event.name in RECORDED_EVENTS:
                self.guarded(self.writer.write_record, event.to_dict())
            self.hooks.dispatch(event)
        if self.alarm is not None:
            self._alarm_decisions(self.alarm.update(epoch))
            self._refresh_alarm_panel()

    def record_signal(self, block: SignalBlock) -> None:
        for sink in self.signal_sinks:
            self.guarded(sink.record, block)

    def signal(self, ok: bool, time_s: float | None) -> None:
        """The inlet lost the stream or got it back, at night time ``time_s`` (None: before any sample)."""
        if self.detector is not None and time_s is not None:
            for event in self.detector.set_signal(ok, time_s):
                self.hooks.dispatch(event)

    def tick(self, now: datetime) -> None:
        """Let the alarm's fallback fire on time even when no epoch arrives; forward hook outcomes."""
        if self.alarm is not None:
            self._alarm_decisions(self.alarm.check_time(now))
            self._refresh_alarm_panel()
        for result in self.hooks.drain_results():
            record = result.to_dict()
            self.guarded(self.writer.write_record, record)
            if record["status"] != "ok":
                self.dashboard.log_event(f"hook {record['hook']} {record['status']}: {record['detail']}")

    def close(self) -> None:
        """Flush the hooks (ending any still running) and record how they went; close the signal sinks."""
        for result in self.hooks.close():
            self.guarded(self.writer.write_record, result.to_dict())
        for sink in self.signal_sinks:
            self.guarded(sink.close)

    def _alarm_decisions(self, decisions: list) -> None:
        for decision in decisions:
            self.guarded(self.writer.write_record, decision.to_dict())
            if decision.fired:
                self.dashboard.log_event(f"alarm fired ({decision.kind}): {decision.detail}")
                self.hooks.dispatch(Event.from_alarm(decision))

    def _refresh_alarm_panel(self) -> None:
        if self.alarm is None:
            return
        state = "fired" if self.alarm.fired else "armed"
        self.dashboard.alarm = AlarmStatus(self.alarm.window_start, self.alarm.alarm_at, state)

    # -- ground truth from a replay ----------------------------------------------------------------------
    def add_truth(self, start_s: float, stage_name: str) -> None:
        """A ground-truth marker (from a replay's hypnogram stream) starting at ``start_s``."""
        if stage_name in STAGES:
            self.truth[round(start_s * 1000)] = STAGES.index(stage_name)

    def _truth_for(self, epoch: StagedEpoch) -> int | None:
        """The ground-truth stage covering the middle of the epoch, when a truth stream is read."""
        if not self.truth:
            return None
        middle = epoch.start_s + epoch.duration_s / 2
        starts = [s for s in self.truth if s <= middle * 1000]
        stage = self.truth[max(starts)] if starts else None
        for old in [s for s in self.truth if s < (epoch.start_s - TRUTH_KEPT_S) * 1000]:
            del self.truth[old]  # bounded: only the last minutes are kept
        return stage

    # -- the record of the night --------------------------------------------------------------------------
    def event(self, name: str, **fields: Any) -> None:
        self.guarded(self.writer.write_event, name, **fields)

    def notice(self, name: str, message: str, **fields: Any) -> None:
        """Something the user should know: logged, recorded and shown."""
        log.warning(message)
        self.event(name, message=message, **fields)
        self.dashboard.log_event(message)

    def guarded(self, action: Any, *args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except OutputError:
            raise  # the night folder cannot be written: nothing the night does from now on would be kept
        except Exception as error:  # a sink must never end the night
            self.record_error("sink_error", error)

    def record_error(self, kind: str, error: BaseException) -> None:
        """Log a failure that the night survives: to the log, events.jsonl (if writable) and the dashboard."""
        log.error("%s: %s", kind, error, exc_info=error)
        self.dashboard.log_event(f"{kind}: {error}")
        try:
            self.writer.write_event(kind, error=repr(error), traceback=traceback.format_exception(error)[-3:])
        except Exception:
            log.exception("events.jsonl is not writable")

    def state_dict(self) -> dict[str, Any]:
        assert self.detector is not None
        return {
            "detector": self.detector.state_dict(),
            "alarm": None if self.alarm is None else self.alarm.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.detector is not None
        self.detector.load_state_dict(state["detector"])
        if self.alarm is not None and state.get("alarm") is not None:
            self.alarm.load_state_dict(state["alarm"])
        self._refresh_alarm_panel()
