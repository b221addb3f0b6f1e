"""One night, fed by any source of timestamped chunks: the live loop's heart, without the loop.

:class:`NightSession` takes raw chunks with their time stamps (from an LSL inlet), passes them through the
stream intake (:mod:`streamstage.signal.intake`: grid, units, montage, clipping), runs the staging pipeline
and hands every staged epoch to the night's sinks in one fan-out (:mod:`streamstage.sinks`). It keeps the
pipeline, the order of the night's decisions and its resume: after every epoch it saves its whole state
atomically, so a killed process resumes where it stood. Every second of the night reaches the signal path,
as data or as missing samples: what the grid cannot fill (a long outage, a clock reset, a reopened stream)
is bridged on the night's own time axis (:mod:`streamstage.live.timeline`), so later epochs keep their true
times.

It never lets one bad chunk end the night: a failure inside a sink is logged as an event and the night goes
on; only a stream whose staged channel is gone, or a night folder that cannot be written, stops it, with a
message saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from streamstage import STAGES, __version__
from streamstage.alarm import ClockMap
from streamstage.config import Settings
from streamstage.errors import ChannelError
from streamstage.live.resume import STATE_FORMAT, check_resumable, stream_identity
from streamstage.live.timeline import NightTimeline
from streamstage.lsl.meta import StreamLayout
from streamstage.model.checkpoint import StagingModel
from streamstage.output import NightWriter, WrittenEpoch, damaged_state
from streamstage.pipeline import EpochModel, StagingPipeline
from streamstage.records import StagedEpoch
from streamstage.signal.channels import Montage
from streamstage.signal.intake import IntakeBlock, IntakeOutput, StreamFormat, StreamIntake
from streamstage.signal.montage_choice import pick_montage
from streamstage.sinks import Delivery, NightSink, NightStart, SignalBlock, SinkFanout, night_sinks

log = logging.getLogger(__name__)
TRUTH_KEPT_S = 120.0
"""Seconds of ground-truth markers kept behind the newest epoch (a bounded memory)."""


def stream_format(layout: StreamLayout) -> StreamFormat:
    """What the intake needs to know of an LSL stream."""
    return StreamFormat(layout.labels, layout.units, layout.sfreq_hz, layout.physical_ranges)


def _sources(layout: StreamLayout, montage: Montage) -> tuple[str, ...]:
    """The staged derivations by their source channels' labels, e.g. ``("AF7-TP9",)``."""
    return tuple(
        layout.labels[d.positive] + ("" if d.reference is None else f"-{layout.labels[d.reference]}")
        for d in montage.derivations
    )


@dataclass
class SessionOptions:
    channels: tuple[str, ...] | None = None
    reference: str | None = None
    settings: Settings = field(default_factory=Settings)
    accept_new_source: bool = False
    """Resume (or reconnect) on a stream that is not the one the night started with."""
    now: Callable[[], float] | None = None
    """The computer's clock in seconds (default ``time.time``); tests inject one to skip an outage."""
    stager: Callable[[], EpochModel] | None = None
    """Where the model steps (default: a stager of this night's own); a lab gives each bed its seat in one
    batch of beds stepped together."""


class TruthBook:
    """Ground-truth stages from a replay's hypnogram stream, by start time; only the last minutes kept."""

    def __init__(self) -> None:
        self._starts_ms: dict[int, int] = {}

    def add(self, start_s: float, stage_name: str) -> None:
        if stage_name in STAGES:
            self._starts_ms[round(start_s * 1000)] = STAGES.index(stage_name)

    def stage_of(self, epoch: StagedEpoch) -> int | None:
        """The stage covering the middle of the epoch (stream clock), None without a truth stream."""
        if not self._starts_ms:
            return None
        middle_ms = (epoch.start_s + epoch.duration_s / 2) * 1000
        starts = [s for s in self._starts_ms if s <= middle_ms]
        stage = self._starts_ms[max(starts)] if starts else None
        for old in [s for s in self._starts_ms if s < (epoch.start_s - TRUTH_KEPT_S) * 1000]:
            del self._starts_ms[old]
        return stage


