"""The live loop: poll the inlet, feed the session, redraw the dashboard, until stopped.

The loop is the only blocking part of a night; it polls with a short timeout so the dashboard, the alarm's
fallback and the hook results stay live while no data comes. Ctrl-C (or :attr:`LiveLoop.stop`) ends it
cleanly: the held-back epoch is staged, files are flushed and the state is saved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streamstage.errors import StreamstageError
from streamstage.live.session import NightSession
from streamstage.lsl.inlet import SIGNAL_BACK, SIGNAL_LOST, LslInlet, StreamChunk, StreamEvent

POLL_S = 0.1


@dataclass
class LoopOptions:
    exit_after_lost_s: float | None = None
    """End the night when the stream has been gone this long (a finished replay); None: wait forever."""
    max_epochs: int | None = None
    """End after this many staged epochs (tests, demos)."""
    replay_clock: bool = False
    """Run the alarm on stream time (a replay with --start-clock) rather than on this computer's clock."""


class TruthReader:
    """Ground-truth stages from a replay's hypnogram Markers stream, fed to the session as they come."""

    def __init__(self, inlet: Any) -> None:
        self._inlet = inlet

    @classmethod
    def open(cls, name: str, timeout_s: float) -> TruthReader:
        import pylsl

        from streamstage.lsl.resolve import resolve_stream

        return cls(pylsl.StreamInlet(resolve_stream(name=name, type="Markers", timeout_s=timeout_s)))

    def drain(self, session: NightSession) -> None:
        markers, stamps = self._inlet.pull_chunk(timeout=0.0)
        for marker, stamp in zip(markers, stamps, strict=False):
            session.add_truth(float(stamp), str(marker[0]))


class LiveLoop:
    """Feed ``session`` from ``inlet``; ``on_refresh`` redraws the display (epochs reach the screen as every
    consumer gets them: through the session's sinks)."""

    def __init__(
        self,
        inlet: LslInlet,
        session: NightSession,
        options: LoopOptions | None = None,
        truth: TruthReader | None = None,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        self.inlet = inlet
        self.session = session
        self.options = options or LoopOptions()
        self.truth = truth
        self.on_refresh = on_refresh
        self.stop = threading.Event()
        self._lost_since: float | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set() and not self._finished():
                self._step()
        finally:
            self.session.close()

    def _finished(self) -> bool:
        if self.options.max_epochs is not None and self.session.staged_count >= self.options.max_epochs:
            return True
        limit = self.options.exit_after_lost_s
        return (
            limit is not None and self._lost_since is not None and time.monotonic() - self._lost_since > limit
        )

    def _step(self) -> None:
        item = self.inlet.poll(POLL_S)
        if self.truth is not None:
            self.truth.drain(self.session)
        if isinstance(item, StreamChunk):
            self._stage(item)
        elif isinstance(item, StreamEvent) and item.kind not in (SIGNAL_BACK, SIGNAL_LOST):
            self.session.on_stream_notice(item.kind, item.message)
        elif isinstance(item, StreamEvent):
            back = item.kind == SIGNAL_BACK
            self._lost_since = None if back else time.monotonic()
            self.session.on_signal(back, item.message, item.layout if item.layout_changed else None)
        elif self.inlet.lost and self._lost_since is None:
            self._lost_since = time.monotonic()
        self.session.tick(self._now())
        if self.on_refresh:
            self.on_refresh()

    def _stage(self, chunk: StreamChunk) -> None:
        """Stage one chunk; an unexpected failure costs that chunk (logged, shown), never the night."""
        try:
            self.session.on_chunk(chunk.samples, chunk.timestamps)
        except StreamstageError:
            raise  # an expected stop (the staged channel is gone) has its own clear message
        except Exception as error:
            self.session.record_error("chunk_error", error)

    def _now(self) -> datetime:
        stream_now = self.session.wall_now() if self.options.replay_clock else None
        return stream_now or datetime.now().astimezone()
