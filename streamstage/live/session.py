"""One night, fed by any source of timestamped chunks: the live loop's heart, without the loop.

:class:`NightSession` takes raw chunks with their time stamps (from an LSL inlet), puts them on the regular
grid, derives the staged channel, runs the staging pipeline and hands every staged epoch to the sinks
(:mod:`streamstage.live.sinks`). After every epoch it saves its whole state atomically, so a killed process
resumes where it stood. Every second of the night reaches the signal path, as data or as missing samples:
what the regularizer cannot fill (a long outage, a clock reset, a reopened stream) is bridged on the night's
own time axis (:mod:`streamstage.live.timeline`), so later epochs keep their true times.

It never lets one bad chunk end the night: a failure inside a sink is logged as an event and the night goes
on; only a stream whose staged channel is gone, or a night folder that cannot be written, stops it, with a
message saying so.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from streamstage import __version__
from streamstage.alarm import ClockMap
from streamstage.config import Settings
from streamstage.dashboard import DashboardState
from streamstage.errors import ChannelError
from streamstage.live.channels import pick_montage
from streamstage.live.clipping import SourceClipping
from streamstage.live.resume import STATE_FORMAT, check_resumable, stream_identity
from streamstage.live.sinks import EpochSink, NightSinks, SignalBlock, SignalSink
from streamstage.live.timeline import NightTimeline
from streamstage.live.units import UnitDecision, decide_units, staged_sources
from streamstage.lsl.meta import StreamLayout
from streamstage.model.checkpoint import StagingModel
from streamstage.output import NightWriter, WrittenEpoch, damaged_state
from streamstage.pipeline import StagingPipeline
from streamstage.records import StagedEpoch
from streamstage.signal.channels import Montage
from streamstage.signal.grid import RegularChunk
from streamstage.signal.timing import make_regularizer

log = logging.getLogger(__name__)
IRREGULAR_GRID_HZ = 100.0
"""An irregular-rate stream is interpolated onto this grid (the model rate)."""
UNIT_PROBE_S = 5.0
"""Seconds of signal looked at before the units are fixed (inferred where the stream does not say)."""


def _sources(layout: StreamLayout, montage: Montage) -> tuple[str, ...]:
    """The staged derivations by their source channels' labels, e.g. ``("AF7-TP9",)``."""
    return tuple(
        layout.labels[d.positive] + ("" if d.reference is None else f"-{layout.labels[d.reference]}")
        for d in montage.derivations
    )


def _pieces(regular: RegularChunk) -> list[tuple[int, int]]:
    """``(first, last)`` row ranges of a chunk, split where a new segment (clock reset) begins."""
    cuts = sorted({0, *regular.segment_starts, len(regular)})
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


