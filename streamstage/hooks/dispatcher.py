"""Runs hooks off the staging thread: one worker and one bounded queue per hook.

:meth:`HookDispatcher.dispatch` only appends to queues, so staging is never delayed by a slow, failing or
hanging hook, and one stuck hook does not hold back the others. Each hook sees its events in order. A
queue that fills up (a hook far behind) drops its oldest ``epoch`` event first, then its oldest event other
than ``alarm``, with a warning, instead of growing through the night.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamstage.hooks.events import Event
from streamstage.hooks.runners import Hook, Outcome

_STOP_GRACE_S = 1.0
"""How long a stopped hook's worker gets to report the outcome of the run it was in."""

log = logging.getLogger("streamstage.hooks")

RESULT_STATUSES: tuple[str, ...] = ("ok", "failed", "timed_out", "dropped")


@dataclass(frozen=True)
class HookResult:
    """How one delivery went, for the dashboard and events.jsonl."""

    hook: str
    event: str
    epoch: int | None
    status: str
    detail: str
    attempts: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "hook_result",
            "hook": self.hook,
            "for_event": self.event,
            "epoch": self.epoch,
            "status": self.status,
            "detail": self.detail,
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
        }


class HookDispatcher:
    """``dispatch(event)`` returns at once; collect results with :meth:`drain_results`, totals in
    :attr:`counts`; :meth:`close` delivers what is queued within a timeout and stops the workers."""

    def __init__(self, hooks: Sequence[Hook], max_pending: int = 64, max_results: int = 1000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._results: deque[HookResult] = deque(maxlen=max_results)
        self._counts: Counter[str] = Counter({status: 0 for status in RESULT_STATUSES})
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [_HookWorker(hook, max_pending, self._report) for hook in hooks]

    def dispatch(self, event: Event) -> None:
        if self._closed:
            raise RuntimeError("dispatch() after close()")
        for worker in self._workers:
            if worker.hook.wants(event):
                worker.put(event)

    def drain_results(self) -> list[HookResult]:
        """Results since the last call (the oldest are forgotten beyond ``max_results``; counts are not)."""
        with self._lock:
            results = list(self._results)
            self._results.clear()
        return results

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def close(self, timeout_s: float = 5.0) -> list[HookResult]:
        """Deliver what is queued for up to ``timeout_s``, report the rest as dropped, return the results."""
        self._closed = True
        deadline = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.finish()
        for worker in self._workers:
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.abandon("streamstage stopped before this hook's turn")
                worker.hook.stop()
                worker.thread.join(_STOP_GRACE_S)
        return self.drain_results()

    def _report(self, result: HookResult) -> None:
        with self._lock:
            self._results.append(result)
            self._counts[result.status] += 1
        if result.status == "ok":
            log.debug("hook %s <- %s: %s", result.hook, result.event, result.detail)
        else:
            log.warning("hook %s <- %s %s: %s", result.hook, result.event, result.status, result.detail)


class _HookWorker:
    """One hook's queue and thread."""

    def __init__(self, hook: Hook, max_pending: int, report: Callable[[HookResult], None]) -> None:
        self.hook = hook
        self._max_pending = max_pending
        self._report = report
        self._pending: deque[Event] = deque()
        self._ready = threading.Condition()
        self._finishing = False
        self.thread = threading.Thread(target=self._run, name=f"hook-worker-{hook.name}", daemon=True)
        self.thread.start()

    def put(self, event: Event) -> None:
        with self._ready:
            dropped = self._make_room() if len(self._pending) >= self._max_pending else None
            self._pending.append(event)
            self._ready.notify()
        if dropped is not None:
            self._report(self._dropped(dropped, f"hook fell {self._max_pending} events behind"))

    def finish(self) -> None:
        with self._ready:
            self._finishing = True
            self._ready.notify()

    def abandon(self, why: str) -> None:
        with self._ready:
            left = list(self._pending)
            self._pending.clear()
        for event in left:
            self._report(self._dropped(event, why))

    def _make_room(self) -> Event:
        """Drop the oldest ``epoch`` event, else the oldest that is not an ``alarm``, else the oldest."""
        for droppable in (lambda event: event.name == "epoch", lambda event: event.name != "alarm"):
            for position, event in enumerate(self._pending):
                if droppable(event):
                    del self._pending[position]
                    return event
        return self._pending.popleft()

    def _dropped(self, event: Event, why: str) -> HookResult:
        return HookResult(self.hook.name, event.name, event.epoch, "dropped", why)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._finishing:
                    self._ready.wait()
                if not self._pending:
                    return
                event = self._pending.popleft()
            started = time.monotonic()
            try:
                outcome = self.hook.deliver(event)
            except Exception as error:  # a bug in a hook must not end its worker
                outcome = Outcome("failed", f"raised {error!r}")
            elapsed_s = time.monotonic() - started
            self._report(HookResult(self.hook.name, event.name, event.epoch, *outcome, duration_s=elapsed_s))
