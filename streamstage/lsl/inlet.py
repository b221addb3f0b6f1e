"""Read an EEG stream from LSL all night, and keep reading it through dropouts and restarted bridges.

A headband goes out of Bluetooth range, a bridge crashes and is restarted, a laptop sleeps: the live loop
must say so (``signal_lost``), keep waiting, and pick the stream up again when it returns
(``signal_back``), possibly with another channel layout. liblsl's own recovery only accepts a stream with
the same channel count and waits 15 s before trying, so recovery is done here: the inlet is opened without
it, a stream counts as lost when it raises ``LostError`` or sends nothing for ``lost_after_s``, and a
background resolver watches for the same source id (or name) to come back.

Samples are pulled into one preallocated buffer and handed out as float64 in the stream's own units; time
stamps are mapped onto this machine's LSL clock (``proc_clocksync``), so gaps and restarts show in them
and :mod:`streamstage.lsl.timing` can put the samples on a regular grid.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamstage.errors import StreamError
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.resolve import resolve_stream

SIGNAL_LOST = "signal_lost"
SIGNAL_BACK = "signal_back"
_NUMPY_DTYPES = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
}
_WAIT_STEP_S = 0.01
"""How often an empty inlet is looked at again while a poll waits for data."""
_RESOLVE_EVERY_S = 0.25
"""How often the watch for a lost stream's return is consulted."""
_OPEN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class StreamChunk:
    """Samples as they came: ``(n, n_channels)`` float64 in the stream's units, with their time stamps."""

    samples: np.ndarray
    timestamps: np.ndarray
    """``(n,)`` float64: the source's time stamps, mapped onto this machine's LSL clock."""


@dataclass(frozen=True)
class StreamEvent:
    """The stream went away (``signal_lost``) or came back (``signal_back``)."""

    kind: str
    message: str
    layout: StreamLayout
    """The stream's layout now; after ``signal_back`` with ``layout_changed``, re-derive the channels."""
    layout_changed: bool = False


class LslInlet:
    """One EEG stream, pulled chunk by chunk with :meth:`poll`; reconnects by itself.

    Open it with :meth:`open` (which resolves the stream) or from a resolved ``pylsl.StreamInfo``.
    ``chunk_samples`` bounds a chunk (default: about a second of samples); ``buffer_s`` is how much liblsl
    keeps while the caller is busy.
    """

    def __init__(
        self, info: Any, lost_after_s: float = 5.0, chunk_samples: int | None = None, buffer_s: float = 360.0
    ) -> None:
        self.lost_after_s = lost_after_s
        self.chunk_samples = chunk_samples
        self.buffer_s = buffer_s
        self.lost = False
        self._inlet: Any = None
        self._watch: Any = None
        self._dead_uid = ""
        self._pending: deque[StreamChunk | StreamEvent] = deque()
        self._last_data_at = 0.0
        self._lost_at = 0.0
        self._next_watch_at = 0.0
        self._buffer = np.empty((0, 0))
        self.layout = self._connect(info)

    @classmethod
    def open(
        cls,
        name: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        timeout_s: float = 5.0,
        lost_after_s: float = 5.0,
        chunk_samples: int | None = None,
    ) -> LslInlet:
        """Resolve the stream (``type="EEG"`` when nothing is given) and open it, or raise StreamError."""
        return cls(resolve_stream(name, type, source_id, timeout_s), lost_after_s, chunk_samples)

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
        self._inlet = None
        self._watch = None

    def __enter__(self) -> LslInlet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _step(self, timeout_s: float) -> None:
        if self._inlet is not None:
            stamps = self._pull(timeout_s)
            if len(stamps):
                self._last_data_at = time.monotonic()
                if self.lost:
                    self._come_back(self.layout)
                samples = self._buffer[: len(stamps)].astype(np.float64)
                self._pending.append(StreamChunk(samples, stamps))
                return
            if not self.lost and time.monotonic() - self._last_data_at > self.lost_after_s:
                self._go_lost(f"no data from {self.layout.name!r} for {self.lost_after_s:g} s")
                return
        if self.lost:
            self._look_for_return()
        if not self._pending and self._inlet is None:
            time.sleep(timeout_s)

    def _pull(self, timeout_s: float) -> np.ndarray:
        """Timestamps of the samples pulled into the buffer: empty after ``timeout_s``, or when it broke."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                _, stamps = self._inlet.pull_chunk(
                    timeout=0.0, max_samples=len(self._buffer), dest_obj=self._buffer
                )
            except RuntimeError:  # pylsl's LostError and InternalError both derive from it
                self._dead_uid = self.layout.uid
                self._inlet = None
                if not self.lost:
                    self._go_lost(f"stream {self.layout.name!r} closed")
                return np.empty(0)
            if len(stamps) or time.monotonic() >= deadline:
                return np.asarray(stamps, dtype=np.float64)
            time.sleep(min(_WAIT_STEP_S, max(0.0, deadline - time.monotonic())))

    def _go_lost(self, reason: str) -> None:
        import pylsl

        self.lost = True
        self._lost_at = time.monotonic()
        self._next_watch_at = 0.0
        source_id = self.layout.source_id
        if source_id:
            self._watch = pylsl.ContinuousResolver(prop="source_id", value=source_id)
        else:
            self._watch = pylsl.ContinuousResolver(prop="name", value=self.layout.name)
        self._pending.append(StreamEvent(SIGNAL_LOST, f"signal lost: {reason}; waiting for it", self.layout))

    def _look_for_return(self) -> None:
        """Switch to a stream with the lost one's source id (or name) that is not the one that died."""
        now = time.monotonic()
        if self._watch is None or now < self._next_watch_at:
            return
        self._next_watch_at = now + _RESOLVE_EVERY_S
        current_uid = self.layout.uid if self._inlet is not None else self._dead_uid
        for info in self._watch.results():
            if info.uid() == current_uid:
                continue
            previous = self.layout
            try:
                layout = self._connect(info)
            except StreamError:
                continue  # gone again before it could be opened, or not numeric: keep watching
            self._come_back(previous, layout)
            return

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

    def _connect(self, info: Any) -> StreamLayout:
        """Open an inlet on a resolved stream and read its full description."""
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
        rows = self.chunk_samples or max(256, int(layout.sfreq_hz) + 1)
        self._buffer = np.empty((rows, layout.n_channels), dtype=_NUMPY_DTYPES[layout.channel_format])
        self._inlet = inlet
        self._last_data_at = time.monotonic()
        return layout
