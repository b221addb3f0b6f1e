"""Read an EEG stream from LSL all night, and keep reading it through dropouts and restarted bridges.

A headband goes out of Bluetooth range, a bridge crashes and is restarted, a laptop sleeps: the live loop
must say so (``signal_lost``), keep waiting, and pick the stream up again when it returns
(``signal_back``), possibly with another channel layout. liblsl's own recovery only accepts a stream with
the same channel count and waits 15 s before trying, so recovery is done here: the inlet is opened without
it, a stream counts as lost when it raises ``LostError`` or sends nothing for ``lost_after_s``, and a
background resolver watches for the same source id (or name) to come back.

Only *the* night's stream may come back: the same name, type, source id and host (its uid changes with
every restart of the sender), not a stream that was already there beside it (two mne-lsl players share a
source id), and one whose staged channel is still the same (the caller's ``refusal`` says). Anything else
is refused with a ``source_refused`` event and the wait goes on; ``accept_new_source`` lifts the identity
check (never the channel check). A second stream matching the night's is reported when it appears.

Samples are pulled by a reader thread of the inlet's own (liblsl's waits and copies release the GIL, so
they overlap with staging the previous chunk) into one preallocated buffer, and handed out in order as
float64 in the stream's own units through a queue of about 30 s, at least 2 chunks (a consumer further
behind leaves the rest in liblsl's bounded buffer, as without the thread). Time stamps are mapped onto
this machine's LSL clock (``proc_clocksync``), so gaps and restarts show in them and
:mod:`streamstage.signal.timing` can put the samples on a regular grid.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamstage.errors import StreamError
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.resolve import resolve_stream, xpath_literal

SIGNAL_LOST = "signal_lost"
SIGNAL_BACK = "signal_back"
SOURCE_REFUSED = "source_refused"
STREAM_RIVAL = "stream_rival"
IDENTITY: tuple[str, ...] = ("name", "type", "source_id", "hostname")
"""What makes a stream the night's stream, as far as LSL can tell (labels and rate: ``refusal``)."""
_NUMPY_DTYPES = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}
_WAIT_STEP_S = 0.01
"""How often the reader looks at an empty inlet again (what arrived meanwhile makes one chunk)."""
_CATCH_UP_S = 300.0
"""The default bound of a chunk, in seconds of the stream (see :class:`LslInlet`)."""
_QUEUED_S = 30.0
"""About how much of the stream (at least 2 chunks) the reader may pull ahead of the consumer; beyond, the
backlog waits in liblsl's buffer. A few chunks would do for the data, but then a consumer catching up
waits on a wake-up of the reader at nearly every chunk, which a busy machine makes slow."""
_RESOLVE_EVERY_S = 0.25
"""How often the watch for a lost stream's return is consulted."""
_OPEN_TIMEOUT_S = 5.0
_RIVALS_EVERY_S = 2.0
"""How often, while the stream is up, the watch for other streams matching it is consulted."""


@dataclass(frozen=True)
class StreamChunk:
    """Samples as they came: ``(n, n_channels)`` float64 in the stream's units, with their time stamps."""

    samples: np.ndarray
    timestamps: np.ndarray
    """``(n,)`` float64: the source's time stamps, mapped onto this machine's LSL clock."""


@dataclass(frozen=True)
class StreamEvent:
    """The stream went away (``signal_lost``), came back (``signal_back``), another one was refused
    (``source_refused``) or another one matching it appeared (``stream_rival``)."""

    kind: str
    message: str
    layout: StreamLayout
    """The stream's layout now; after ``signal_back`` with ``layout_changed``, re-derive the channels."""
    layout_changed: bool = False


