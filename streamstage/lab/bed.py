"""One bed of a lab: its night (:func:`streamstage.night.assemble_night`: inlet, session, sinks, folder) run
in a thread of its own, so a bed that stalls, loses its stream or fails ends alone and never holds up the
others; what it is doing is kept for the overview (:class:`~streamstage.dashboard.lab_panel.BedView`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from streamstage.dashboard import AlarmStatus, DashboardState
from streamstage.dashboard.lab_panel import BedView
from streamstage.errors import StreamError, StreamstageError
from streamstage.lab.beds import BedSpec
from streamstage.model.checkpoint import StagingModel
from streamstage.night import NightPlan, assemble_night
from streamstage.pipeline import EpochModel
from streamstage.sinks import Delivery, NightSink
from streamstage.sinks.display import EpochLinePrinter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BedOutcome:
    """How a bed's night ended."""

    name: str
    folder: Path
    epochs: int
    """Epochs staged by this run (a resumed night's earlier epochs not counted)."""
    status: str


class BedWatch(NightSink):
    """What the overview needs of a bed that the dashboard's state does not keep."""

    def __init__(self) -> None:
        self.staged_at: float | None = None
        """``time.monotonic()`` of the last epoch staged."""
        self.epochs = 0
        self.signal_ok = True

    def on_epoch(self, delivery: Delivery) -> None:
        self.staged_at = time.monotonic()
        self.epochs += 1

    def on_signal(self, ok: bool, time_s: float | None) -> None:
        self.signal_ok = ok


class BedRunner:
    """Runs one bed's night in its thread until its stream ends (``plan``), ``stop`` is set, or it fails.

    ``stager`` gives the bed its model step (its seat in the lab's batch; None: a stager of its own);
    ``leave`` is called when the bed is done, whatever the reason. Without ``plan.exit_after_lost_s`` a
    stream that is not there yet is looked for again until it comes; with it, the bed fails.

    The thread runs torch with the thread count of the thread that built the runner: ``torch.set_num_threads``
    holds only for the thread that calls it, and a new one starts with OpenMP's default (every core), with
    which each of the model's tiny steps costs ~8 ms instead of ~0.15.
    """

    def __init__(
        self,
        spec: BedSpec,
        model: StagingModel,
        plan: NightPlan,
        stop: threading.Event,
        *,
        stager: Callable[[], EpochModel] | None = None,
        leave: Callable[[], None] | None = None,
        say: Callable[[str], None] = log.info,
        lines: bool = False,
    ) -> None:
        assert plan.out is not None
        self.spec = spec
        self.model = model
        self.plan = plan
        self.stop = stop
        self.stager = stager
        self.leave = leave
        self.say = say
        self.lines = lines
        self.dashboard = DashboardState()
        self.watch = BedWatch()
        self.status = "looking for the stream"
        self.epochs = 0
        self._torch_threads = torch.get_num_threads()
        self._thread = threading.Thread(target=self._run, name=f"bed {spec.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> BedRunner:
        self._thread.start()
        return self

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def outcome(self) -> BedOutcome:
        assert self.plan.out is not None
        return BedOutcome(self.name, self.plan.out, self.epochs, self.status)

    def view(self, now_s: float | None = None) -> BedView:
        """The bed's row in the overview (``now_s``: ``time.monotonic()``)."""
        now_s = time.monotonic() if now_s is None else now_s
        latest, alarm = self.dashboard.latest, self.dashboard.alarm
        staged_at = self.watch.staged_at
        status = "signal lost" if self.status == "staging" and not self.watch.signal_ok else self.status
        return BedView(
            name=self.name,
            status=status,
            stage=None if latest is None else latest.stage_name,
            confidence=None if latest is None else latest.confidence,
            quality="" if latest is None else self.dashboard.quality,
            minutes_since_epoch=None if staged_at is None else (now_s - staged_at) / 60.0,
            alarm=_alarm_text(alarm),
            epochs=self.watch.epochs,
            last_event=self.dashboard.events[-1] if self.dashboard.events else "",
        )

    def _run(self) -> None:
        torch.set_num_threads(self._torch_threads)
        try:
            self._night()
            self.status = "ended"
        except StreamstageError as error:
            self.status = f"failed: {error}"
            self.say(f"[{self.name}] stopped: {error}")
        except Exception as error:  # an unexpected failure ends this bed only
            log.exception("bed %s failed", self.name)
            self.status = f"failed: {type(error).__name__}: {error}"
            self.say(f"[{self.name}] stopped by an unexpected error: {error!r}")
        finally:
            if self.leave is not None:
                self.leave()

    def _night(self) -> None:
        printer = [EpochLinePrinter(prefix=f"bed={self.name} ")] if self.lines else []
        while not self.stop.is_set():
            with ExitStack() as cleanup:
                try:
                    night = assemble_night(
                        self.spec.stream,
                        self.model,
                        self.plan,
                        cleanup,
                        [self.watch, *printer],
                        lambda line: self.say(f"[{self.name}] {line}"),
                        dashboard=self.dashboard,
                        stager=self.stager,
                    )
                except StreamError:
                    if self.plan.exit_after_lost_s is not None:
                        raise
                    continue  # not there yet: look again (the lookup itself waited resolve_timeout_s)
                night.loop.stop = self.stop
                self.status = "staging"
                try:
                    night.loop.run()
                finally:
                    self.epochs = night.session.staged_count
                return


def _alarm_text(alarm: AlarmStatus | None) -> str:
    if alarm is None:
        return ""
    return f"{alarm.state} {alarm.window_start:%H:%M}-{alarm.window_end:%H:%M}"