@dataclass
class SessionOptions:
    channels: tuple[str, ...] | None = None
    reference: str | None = None
    settings: Settings = field(default_factory=Settings)
    accept_new_source: bool = False
    """Resume (or reconnect) on a stream that is not the one the night started with."""
    now: Callable[[], float] | None = None
    """The computer's clock in seconds (default ``time.time``); tests inject one to skip an outage."""


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
        signal_sinks: tuple[SignalSink, ...] = (),
    ) -> None:
        self.model = model
        self.writer = writer
        self.options = options or SessionOptions()
        self.dashboard = dashboard or DashboardState()
        self.settings = self.options.settings
        self.out = NightSinks(writer, self.settings, sinks, self.dashboard, signal_sinks)
        self.layout = layout
        self.montage = self._derive(layout)
        self._regularizer = make_regularizer(layout.n_channels, layout.sfreq_hz, IRREGULAR_GRID_HZ)
        self._now = self.options.now or time.time
        self.timeline = NightTimeline(self._now)
        self.pipeline: StagingPipeline | None = None
        self._clipping: SourceClipping | None = None
        self.clock: ClockMap | None = None
        self.last_time_s: float | None = None
        """Night time of the newest sample handed to the signal path."""
        self.last_written_epoch = -1
        self.staged_count = 0
        self._units: UnitDecision | None = None
        self._probe: list[tuple[np.ndarray, np.ndarray]] = []
        self._break_pending = False
        self._resumed_at_s: float | None = None
        self._continued: WrittenEpoch | None = None
        self._index_offset = 0
        self._rate_noticed = False
        self.dashboard.stream_name = layout.name
        self.dashboard.sfreq = layout.sfreq_hz
        self.dashboard.channel = ", ".join(self.montage.labels)

    # -- channels and units ---------------------------------------------------------------------------
    def _derive(self, layout: StreamLayout) -> Montage:
        return pick_montage(layout.labels, self.model.channels, self.options.channels, self.options.reference)

    def refusal(self, layout: StreamLayout) -> str:
        """Why a stream that came back cannot continue this night ("" when it can): the staged channel must
        be derived from the same source channels at the same rate, never silently re-chosen."""
        if layout.sfreq_hz != self.layout.sfreq_hz:
            return f"at {layout.sfreq_hz:g} Hz, but the night runs at {self.layout.sfreq_hz:g} Hz"
        try:
            montage = self._derive(layout)
        except ChannelError as error:
            return f"without the staged channel: {error}"
        if _sources(layout, montage) != _sources(self.layout, self.montage):
            return (
                f"with channels that give {', '.join(_sources(layout, montage))}, not the night's "
                f"{', '.join(_sources(self.layout, self.montage))}"
            )
        return ""

    def _probe_units(self, samples: np.ndarray, timestamps: np.ndarray, final: bool = False) -> list:
        """Hold the first seconds until the units are fixed, then stage them; returns the chunks to stage."""
        if len(timestamps):
            self._probe.append((samples, timestamps))
        rate_hz = self.layout.sfreq_hz or IRREGULAR_GRID_HZ
        if sum(len(stamps) for _, stamps in self._probe) < UNIT_PROBE_S * rate_hz and not final:
            return []
        chunks, self._probe = self._probe, []
        if not chunks:
            return []
        probe = np.concatenate([np.asarray(c[0], dtype=np.float64) for c in chunks])
        self._units = decide_units(self.layout, self.montage, probe)
        for notice in self._units.notices:
            self.out.notice("units_notice", notice)
        return chunks

    # -- input ----------------------------------------------------------------------------------------
    def on_chunk(self, samples: np.ndarray, timestamps: np.ndarray) -> list[StagedEpoch]:
        """Stage a raw chunk ``(n, n_stream_channels)`` in the stream's units; returns the new epochs."""
        if self._units is None:
            return [e for chunk in self._probe_units(samples, timestamps) for e in self._stage_raw(*chunk)]
        return self._stage_raw(samples, timestamps)

    def _stage_raw(self, samples: np.ndarray, timestamps: np.ndarray) -> list[StagedEpoch]:
        regular = self._regularizer.push(samples, timestamps)
        self._notice_rate()
        if not len(regular):
            return []
        if self.pipeline is None:
            self._start(float(regular.times[0]))
        staged: list[StagedEpoch] = []
        for first, last in _pieces(regular):
            if first in regular.segment_starts or self._break_pending:
                self._break_pending = False
                arrived_s = float(regular.times[last - 1] - regular.times[first])
                staged += self._bridge(float(regular.times[first]), arrived_s)
            staged += self._push(regular, first, last)
        if staged:
            self.save()
        return staged

    def _push(self, regular: RegularChunk, first: int, last: int) -> list[StagedEpoch]:
        """Hand slots ``first:last`` of one segment to the signal path, in µV, and deliver the epochs."""
        assert self.pipeline is not None and self._units is not None
        night_start = self._night_next()
        if self._resumed_at_s is not None:
            self._note_resume(regular, first, last, night_start)
        raw_uv = regular.samples[first:last] * np.asarray(self._units.factors)
        raw_uv[~np.isfinite(raw_uv)] = np.nan  # Inf bursts become missing samples, like NaN ones
        assert self._clipping is not None
        self._clipping.push(raw_uv, np.isnan(raw_uv))
        derived = self.montage.apply(raw_uv)
        missing = self._derived_missing(regular.missing[first:last]) | np.isnan(derived)
        self._record(raw_uv, derived)
        staged = self.pipeline.push(derived, missing)
        self.last_time_s = self._night_next() - 1.0 / self.pipeline.sfreq_in
        self.timeline.observe(float(regular.times[last - 1]))
        self.dashboard.trace_uv = self.pipeline.signal.trace_uv
        return [self._deliver(epoch) for epoch in staged]

    def _night_next(self) -> float:
        """Night time of the next sample the signal path will take."""
        assert self.pipeline is not None
        signal = self.pipeline.signal
        return signal.start_time_s + signal.n_samples_in / signal.sfreq_in

    def _bridge(self, new_stream_s: float, arrived_s: float) -> list[StagedEpoch]:
        """A break the regularizer could not fill (long gap, clock reset, reopened stream): account for
        every second of it as missing samples, so later epochs keep their true time."""
        assert self.pipeline is not None
        night_next = self._night_next()
        expected = night_next - self.timeline.offset_s
        bridge = self.timeline.bridge(expected, new_stream_s, night_next, arrived_s)
        n_missing = round(bridge.gap_s * self.pipeline.sfreq_in)
        staged = self._fill_missing(n_missing)
        how = (
            "by the stream's clock"
            if bridge.measured_by == "stream"
            else f"by this computer's clock (the stream's clock jumped {bridge.stream_gap_s:+.0f} s)"
        )
        message = f"{bridge.gap_s:.0f} s without signal, measured {how}, marked missing"
        self.out.event(
            "gap_bridged",
            gap_s=bridge.gap_s,
            stream_gap_s=bridge.stream_gap_s,
            measured_by=bridge.measured_by,
            stream_s=new_stream_s,
            message=message,
        )
        self.dashboard.log_event(message)
        return staged

    def _fill_missing(self, n_samples: int) -> list[StagedEpoch]:
        """Push ``n_samples`` missing samples, one epoch's worth at a time (hours of gap stay small)."""
        assert self.pipeline is not None
        block = round(self.pipeline.signal.config.epoch_s * self.pipeline.sfreq_in)
        staged: list[StagedEpoch] = []
        n_out = len(self.montage.labels)
        while n_samples > 0:
            take = min(block, n_samples)
            gap = np.full((take, n_out), np.nan)
            assert self._clipping is not None
            self._clipping.push_missing(take)
            self._record(None, gap)
            staged += [self._deliver(e) for e in self.pipeline.push(gap, np.ones(gap.shape, dtype=bool))]
            n_samples -= take
        self.last_time_s = self._night_next() - 1.0 / self.pipeline.sfreq_in
        return staged

    def _record(self, raw_uv: np.ndarray | None, derived_uv: np.ndarray) -> None:
        """Hand the samples about to be staged to the signal sinks (the raw recording), if any."""
        if self.out.signal_sinks:
            assert self.pipeline is not None and self.clock is not None
            signal = self.pipeline.signal
            position = (signal.n_samples_in, signal.sfreq_in, self.clock.wall(signal.start_time_s))
            block = SignalBlock.of(self.montage, self.layout.labels, raw_uv, derived_uv, position)
            self.out.record_signal(block)

    def _derived_missing(self, missing: np.ndarray) -> np.ndarray:
        """A derived sample is missing when either of its source samples is."""
        columns = []
        for derivation in self.montage.derivations:
            column = missing[:, derivation.positive]
            if derivation.reference is not None:
                column = column | missing[:, derivation.reference]
            columns.append(column)
        return np.stack(columns, axis=1)

    def _note_resume(self, regular: RegularChunk, first: int, last: int, night_start: float) -> None:
        """Once real samples arrive after a resume: how long the night was without them, said once."""
        real = np.flatnonzero(~regular.empty_slots[first:last])
        if not real.size or self._resumed_at_s is None or self.pipeline is None:
            return
        gap_s = night_start + real[0] / self.pipeline.sfreq_in - self._resumed_at_s
        from_s = self.timeline.last_stream_s
        to_s = float(regular.times[first + real[0]])
        message = f"resumed after {gap_s:.1f} s without data; that time is marked missing"
        self.out.event("resume_gap", from_s=from_s, to_s=to_s, gap_s=gap_s, message=message)
        self.dashboard.log_event(message)
        self._resumed_at_s = None

    def on_signal(self, ok: bool, message: str, layout: StreamLayout | None = None) -> None:
        """The inlet lost the stream or got it back (maybe with another channel layout)."""
        self.out.event("signal_back" if ok else "signal_lost", message=message)
        self.dashboard.log_event(message)
        self.out.signal(ok, self.last_time_s)
        if ok and layout is not None and not layout.same_channels(self.layout):
            self._relayout(layout)

    def on_stream_notice(self, kind: str, message: str) -> None:
        """The inlet refused a stream that is not this night's, or saw a second one matching it."""
        self.out.notice(kind, message)

    def _relayout(self, layout: StreamLayout) -> None:
        reason = self.refusal(layout)
        if reason:
            raise ChannelError(f"the stream came back {reason}")
        self.layout, self.montage = layout, self._derive(layout)
        if self.pipeline is not None:
            signal = self.pipeline.signal
            self._clipping = self._source_clipping(signal.n_samples_in)
        self._regularizer = make_regularizer(layout.n_channels, layout.sfreq_hz, IRREGULAR_GRID_HZ)
        self._units = None  # the new layout's units are read again
        self._break_pending = True
        self.out.event("layout_changed", labels=list(layout.labels), sfreq=layout.sfreq_hz)

    def tick(self, now: datetime) -> None:
        """Let the alarm's fallback fire on time even when no epoch arrives; forward hook outcomes."""
        self.out.tick(now)

    def add_truth(self, start_s: float, stage_name: str) -> None:
        """A ground-truth marker (from a replay's hypnogram stream) starting at ``start_s`` (stream clock)."""
        self.out.add_truth(start_s, stage_name)

    def record_error(self, kind: str, error: BaseException) -> None:
        """A failure the night survives (a bad chunk): logged, recorded and shown."""
        self.out.record_error(kind, error)

    def wall_now(self) -> datetime | None:
        """Stream time of the latest sample, as wall-clock time."""
        if self.clock is None or self.last_time_s is None:
            return None
        return self.clock.wall(self.last_time_s)

    # -- start and epochs ------------------------------------------------------------------------------
    def _start(self, first_time_s: float) -> None:
        continued = self._continued
        start_s = first_time_s if continued is None else continued.end_s
        self.pipeline = StagingPipeline(self.model, self._regularizer.sfreq_hz, start_time_s=start_s)
        self._clipping = self._source_clipping()
        if continued is not None:
            self.clock = ClockMap(continued.end_s, continued.wall_end)
            self.timeline.last_wall_s = continued.wall_end.timestamp()
            self._break_pending = True  # the time since the last row is bridged like any break
        elif self.settings.start_clock:
            self.clock = ClockMap.from_start_clock(self.settings.start_clock, first_time_s)
        else:
            self.clock = ClockMap.live(first_time_s, datetime.fromtimestamp(self._now()).astimezone())
        self.out.start(self.clock)
        self.out.event(
            "night_started" if continued is None else "night_continued",
            stream=self.layout.name,
            source_id=self.layout.source_id,
            sfreq=self.layout.sfreq_hz,
            channels=list(self.montage.labels),
            model=self.model.source,
            model_id=self.model.model_id,
            stream_start_s=first_time_s,
            wall_start=self.clock.wall(start_s).isoformat(),
        )

    def _source_clipping(self, n_samples_in: int = 0) -> SourceClipping:
        assert self.pipeline is not None
        signal = self.pipeline.signal
        return SourceClipping(signal.sfreq_in, staged_sources(self.montage), signal.config, n_samples_in)

    def _deliver(self, staged: StagedEpoch) -> StagedEpoch:
        """Write an epoch and hand it to every sink. The alarm, events and dashboard see it in night time;
        the hypnogram and the LSL outlets in the stream clock of the segment it starts in."""
        epoch = replace(staged, index=staged.index + self._index_offset)
        assert self._clipping is not None
        if self._clipping.clipped(staged.index) and epoch.quality in ("good", "artifact"):
            epoch = replace(epoch, quality="clipped")  # a source channel clipped: see live/clipping.py
        self.staged_count += 1
        if epoch.index <= self.last_written_epoch:
            return epoch  # already on disk before a crash: keep what was written
        assert self.clock is not None and self.pipeline is not None
        outward = replace(epoch, start_s=self.timeline.to_stream(epoch.start_s))
        elapsed_s = epoch.end_s - self.pipeline.signal.start_time_s
        self.out.deliver(epoch, outward, self.clock.wall(epoch.end_s), elapsed_s)
        self.last_written_epoch = epoch.index
        return epoch

    # -- housekeeping -----------------------------------------------------------------------------------
    def _notice_rate(self) -> None:
        notice = getattr(self._regularizer, "rate_notice", "")
        if notice and not self._rate_noticed:
            self._rate_noticed = True
            self.out.notice("rate_warning", notice)

    def close(self) -> list[StagedEpoch]:
        """End of the night: release the last held-back epoch, flush hooks, save the state."""
        staged: list[StagedEpoch] = []
        if self._units is None:
            for chunk in self._probe_units(np.empty((0, self.layout.n_channels)), np.empty(0), final=True):
                staged += self._stage_raw(*chunk)
        if self.pipeline is not None:
            staged += [self._deliver(epoch) for epoch in self.pipeline.finish()]
            self.save()
        self.out.close()
        self.out.event("night_ended", epochs=self.last_written_epoch + 1)
        return staged

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.pipeline is not None and self.clock is not None and self._units is not None
        return {
            "format": STATE_FORMAT,
            "version": __version__,
            "stream": stream_identity(self.layout),
            "channels": list(self.montage.labels),
            "unit_factors": list(self._units.factors),
            "pipeline": self.pipeline.state_dict(),
            "regularizer": self._regularizer.state_dict(),
            "clipping": None if self._clipping is None else self._clipping.state_dict(),
            "timeline": self.timeline.state_dict(),
            "clock": self.clock.to_dict(),
            "decisions": self.out.state_dict(),
            "last_time_s": self.last_time_s,
            "last_written_epoch": self.last_written_epoch,
            "index_offset": self._index_offset,
        }

    def save(self) -> None:
        if self.pipeline is not None and self._units is not None:
            self.writer.save_state(self.state_dict())

    def resume(self, state: dict[str, Any], last_row: WrittenEpoch | None = None) -> None:
        """Continue a saved night: same model, same channels; the time since the save becomes a gap.

        ``last_row`` is the newest epoch in the hypnogram: a crash after its row was written but before the
        state that follows it was saved must not write that epoch twice.
        """
        check_resumable(state, self.layout, self.montage, self.options.accept_new_source)
        try:
            pipeline = StagingPipeline(self.model, self._regularizer.sfreq_hz)
            pipeline.load_state_dict(state["pipeline"])  # refuses a night staged with another model
            self.clock = ClockMap.from_dict(state["clock"])
            self._regularizer.load_state_dict(state["regularizer"])
            self.timeline.load_state_dict(state["timeline"])
            self.out.start(self.clock)
            self.out.load_state_dict(state["decisions"])
            self._units = UnitDecision(tuple(float(f) for f in state["unit_factors"]))
            self.last_time_s = float(state["last_time_s"])
            self.last_written_epoch = int(state["last_written_epoch"])
            self._index_offset = int(state["index_offset"])
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_state(self.writer.state_path, error) from error
        self.pipeline = pipeline
        self._clipping = self._source_clipping()
        try:
            self._clipping.load_state_dict(state["clipping"])
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_state(self.writer.state_path, error) from error
        if last_row is not None:
            self.last_written_epoch = max(self.last_written_epoch, last_row.index)
        self._resumed_at_s = self._night_next()
        self.out.event(
            "resumed",
            saved_version=state.get("version"),
            last_time_s=self.last_time_s,
            last_written_epoch=self.last_written_epoch,
        )

    def continue_from(self, last_row: WrittenEpoch) -> None:
        """Continue a night whose state is lost (``--rebuild-state``): the rows stay, the model starts
        afresh, the epochs go on from the last row and the time since it is marked missing."""
        self._continued = last_row
        self.last_written_epoch = last_row.index
        self._index_offset = last_row.index + 1
        self.out.event("rebuilt_state", last_epoch=last_row.index, last_wall=last_row.wall_end.isoformat())