class _Reader:
    """Pulls one pylsl inlet in a thread of its own: chunks of up to ``rows`` samples, in order, in
    :attr:`chunks`, then the error that ended it (pylsl's ``LostError`` when the stream closed)."""

    def __init__(
        self, inlet: Any, rows: int, n_channels: int, dtype: type[np.generic], queued_chunks: int
    ) -> None:
        self.chunks: queue.Queue[StreamChunk | Exception] = queue.Queue(maxsize=queued_chunks)
        self._stop = threading.Event()
        buffer = np.empty((rows, n_channels), dtype=dtype)
        self._thread = threading.Thread(
            target=self._run, args=(inlet, buffer), name="streamstage-lsl-reader", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop pulling (within one wait step); what is queued stays readable."""
        self._stop.set()

    def _run(self, inlet: Any, buffer: np.ndarray) -> None:
        # pylsl >= 1.18 can hand the stamps back as an array: no list of floats to build and convert back
        as_array = {"as_numpy": True} if "as_numpy" in inspect.signature(inlet.pull_chunk).parameters else {}
        try:
            while not self._stop.is_set():
                _, stamps = inlet.pull_chunk(
                    timeout=0.0, max_samples=len(buffer), dest_obj=buffer, **as_array
                )
                if not len(stamps):
                    self._stop.wait(_WAIT_STEP_S)
                    continue
                n = len(stamps)
                self._put(StreamChunk(buffer[:n].astype(np.float64), np.asarray(stamps, dtype=np.float64)))
        except Exception as error:  # the consumer handles it (a lost stream) or raises it: never silent
            self._put(error)

    def _put(self, item: StreamChunk | Exception) -> None:
        while not self._stop.is_set():
            try:
                self.chunks.put(item, timeout=_WAIT_STEP_S)
                return
            except queue.Full:
                continue


class LslInlet:
    """One EEG stream, pulled chunk by chunk with :meth:`poll`; reconnects by itself.

    Open it with :meth:`open` (which resolves the stream) or from a resolved ``pylsl.StreamInfo``.
    ``chunk_samples`` bounds a chunk (default: 5 min of samples, which only a backlog fills: a stream that
    keeps up comes in what arrived since the last look, ~10 ms; a consumer catching up pays the per-chunk
    costs of the signal path and the night's (its state saved after every chunk that staged an epoch) once
    per 10 epochs rather than once per epoch: a night replayed at maximum speed stages 2-3x faster with
    its folder in memory than with 30-s chunks); ``buffer_s`` is how much liblsl
    keeps while the caller is busy.
    """

    def __init__(
        self,
        info: Any,
        lost_after_s: float = 5.0,
        chunk_samples: int | None = None,
        buffer_s: float = 360.0,
        accept_new_source: bool = False,
    ) -> None:
        self.lost_after_s = lost_after_s
        self.chunk_samples = chunk_samples
        self.buffer_s = buffer_s
        self.accept_new_source = accept_new_source
        self.refusal: Callable[[StreamLayout], str] | None = None
        """Why a returning stream cannot continue the night ("" when it can); set by the night."""
        self.lost = False
        self._inlet: Any = None
        self._reader: _Reader | None = None
        self._watch: Any = None
        self._rivals_watch: Any = None
        self._rivals: set[str] = set()
        self._refused: set[str] = set()
        self._dead_uid = ""
        self._pending: deque[StreamChunk | StreamEvent] = deque()
        self._last_data_at = 0.0
        self._lost_at = 0.0
        self._next_watch_at = 0.0
        self._next_rivals_at = 0.0
        self.layout = self._adopt(*self._open(info))
        self.identity = self.layout
        """The stream the night started on: what a returning stream is compared with."""

    @classmethod
    def open(
        cls,
        name: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        timeout_s: float = 5.0,
        lost_after_s: float = 5.0,
        chunk_samples: int | None = None,
        accept_new_source: bool = False,
        buffer_s: float = 360.0,
    ) -> LslInlet:
        """Resolve the stream (an EEG type when nothing is given) and open it, or raise StreamError."""
        info = resolve_stream(name, type, source_id, timeout_s)
        return cls(info, lost_after_s, chunk_samples, buffer_s, accept_new_source)

    def poll(self, timeout_s: float = 0.2) -> StreamChunk | StreamEvent | None:
        """The next chunk or event, waiting up to ``timeout_s`` for data; None when there was none."""
        if not self._pending:
            self._step(timeout_s)
        return self._pending.popleft() if self._pending else None

    def __iter__(self) -> Iterator[StreamChunk | StreamEvent]:
        """Chunks and events until :meth:`close` (stop with Ctrl-C or by closing from another thread)."""
        while self._inlet is not None or self._watch is not None:
            item = self.poll()
            if item is not None:
                yield item

    def close(self) -> None:
        """Let go of the stream and of the watch for its return."""
        self._stop_reading()
        self._inlet = None
        self._watch = None
        self._rivals_watch = None

    def __enter__(self) -> LslInlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _step(self, timeout_s: float) -> None:
        if self._inlet is not None:
            chunk = self._next_chunk(timeout_s)
            if chunk is not None:
                self._last_data_at = time.monotonic()
                if self.lost:
                    self._come_back(self.layout)
                self._pending.append(chunk)
                return
            if not self.lost and time.monotonic() - self._last_data_at > self.lost_after_s:
                self._go_lost(f"no data from {self.layout.name!r} for {self.lost_after_s:g} s")
                return
            if not self.lost:
                self._look_for_rivals()
        if self.lost:
            self._look_for_return()
        if not self._pending and self._inlet is None:
            time.sleep(timeout_s)

    def _next_chunk(self, timeout_s: float) -> StreamChunk | None:
        """The reader's next chunk, waiting up to ``timeout_s``; None after that, or when the stream broke."""
        reader = self._reader  # close() may drop it from another thread meanwhile
        if reader is None:
            return None
        try:
            item = reader.chunks.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(item, StreamChunk):
            return item
        if not isinstance(item, RuntimeError):  # pylsl's LostError and InternalError both derive from it
            raise item
        self._stop_reading()
        self._dead_uid = self.layout.uid
        self._inlet = None
        if not self.lost:
            self._go_lost(f"stream {self.layout.name!r} closed")
        return None

    def _stop_reading(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def _watch_for_identity(self) -> Any:
        """A resolver for streams that may be the night's: by source id (or name), or any when accepted."""
        import pylsl

        if self.accept_new_source:
            return pylsl.ContinuousResolver(pred=f"type={xpath_literal(self.identity.type)}")
        if self.identity.source_id:
            return pylsl.ContinuousResolver(prop="source_id", value=self.identity.source_id)
        return pylsl.ContinuousResolver(prop="name", value=self.identity.name)

    def _look_for_rivals(self) -> None:
        """Note (once each) other streams that look like the night's while it is up: never its successor."""
        now = time.monotonic()
        if now < self._next_rivals_at:
            return
        self._next_rivals_at = now + _RIVALS_EVERY_S
        if self._rivals_watch is None:
            self._rivals_watch = self._watch_for_identity()
        for info in self._rivals_watch.results():
            uid = info.uid()
            if uid == self.layout.uid or uid in self._rivals:
                continue
            self._rivals.add(uid)
            message = (
                f"another stream also matches this night's: {StreamLayout.from_info(info).describe()}; "
                "it will not be taken for this night's stream"
            )
            self._pending.append(StreamEvent(STREAM_RIVAL, message, self.layout))

    def _go_lost(self, reason: str) -> None:
        self.lost = True
        self._lost_at = time.monotonic()
        self._next_watch_at = 0.0
        self._watch = self._rivals_watch or self._watch_for_identity()
        self._rivals_watch = None
        self._pending.append(StreamEvent(SIGNAL_LOST, f"signal lost: {reason}; waiting for it", self.layout))

    def _look_for_return(self) -> None:
        """Switch to a stream that is the night's (see the module docstring) and not the one that died."""
        now = time.monotonic()
        if self._watch is None or now < self._next_watch_at:
            return
        self._next_watch_at = now + _RESOLVE_EVERY_S
        current_uid = self.layout.uid if self._inlet is not None else self._dead_uid
        for info in self._watch.results():
            uid = info.uid()
            if uid == current_uid or uid in self._refused:
                continue
            try:
                inlet, layout = self._open(info)
            except StreamError:
                continue  # gone again before it could be opened, or not numeric: keep watching
            reason = self._refusal(layout)
            if reason:
                self._refused.add(uid)
                message = f"stream {layout.describe()} refused: {reason}; still waiting for this night's"
                self._pending.append(StreamEvent(SOURCE_REFUSED, message, self.layout))
                continue
            previous = self.layout
            self._come_back(previous, self._adopt(inlet, layout))
            return

    def _refusal(self, layout: StreamLayout) -> str:
        """Why ``layout`` is not the night's stream, or ""."""
        if not self.accept_new_source:
            if layout.uid in self._rivals:
                return (
                    "it was running beside the night's stream all along (pass --accept-new-source to allow)"
                )
            differs = [key for key in IDENTITY if getattr(layout, key) != getattr(self.identity, key)]
            if differs:
                changes = ", ".join(
                    f"{key} {getattr(layout, key)!r} instead of {getattr(self.identity, key)!r}"
                    for key in differs
                )
                return f"it has {changes} (pass --accept-new-source if it is the same recording)"
        return self.refusal(layout) if self.refusal else ""

    def _come_back(self, previous: StreamLayout, layout: StreamLayout | None = None) -> None:
        self.lost = False
        self._watch = None
        self._last_data_at = time.monotonic()
        self.layout = layout or previous
        changed = not previous.same_channels(self.layout)
        message = f"signal back after {time.monotonic() - self._lost_at:.0f} s"
        if changed:
            message += (
                f"; the stream now has {self.layout.n_channels} channels ({', '.join(self.layout.labels)}) "
                f"at {self.layout.sfreq_hz:g} Hz"
            )
        self._pending.append(StreamEvent(SIGNAL_BACK, message, self.layout, changed))

    def _open(self, info: Any) -> tuple[Any, StreamLayout]:
        """Open an inlet on a resolved stream and read its full description (nothing adopted yet)."""
        import pylsl

        try:
            inlet = pylsl.StreamInlet(
                info, max_buflen=round(self.buffer_s), recover=False, processing_flags=pylsl.proc_clocksync
            )
            layout = StreamLayout.from_info(inlet.info(_OPEN_TIMEOUT_S))
            inlet.open_stream(_OPEN_TIMEOUT_S)
        except RuntimeError as error:  # pylsl's TimeoutError and LostError both derive from it
            raise StreamError(
                f"found stream {info.name()!r} but could not open it ({error}); retry."
            ) from error
        if layout.channel_format not in _NUMPY_DTYPES:
            raise StreamError(
                f"stream {layout.name!r} carries {layout.channel_format} values, not samples; "
                "pick an EEG stream with --name, --type or --source-id."
            )
        return inlet, layout

    def _adopt(self, inlet: Any, layout: StreamLayout) -> StreamLayout:
        """Read ``inlet`` from now on; what the previous one still held is dropped with it."""
        rows = self.chunk_samples or max(256, math.ceil(_CATCH_UP_S * layout.sfreq_hz))
        self._stop_reading()
        queued = max(2, math.ceil(_QUEUED_S * layout.sfreq_hz / rows))
        dtype = _NUMPY_DTYPES[layout.channel_format]
        self._reader = _Reader(inlet, rows, layout.n_channels, dtype, queued)
        self._inlet = inlet
        self._last_data_at = time.monotonic()
        return layout
