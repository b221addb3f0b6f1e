"""The one way a staged epoch reaches its consumers: every sink speaks :class:`NightSink`, and the night's
:class:`SinkFanout` hands each event of the night to all of them, in the order they were registered.

A sink that fails is logged and the night goes on, with one exception: a night folder that cannot be
written (:class:`OutputError`) ends it, since nothing the night did from then on would be kept. What goes
into ``events.jsonl`` is decided by the sink whose decision it is (the event detector its events, the alarm
its decisions), through the night's :class:`Journal`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from streamstage.alarm import ClockMap
from streamstage.errors import OutputError
from streamstage.output import NightWriter
from streamstage.records import ProvisionalStage, StagedEpoch
from streamstage.signal.channels import Montage
from streamstage.signal.unit_choice import staged_sources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One staged epoch as every sink gets it."""

    epoch: StagedEpoch
    """In night time (the alarm, the events and the dashboard count from the night's start)."""
    outward: StagedEpoch
    """In the stream's clock (the hypnogram and the LSL outlets, so they line up with the source)."""
    wall_end: datetime
    """Wall-clock time of the epoch's end."""
    elapsed_s: float
    """Seconds of night staged when this epoch ended."""
    truth: int | None = None
    """The ground-truth stage of the epoch, where a truth stream is read (a replay's hypnogram)."""


@dataclass(frozen=True)
class NightStart:
    """What every sink may know once the night starts (or is resumed)."""

    clock: ClockMap
    stream_name: str
    sfreq_hz: float
    channels: tuple[str, ...]
    """The staged derivations, e.g. ``("AF7-TP9",)``."""


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
    trace_uv: np.ndarray | None = None
    """The last seconds of the staged channel after the filter (for a live scope), once this block is in."""

    @classmethod
    def of(
        cls,
        montage: Montage,
        stream_labels: tuple[str, ...],
        raw_uv: np.ndarray | None,
        derived_uv: np.ndarray,
        position: tuple[int, float, datetime],
        trace_uv: np.ndarray | None = None,
    ) -> SignalBlock:
        """A block from a chunk's source samples (None: a bridged gap) and its derived channels, at
        ``position`` = (first index, rate, wall time of sample 0)."""
        sources, own, labels = recorded_channels(montage, stream_labels)
        raw = np.full((len(derived_uv), len(sources)), np.nan) if raw_uv is None else raw_uv[:, sources]
        return cls(*position, labels, np.hstack([raw, derived_uv[:, own]]), trace_uv)


def recorded_channels(
    montage: Montage, stream_labels: tuple[str, ...]
) -> tuple[list[int], list[int], tuple[str, ...]]:
    """What a raw recording keeps: the stream columns the montage reads, the derivations that are not one
    of them (those with a reference), and the labels of both."""
    sources = staged_sources(montage)
    own = [k for k, d in enumerate(montage.derivations) if d.reference is not None]
    return sources, own, (*(stream_labels[i] for i in sources), *(montage.labels[k] for k in own))


class NightSink:
    """A consumer of the night. Every hook is optional (a no-op here); a sink overrides what it needs.

    ``name`` keys its state in the night's saved state, for a sink that keeps one across a resume.
    """

    name = ""

    def start(self, night: NightStart, journal: Journal) -> None:
        """The night's clock is known (or restored): what needs wall time can run."""

    def on_block(self, block: SignalBlock) -> None:
        """Signal about to be staged (only the raw recording wants it)."""

    def on_epoch(self, delivery: Delivery) -> None:
        """A staged epoch (already on disk when the hypnogram sink is registered first)."""

    def on_provisional(self, provisional: ProvisionalStage) -> None:
        """A provisional stage of the epoch in progress (a raw model, every few seconds)."""

    def on_signal(self, ok: bool, time_s: float | None) -> None:
        """The stream was lost or came back, at night time ``time_s`` (None: before any sample)."""

    def on_notice(self, message: str) -> None:
        """Something the user should be told (a gap, a unit notice, a failed hook)."""

    def tick(self, now: datetime) -> None:
        """Called between chunks, with or without an epoch: timers (the alarm's fallback, hook results)."""

    def commit(self) -> None:
        """The night's state is saved next (after each chunk that staged epochs): write out what is held
        for them, once for the chunk however many epochs it staged."""

    def close(self) -> None:
        """End of the night: flush."""

    def state_dict(self) -> dict[str, Any] | None:
        """What must survive a resume (None: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` gave."""


