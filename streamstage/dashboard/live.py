"""Putting the dashboard on the terminal, or one plain line per epoch when there is no terminal.

The dashboard draws from the run loop's thread: the loop calls :meth:`Dashboard.update` as often as it
likes (every chunk) and the screen is redrawn at most ``refresh_per_second`` times a second, and at once
when a new epoch arrived. No background thread reads the state while the loop writes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from rich.console import Console
from rich.live import Live

from streamstage import STAGES
from streamstage.dashboard.layout import render_dashboard
from streamstage.dashboard.state import DashboardState
from streamstage.records import StagedEpoch


def use_live_dashboard(console: Console, no_dashboard: bool = False) -> bool:
    """Whether to show the live dashboard: only on a terminal, and not when the user asked for plain lines."""
    return console.is_terminal and not no_dashboard


def _local_now() -> datetime:
    return datetime.now().astimezone()


class Dashboard:
    """A Rich ``Live`` full-screen view of a :class:`DashboardState`; use it as a context manager."""

    def __init__(
        self,
        state: DashboardState,
        *,
        console: Console | None = None,
        refresh_per_second: float = 4.0,
        screen: bool = True,
        clock: Callable[[], datetime] = _local_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.console = console or Console()
        self._min_interval_s = 1.0 / refresh_per_second
        self._clock = clock
        self._monotonic = monotonic
        self._live = Live(console=self.console, screen=screen, auto_refresh=False, transient=False)
        self._drawn_at: float | None = None
        self._drawn_epoch: StagedEpoch | None = None

    def __enter__(self) -> Dashboard:
        self._live.start()
        self.update(force=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._live.stop()

    def update(self, state: DashboardState | None = None, *, force: bool = False) -> bool:
        """Redraw if a new epoch arrived or the last redraw is old enough; returns whether it redrew."""
        if state is not None:
            self.state = state
        now_s = self._monotonic()
        due = self._drawn_at is None or now_s - self._drawn_at >= self._min_interval_s
        if not (force or due or self.state.latest is not self._drawn_epoch):
            return False
        layout = render_dashboard(self.state, self._clock(), self.console.width)
        self._live.update(layout, refresh=True)
        self._drawn_at, self._drawn_epoch = now_s, self.state.latest
        return True


@dataclass(frozen=True)
class EpochLogLine:
    """One plain ``key=value`` line per epoch, for pipes, log files and ``--no-dashboard``.

    Keys are stable so the log can be grepped or parsed; probabilities follow the stage names, with
    ``digits`` decimals.
    """

    digits: int = 3

    def format(self, epoch: StagedEpoch, *, truth: int | None = None, when: datetime | None = None) -> str:
        stamp = (when or _local_now()).isoformat(timespec="seconds")
        d = self.digits
        probs = " ".join(f"{name}={p:.{d}f}" for name, p in zip(STAGES, epoch.probs, strict=True))
        line = (
            f"{stamp} epoch={epoch.index} stage={epoch.stage_name} confidence={epoch.confidence:.{d}f}"
            f" {probs} quality={epoch.quality} latency_ms={1000 * epoch.latency_s:.1f}"
        )
        return line if truth is None or truth < 0 else f"{line} truth={STAGES[truth]}"
