"""One night, fed by any source of timestamped chunks: the live loop's heart, without the loop.

:class:`NightSession` takes raw chunks with their time stamps (from an LSL inlet), puts them on the regular
grid, derives the staged channel, runs the staging pipeline and hands every staged epoch to the sinks: the
night folder, the LSL outlets, the event detector, the smart alarm, the hooks and the dashboard state. After
every epoch it saves its whole state atomically, so a killed process resumes where it stood.

It never lets one bad chunk end the night: a failure inside a sink is logged as an event and the night goes
on; only a stream whose wanted channel is gone stops it, with a message saying so.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from streamstage import STAGES, __version__
from streamstage.alarm import ClockMap, SmartAlarm
from streamstage.config import Settings
from streamstage.dashboard import AlarmStatus, DashboardState
from streamstage.errors import ChannelError, ResumeError
from streamstage.hooks import Event, EventDetector, HookDispatcher, build_hook
from streamstage.live.channels import pick_montage
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.timing import make_regularizer
from streamstage.model.checkpoint import StagingModel
from streamstage.output import NightWriter
from streamstage.pipeline import StagingPipeline
from streamstage.records import StagedEpoch
from streamstage.signal.channels import Montage
from streamstage.signal.units import scale_to_uv

log = logging.getLogger(__name__)
STATE_FORMAT = 1
IRREGULAR_GRID_HZ = 100.0
"""An irregular-rate stream is interpolated onto this grid (the model rate)."""


class EpochSink(Protocol):
    """Anything else that wants each staged epoch (LSL outlets)."""

    def push(self, epoch: StagedEpoch) -> None: ...


@dataclass
class SessionOptions:
    channels: tuple[str, ...] | None = None
    reference: str | None = None
    settings: Settings = field(default_factory=Settings)


class NightSession:
    """Stage one stream for one night; see the module docstring."""

    def __init__(
        self,
        model: StagingModel,
        layout: StreamLayout,
        writer: NightWriter,
        options: SessionOptions | None = None,
        sinks: tuple[EpochSink, ...] = (),
        dashboard: DashboardState | None = None,
    ) -> None:
        self.model = model
        self.writer = writer
        self.options = options or SessionOptions()
        self.sinks = sinks
        self.dashboard = dashboard or DashboardState()
        self.settings = self.options.settings
        self.hooks = HookDispatcher([build_hook(spec) for spec in self.settings.hooks])
        self.layout = layout
        self.montage, self._unit_factors = self._derive(layout)
        self._regularizer = make_regularizer(layout.n_channels, layout.sfreq_hz, IRREGULAR_GRID_HZ)
        self.pipeline: StagingPipeline | None = None
        self.clock: ClockMap | None = None
        self.alarm: SmartAlarm | None = None
        self.detector: EventDetector | None = None
        self.truth: dict[int, int] = {}
        self.last_time_s: float | None = None
        self.last_written_epoch = -1
        self.staged_count = 0
        self._units_warned = False
        self._resumed_after_s: float | None = None
        self._rate_noticed = False
        self.dashboard.stream_name = layout.name
        self.dashboard.sfreq = layout.sfreq_hz
        self.dashboard.channel = ", ".join(self.montage.labels)

    # -- channels -------------------------------------------------------------------------------------
    def _derive(self, layout: StreamLayout) -> tuple[Montage, np.ndarray]:
        montage = pick_montage(
            layout.labels, self.model.channels, self.options.channels, self.options.reference
        )
        factors = np.array([scale_to_uv(unit).factor for unit in layout.units], dtype=np.float64)
        return montage, factors

    # -- input ----------------------------------------------------------------------------------------
    def on_chunk(self, samples: np.ndarray, timestamps: np.ndarray) -> list[StagedEpoch]:
        """Stage a raw chunk ``(n, n_stream_channels)`` in the stream's units; returns the new epochs."""
        regular = self._regularizer.push(samples, timestamps)
        self._notice_rate()
        if not len(regular):
            return []
        if self.pipeline is None:
            self._start(float(regular.times[0]))
        assert self.pipeline is not None
        if self._resumed_after_s is not None:
            self._mark_resume_gap(float(timestamps[0]))
        self.last_time_s = float(regular.times[-1])
        raw_uv = regular.samples * self._unit_factors
        raw_uv[~np.isfinite(raw_uv)] = np.nan  # Inf bursts become missing samples, like NaN ones
        derived = self.montage.apply(raw_uv)
        staged = self.pipeline.push(derived, self._derived_missing(regular.missing) | np.isnan(derived))
        self.dashboard.trace_uv = self.pipeline.signal.trace_uv
        for epoch in staged:
            self._deliver(epoch)
        if staged:
            self.save()
        return staged

    def _derived_missing(self, missing: np.ndarray) -> np.ndarray:
        """A derived sample is missing when either of its source samples is."""
        columns = []
        for derivation in self.montage.derivations:
            column = missing[:, derivation.positive]
            if derivation.reference is not None:
                column = column | missing[:, derivation.reference]
            columns.append(column)
        return np.stack(columns, axis=1)

    def _mark_resume_gap(self, first_time_s: float) -> None:
        gap_s = first_time_s - (self._resumed_after_s or first_time_s)
        message = f"resumed after a gap of {gap_s:.1f} s; the gap's samples are marked missing"
        self._event(
            "resume_gap", from_s=self._resumed_after_s, to_s=first_time_s, gap_s=gap_s, message=message
        )
        self.dashboard.log_event(message)
        self._resumed_after_s = None

    def on_signal(self, ok: bool, message: str, layout: StreamLayout | None = None) -> None:
        """The inlet lost the stream or got it back (maybe with another channel layout)."""
        name = "signal_back" if ok else "signal_lost"
        self._event(name, message=message)
        self.dashboard.log_event(message)
        if self.detector is not None and self.last_time_s is not None:
            for event in self.detector.set_signal(ok, self.last_time_s):
                self.hooks.dispatch(event)
        if ok and layout is not None and not layout.same_channels(self.layout):
            self._relayout(layout)

    def _relayout(self, layout: StreamLayout) -> None:
        try:
            montage, factors = self._derive(layout)
        except ChannelError as error:
            raise ChannelError(f"the stream came back without the staged channel: {error}") from error
        self.layout, self.montage, self._unit_factors = layout, montage, factors
        self._regularizer = make_regularizer(layout.n_channels, layout.sfreq_hz, IRREGULAR_GRID_HZ)
        self._event("layout_changed", labels=list(layout.labels), sfreq=layout.sfreq_hz)

    def tick(self, now: datetime) -> None:
        """Let the alarm's fallback fire on time even when no epoch arrives; forward hook outcomes."""
        if self.alarm is not None:
            self._alarm_decisions(self.alarm.check_time(now))
            self._refresh_alarm_panel()
        for result in self.hooks.drain_results():
            record = result.to_dict()
            self._guarded(self.writer.write_record, record)
            if record["status"] != "ok":
                self.dashboard.log_event(f"hook {record['hook']} {record['status']}: {record['detail']}")

    def wall_now(self) -> datetime | None:
        """Stream time of the latest sample, as wall-clock time."""
        if self.clock is None or self.last_time_s is None:
            return None
        return self.clock.wall(self.last_time_s)

    # -- start and epochs ------------------------------------------------------------------------------
    def _start(self, first_time_s: float) -> None:
        self.pipeline = StagingPipeline(self.model, self._regularizer.sfreq_hz, start_time_s=first_time_s)
        self.clock = (
            ClockMap.from_start_clock(self.settings.start_clock, first_time_s)
            if self.settings.start_clock
            else ClockMap.live(first_time_s)
        )
        self._start_decisions()
        self._event(
            "night_started",
            stream=self.layout.name,
            source_id=self.layout.source_id,
            sfreq=self.layout.sfreq_hz,
            channels=list(self.montage.labels),
            model=self.model.source,
            model_id=self.model.model_id,
            stream_start_s=first_time_s,
            wall_start=self.clock.wall(first_time_s).isoformat(),
        )

    def _start_decisions(self) -> None:
        assert self.clock is not None
        self.detector = EventDetector(self.settings.sleep_onset_epochs, self.clock.wall)
        if self.settings.alarm is not None:
            self.alarm = SmartAlarm(self.settings.alarm, self.clock)
            self._refresh_alarm_panel()

    def _deliver(self, epoch: StagedEpoch) -> None:
        self.staged_count += 1
        if epoch.index <= self.last_written_epoch:
            return  # already on disk before a crash: keep what was written
        assert self.clock is not None and self.detector is not None
        wall = self.clock.wall(epoch.end_s)
        truth = self._truth_for(epoch)
        self.writer.write_epoch(epoch, wall, None if truth is None else STAGES[truth])
        self.last_written_epoch = epoch.index
        for sink in self.sinks:
            self._guarded(sink.push, epoch)
        self.dashboard.add_epoch(epoch, truth)
        self.dashboard.elapsed_s = epoch.end_s - self.pipeline.signal.start_time_s if self.pipeline else 0.0
        self.dashboard.quality = "good" if epoch.quality_ok else f"{epoch.quality}"
        self.dashboard.latencies.append(epoch.latency_s)
        if epoch.quality == "units" and not self._units_warned:
            self._units_warned = True
            message = (
                "the signal is far too small for EEG in µV: is the stream in volts or millivolts? "
                "check the unit in the stream's channel metadata"
            )
            log.warning(message)
            self._event("units_warning", message=message, epoch=epoch.index)
            self.dashboard.log_event(message)
        for event in self.detector.update(epoch):
            if event.name in ("sleep_onset", "stage_change", "signal_lost", "signal_back"):
                self._guarded(self.writer.write_record, event.to_dict())
            self.hooks.dispatch(event)
        if self.alarm is not None:
            self._alarm_decisions(self.alarm.update(epoch))
            self._refresh_alarm_panel()

    def _alarm_decisions(self, decisions: list) -> None:
        for decision in decisions:
            self._guarded(self.writer.write_record, decision.to_dict())
            if decision.fired:
                self.dashboard.log_event(f"alarm fired ({decision.kind}): {decision.detail}")
                self.hooks.dispatch(Event.from_alarm(decision))

    def _refresh_alarm_panel(self) -> None:
        if self.alarm is None:
            return
        state = "fired" if self.alarm.fired else "armed"
        self.dashboard.alarm = AlarmStatus(self.alarm.window_start, self.alarm.alarm_at, state)

    def _truth_for(self, epoch: StagedEpoch) -> int | None:
        """The ground-truth stage covering the middle of the epoch, when a truth stream is read."""
        if not self.truth:
            return None
        middle = epoch.start_s + epoch.duration_s / 2
        starts = [s for s in self.truth if s <= middle * 1000]
        stage = self.truth[max(starts)] if starts else None
        for old in [s for s in self.truth if s < (epoch.start_s - 120) * 1000]:
            del self.truth[old]  # bounded: only the last minutes are kept
        return stage

    def add_truth(self, start_s: float, stage_name: str) -> None:
        """A ground-truth marker (from a replay's hypnogram stream) starting at ``start_s``."""
        if stage_name in STAGES:
            self.truth[round(start_s * 1000)] = STAGES.index(stage_name)

    # -- housekeeping -----------------------------------------------------------------------------------
    def _notice_rate(self) -> None:
        notice = getattr(self._regularizer, "rate_notice", "")
        if notice and not self._rate_noticed:
            self._rate_noticed = True
            self._event("rate_warning", message=notice)
            self.dashboard.log_event(notice)

    def _event(self, name: str, **fields: Any) -> None:
        self._guarded(self.writer.write_event, name, **fields)

    def _guarded(self, action: Any, *args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
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

    def close(self) -> list[StagedEpoch]:
        """End of the night: release the last held-back epoch, flush hooks, save the state."""
        staged: list[StagedEpoch] = []
        if self.pipeline is not None:
            staged = self.pipeline.finish()
            for epoch in staged:
                self._deliver(epoch)
            self.save()
        for result in self.hooks.close():
            self._guarded(self.writer.write_record, result.to_dict())
        self._event("night_ended", epochs=self.last_written_epoch + 1)
        return staged

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.pipeline is not None and self.clock is not None and self.detector is not None
        return {
            "format": STATE_FORMAT,
            "version": __version__,
            "stream": {"name": self.layout.name, "source_id": self.layout.source_id},
            "channels": list(self.montage.labels),
            "pipeline": self.pipeline.state_dict(),
            "regularizer": self._regularizer.state_dict(),
            "clock": self.clock.to_dict(),
            "detector": self.detector.state_dict(),
            "alarm": None if self.alarm is None else self.alarm.state_dict(),
            "last_time_s": self.last_time_s,
            "last_written_epoch": self.last_written_epoch,
        }

    def save(self) -> None:
        if self.pipeline is not None:
            self._guarded(self.writer.save_state, self.state_dict())

    def resume(self, state: dict[str, Any]) -> None:
        """Continue a saved night: same model, same channels; the time since the save becomes a gap."""
        if state.get("format") != STATE_FORMAT or state.get("version") != __version__:
            raise ResumeError(
                f"the saved night was written by streamstage {state.get('version')}, this is {__version__}; "
                "resume it with the version that started it, or start a new night."
            )
        if list(state["channels"]) != list(self.montage.labels):
            raise ResumeError(
                f"the saved night staged {', '.join(state['channels'])}, this run would stage "
                f"{', '.join(self.montage.labels)}; pass the same --channel."
            )
        pipeline = StagingPipeline(self.model, self._regularizer.sfreq_hz)
        pipeline.load_state_dict(state["pipeline"])  # refuses a night staged with another model
        self.pipeline = pipeline
        self.clock = ClockMap.from_dict(state["clock"])
        self._regularizer.load_state_dict(state["regularizer"])
        self._start_decisions()
        assert self.detector is not None
        self.detector.load_state_dict(state["detector"])
        if self.alarm is not None and state.get("alarm") is not None:
            self.alarm.load_state_dict(state["alarm"])
            self._refresh_alarm_panel()
        self.last_time_s = state["last_time_s"]
        self._resumed_after_s = self.last_time_s
        self.last_written_epoch = int(state["last_written_epoch"])
        self._event(
            "resumed",
            saved_version=state.get("version"),
            last_time_s=self.last_time_s,
            last_written_epoch=self.last_written_epoch,
        )