class Journal:
    """The night's record (``events.jsonl``) and its notices to the user, shared by the session and sinks."""

    def __init__(self, writer: NightWriter, tell: Callable[[str], None]) -> None:
        self.writer = writer
        self.tell = tell
        """Show a line to the user (every sink's :meth:`NightSink.on_notice`), without journalling it."""

    def event(self, name: str, **fields: Any) -> None:
        """Write one event line; a failure to write it is an error the night survives, unless the folder
        itself is gone (:class:`OutputError`)."""
        try:
            self.writer.write_event(name, **fields)
        except OutputError:
            raise
        except Exception as error:
            self.error("journal_error", error)

    def record(self, record: dict[str, Any]) -> None:
        """Write a record that already carries its ``event`` name (a hook result, an alarm decision)."""
        try:
            self.writer.write_record(record)
        except OutputError:
            raise
        except Exception as error:
            self.error("journal_error", error)

    def notice(self, name: str, message: str, **fields: Any) -> None:
        """Something the user should know: logged, recorded and shown by every sink that shows things."""
        log.warning(message)
        self.event(name, message=message, **fields)
        self.tell(message)

    def error(self, kind: str, error: BaseException) -> None:
        """A failure the night survives: to the log, events.jsonl (if writable) and the display."""
        log.error("%s: %s", kind, error, exc_info=error)
        self.tell(f"{kind}: {error}")
        try:
            self.writer.write_event(kind, error=repr(error), traceback=traceback.format_exception(error)[-3:])
        except Exception:
            log.exception("events.jsonl is not writable")


class SinkFanout:
    """Every sink of one night, in one list: each event of the night goes to all of them, guarded."""

    def __init__(self, writer: NightWriter, sinks: Sequence[NightSink]) -> None:
        self.sinks = tuple(sinks)
        names = [sink.name for sink in self.sinks if sink.name]
        if len(names) != len(set(names)):
            raise ValueError(f"two sinks share a name: {names}")
        self.journal = Journal(writer, self._tell)

    def _tell(self, message: str) -> None:
        for sink in self.sinks:
            self._guarded(sink.on_notice, message, report=False)

    def _guarded(self, action: Callable[..., None], *args: Any, report: bool = True) -> None:
        try:
            action(*args)
        except OutputError:
            raise  # the night folder cannot be written: nothing the night does from now on would be kept
        except Exception as error:  # a sink must never end the night
            if report:
                self.journal.error("sink_error", error)
            else:
                log.exception("a sink failed to show a notice")

    def start(self, night: NightStart) -> None:
        for sink in self.sinks:
            self._guarded(sink.start, night, self.journal)

    def block(self, block: SignalBlock) -> None:
        for sink in self.sinks:
            self._guarded(sink.on_block, block)

    def epoch(self, delivery: Delivery) -> None:
        for sink in self.sinks:
            self._guarded(sink.on_epoch, delivery)

    def provisional(self, provisional: ProvisionalStage) -> None:
        for sink in self.sinks:
            self._guarded(sink.on_provisional, provisional)

    def signal(self, ok: bool, time_s: float | None) -> None:
        for sink in self.sinks:
            self._guarded(sink.on_signal, ok, time_s)

    def tick(self, now: datetime) -> None:
        for sink in self.sinks:
            self._guarded(sink.tick, now)

    def commit(self) -> None:
        for sink in self.sinks:
            self._guarded(sink.commit)

    def close(self) -> None:
        for sink in self.sinks:
            self._guarded(sink.close)

    def state_dict(self) -> dict[str, Any]:
        states = {sink.name: sink.state_dict() for sink in self.sinks if sink.name}
        return {name: state for name, state in states.items() if state is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Each named sink takes its part (one the saved night did not have starts afresh)."""
        for sink in self.sinks:
            if sink.name and sink.name in state:
                sink.load_state_dict(state[sink.name])