class NightSession:
    """Stage one stream for one night; see the module docstring.

    ``sinks`` are every consumer of the night's epochs, in the order they get them (default: the hypnogram,
    the events with their hooks and the alarm, from :func:`~streamstage.sinks.night_sinks`).
    """

    def __init__(
        self,
        model: StagingModel,
        layout: StreamLayout,
        writer: NightWriter,
        options: SessionOptions | None = None,
        sinks: Sequence[NightSink] | None = None,
    ) -> None:
        self.model = model
        self.writer = writer
        self.options = options or SessionOptions()
        self.settings = self.options.settings
        self.out = SinkFanout(writer, night_sinks(writer, self.settings) if sinks is None else sinks)
        self.journal = self.out.journal
        self.layout = layout
        self.intake = self._intake(layout)
        self._now = self.options.now or time.time
        self.timeline = NightTimeline(self._now)
        self.truth = TruthBook()
        self.pipeline: StagingPipeline | None = None
        self.clock: ClockMap | None = None
        self.last_time_s: float | None = None
        """Night time of the newest sample handed to the signal path."""
        self.last_written_epoch = -1
        self.staged_count = 0
        self._break_pending = False
        self._resumed_at_s: float | None = None
        self._continued: WrittenEpoch | None = None
        self._index_offset = 0
        self._units_warned = False

    @property
    def montage(self) -> Montage:
        return self.intake.montage

    # -- channels -------------------------------------------------------------------------------------
    def _montage(self, layout: StreamLayout) -> Montage:
        options = self.options
        return pick_montage(layout.labels, self.model.channels, options.channels, options.reference)

    def _intake(self, layout: StreamLayout, first_index: int = 0) -> StreamIntake:
        return StreamIntake(stream_format(layout), self._montage(layout), first_index=first_index)

    def refusal(self, layout: StreamLayout) -> str:
        """Why a stream that came back cannot continue this night ("" when it can): the staged channel must
        be derived from the same source channels at the same rate, never silently re-chosen."""
        if layout.sfreq_hz != self.layout.sfreq_hz:
            return f"at {layout.sfreq_hz:g} Hz, but the night runs at {self.layout.sfreq_hz:g} Hz"
        try:
            montage = self._montage(layout)
        except ChannelError as error:
            return f"without the staged channel: {error}"
        if _sources(layout, montage) != _sources(self.layout, self.montage):
            return (
                f"with channels that give {', '.join(_sources(layout, montage))}, not the night's "
                f"{', '.join(_sources(self.layout, self.montage))}"
            )
        return ""

    # -- input ----------------------------------------------------------------------------------------
    def on_chunk(self, samples: np.ndarray, timestamps: np.ndarray) -> list[StagedEpoch]:
        """Stage a raw chunk ``(n, n_stream_channels)`` in the stream's units; returns the new epochs."""
        return self._stage(self.intake.push(samples, timestamps))

    def _stage(self, taken: IntakeOutput) -> list[StagedEpoch]:
        for kind, message in taken.notices:
            self.journal.notice(kind, message)
        staged: list[StagedEpoch] = []
        for block in taken.blocks:
            if self.pipeline is None:
                assert block.times_s is not None
                self._start(float(block.times_s[0]))
            if block.new_segment or self._break_pending:
                self._break_pending = False
                assert block.times_s is not None
                arrived_s = float(block.times_s[-1] - block.times_s[0])
                staged += self._bridge(float(block.times_s[0]), arrived_s)
            staged += self._push(block)
        if staged:
            self.save()
        return staged

    def _push(self, block: IntakeBlock) -> list[StagedEpoch]:
        """Hand one block to the signal path and the sinks, and deliver the epochs it completed."""
        assert self.pipeline is not None and self.clock is not None
        signal = self.pipeline.signal
        first_index, night_start = signal.n_samples_in, self._night_next()
        if self._resumed_at_s is not None and block.times_s is not None:
            self._note_resume(block, night_start)
        staged = self.pipeline.push(block.derived_uv, block.missing)
        for provisional in self.pipeline.take_provisional():
            self.out.provisional(provisional)
        position = (first_index, signal.sfreq_in, self.clock.wall(signal.start_time_s))
        trace = signal.trace_uv
        self.out.block(
            SignalBlock.of(
                self.montage, self.layout.labels, block.source_uv, block.derived_uv, position, trace
            )
        )
        self.last_time_s = self._night_next() - 1.0 / self.pipeline.sfreq_in
        if block.times_s is not None:
            self.timeline.observe(float(block.times_s[-1]))
        return [self._deliver(epoch) for epoch in staged]

    def _night_next(self) -> float:
        """Night time of the next sample the signal path will take."""
        assert self.pipeline is not None
        signal = self.pipeline.signal
        return signal.start_time_s + signal.n_samples_in / signal.sfreq_in

    def _bridge(self, new_stream_s: float, arrived_s: float) -> list[StagedEpoch]:
        """A break the grid could not fill (long gap, clock reset, reopened stream): account for every
        second of it as missing samples, so later epochs keep their true time."""
        assert self.pipeline is not None
        night_next = self._night_next()
        expected = night_next - self.timeline.offset_s
        bridge = self.timeline.bridge(expected, new_stream_s, night_next, arrived_s)
        staged = self._fill_missing(round(bridge.gap_s * self.pipeline.sfreq_in))
        how = (
            "by the stream's clock"
            if bridge.measured_by == "stream"
            else f"by this computer's clock (the stream's clock jumped {bridge.stream_gap_s:+.0f} s)"
        )
        message = f"{bridge.gap_s:.0f} s without signal, measured {how}, marked missing"
        self.journal.event(
            "gap_bridged",
            gap_s=bridge.gap_s,
            stream_gap_s=bridge.stream_gap_s,
            measured_by=bridge.measured_by,
            stream_s=new_stream_s,
            message=message,
        )
        self.journal.tell(message)
        return staged

    def _fill_missing(self, n_samples: int) -> list[StagedEpoch]:
        """Push ``n_samples`` missing samples, one epoch's worth at a time (hours of gap stay small)."""
        assert self.pipeline is not None
        block_len = round(self.pipeline.signal.config.epoch_s * self.pipeline.sfreq_in)
        staged: list[StagedEpoch] = []
        while n_samples > 0:
            take = min(block_len, n_samples)
            staged += self._push(self.intake.gap(take))
            n_samples -= take
        return staged

    def _note_resume(self, block: IntakeBlock, night_start: float) -> None:
        """Once real samples arrive after a resume: how long the night was without them, said once."""
        first = block.first_real
        if first is None or self._resumed_at_s is None or self.pipeline is None or block.times_s is None:
            return
        gap_s = night_start + first / self.pipeline.sfreq_in - self._resumed_at_s
        message = f"resumed after {gap_s:.1f} s without data; that time is marked missing"
        from_s, to_s = self.timeline.last_stream_s, float(block.times_s[first])
        self.journal.event("resume_gap", from_s=from_s, to_s=to_s, gap_s=gap_s, message=message)
        self.journal.tell(message)
        self._resumed_at_s = None

    def on_signal(self, ok: bool, message: str, layout: StreamLayout | None = None) -> None:
        """The inlet lost the stream or got it back (maybe with another channel layout)."""
        self.journal.event("signal_back" if ok else "signal_lost", message=message)
        self.journal.tell(message)
        self.out.signal(ok, self.last_time_s)
        if ok and layout is not None and not layout.same_channels(self.layout):
            self._relayout(layout)

    def on_stream_notice(self, kind: str, message: str) -> None:
        """The inlet refused a stream that is not this night's, or saw a second one matching it."""
        self.journal.notice(kind, message)

    def _relayout(self, layout: StreamLayout) -> None:
        reason = self.refusal(layout)
        if reason:
            raise ChannelError(f"the stream came back {reason}")
        joined_at = 0 if self.pipeline is None else self.pipeline.signal.n_samples_in
        self.layout, self.intake = layout, self._intake(layout, joined_at)  # units are read again
        self._break_pending = True
        self.journal.event("layout_changed", labels=list(layout.labels), sfreq=layout.sfreq_hz)

    def tick(self, now: datetime) -> None:
        """Let timers run even when no epoch arrives (the alarm's fallback, hook outcomes)."""
        self.out.tick(now)

    def add_truth(self, start_s: float, stage_name: str) -> None:
        """A ground-truth marker (from a replay's hypnogram stream) starting at ``start_s`` (stream clock)."""
        self.truth.add(start_s, stage_name)

    def record_error(self, kind: str, error: BaseException) -> None:
        """A failure the night survives (a bad chunk): logged, recorded and shown."""
        self.journal.error(kind, error)

    def wall_now(self) -> datetime | None:
        """Stream time of the latest sample, as wall-clock time."""
        if self.clock is None or self.last_time_s is None:
            return None
        return self.clock.wall(self.last_time_s)

    # -- start and epochs ------------------------------------------------------------------------------
    def _start(self, first_time_s: float) -> None:
        continued = self._continued
        start_s = first_time_s if continued is None else continued.end_s
        self.pipeline = self._pipeline(start_s)
        if continued is not None:
            self.clock = ClockMap(continued.end_s, continued.wall_end)
            self.timeline.last_wall_s = continued.wall_end.timestamp()
            self._break_pending = True  # the time since the last row is bridged like any break
        elif self.settings.start_clock:
            self.clock = ClockMap.from_start_clock(self.settings.start_clock, first_time_s)
        else:
            self.clock = ClockMap.live(first_time_s, datetime.fromtimestamp(self._now()).astimezone())
        self._start_sinks()
        self.journal.event(
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

    def _pipeline(self, start_s: float = 0.0) -> StagingPipeline:
        """The night's pipeline; the intake (replaced when the stream comes back with a new layout) says
        which epochs a source channel clipped."""
        return StagingPipeline(
            self.model,
            self.intake.grid_hz,
            start_time_s=start_s,
            source_clipped=lambda i: self.intake.clipped(i),
            stager=None if self.options.stager is None else self.options.stager(),
        )

    def _start_sinks(self) -> None:
        assert self.clock is not None
        self.out.start(NightStart(self.clock, self.layout.name, self.layout.sfreq_hz, self.montage.labels))

    def _deliver(self, staged: StagedEpoch) -> StagedEpoch:
        """Hand an epoch to every sink, once: the alarm, events and dashboard see it in night time; the
        hypnogram and the LSL outlets in the stream clock of the segment it starts in."""
        epoch = replace(staged, index=staged.index + self._index_offset)
        self.staged_count += 1
        if epoch.index <= self.last_written_epoch:
            return epoch  # already on disk before a crash: keep what was written
        assert self.clock is not None and self.pipeline is not None
        self._warn_units(epoch)
        outward = replace(epoch, start_s=self.timeline.to_stream(epoch.start_s))
        elapsed_s = epoch.end_s - self.pipeline.signal.start_time_s
        wall_end = self.clock.wall(epoch.end_s)
        self.out.epoch(Delivery(epoch, outward, wall_end, elapsed_s, self.truth.stage_of(outward)))
        self.last_written_epoch = epoch.index
        return epoch

    def _warn_units(self, epoch: StagedEpoch) -> None:
        if epoch.quality == "units" and not self._units_warned:
            self._units_warned = True
            self.journal.notice(
                "units_warning",
                "the signal is far too small for EEG in µV: is the stream in volts or millivolts? "
                "check the unit in the stream's channel metadata",
                epoch=epoch.index,
            )

    # -- housekeeping -----------------------------------------------------------------------------------
    def close(self) -> list[StagedEpoch]:
        """End of the night: release the last held-back epoch, flush the sinks, save the state."""
        staged = self._stage(self.intake.flush())
        if self.pipeline is not None:
            staged += [self._deliver(epoch) for epoch in self.pipeline.finish()]
            self.save()
        self.out.close()
        self.journal.event("night_ended", epochs=self.last_written_epoch + 1)
        return staged

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.pipeline is not None and self.clock is not None
        return {
            "format": STATE_FORMAT,
            "version": __version__,
            "stream": stream_identity(self.layout),
            "channels": list(self.montage.labels),
            "pipeline": self.pipeline.state_dict(),
            "intake": self.intake.state_dict(),
            "timeline": self.timeline.state_dict(),
            "clock": self.clock.to_dict(),
            "sinks": self.out.state_dict(),
            "last_time_s": self.last_time_s,
            "last_written_epoch": self.last_written_epoch,
            "index_offset": self._index_offset,
        }

    def save(self) -> None:
        """Commit the sinks' files, then the state that follows them."""
        self.out.commit()
        if self.pipeline is not None and self.intake.units_fixed:
            self.writer.save_state(self.state_dict())

    def resume(self, state: dict[str, Any], last_row: WrittenEpoch | None = None) -> None:
        """Continue a saved night: same model, same channels; the time since the save becomes a gap.

        ``last_row`` is the newest epoch in the hypnogram: a crash after its row was written but before the
        state that follows it was saved must not write that epoch twice.
        """
        check_resumable(state, self.layout, self.montage, self.options.accept_new_source)
        try:
            pipeline = self._pipeline()
            pipeline.load_state_dict(state["pipeline"])  # refuses a night staged with another model
            self.intake.load_state_dict(state["intake"])
            self.clock = ClockMap.from_dict(state["clock"])
            self.timeline.load_state_dict(state["timeline"])
            self.pipeline = pipeline
            self._start_sinks()
            self.out.load_state_dict(state["sinks"])
            self.last_time_s = float(state["last_time_s"])
            self.last_written_epoch = int(state["last_written_epoch"])
            self._index_offset = int(state["index_offset"])
        except (KeyError, TypeError, ValueError) as error:
            raise damaged_state(self.writer.state_path, error) from error
        if last_row is not None:
            self.last_written_epoch = max(self.last_written_epoch, last_row.index)
        self._resumed_at_s = self._night_next()
        self.journal.event(
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
        self.journal.event(
            "rebuilt_state", last_epoch=last_row.index, last_wall=last_row.wall_end.isoformat()
        )
