"""The Live wrapper's redraw policy, the terminal-or-pipe decision, and the plain per-epoch log line."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from rich.console import Console

from streamstage.dashboard import Dashboard, DashboardState, EpochLogLine, use_live_dashboard
from streamstage.records import StagedEpoch

WHEN = datetime(2026, 5, 10, 3, 4, 5, tzinfo=timezone.utc)


def epoch(index: int, stage: int = 2) -> StagedEpoch:
    return StagedEpoch(index, 30.0 * index, stage, (0.05, 0.05, 0.8, 0.05, 0.05), latency_s=0.0125)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def terminal(buffer: io.StringIO | None = None) -> Console:
    return Console(file=buffer or io.StringIO(), force_terminal=True, width=100, height=40, color_system=None)


def test_dashboard_only_on_a_terminal_and_when_not_disabled() -> None:
    assert not use_live_dashboard(Console(file=io.StringIO()))
    assert use_live_dashboard(terminal())
    assert not use_live_dashboard(terminal(), no_dashboard=True)


def test_redraws_at_a_bounded_rate_and_at_every_epoch() -> None:
    state, buffer, monotonic = DashboardState(stream_name="loopback-test"), io.StringIO(), FakeMonotonic()
    console = terminal(buffer)
    dashboard = Dashboard(state, console=console, screen=False, monotonic=monotonic, clock=lambda: WHEN)
    with dashboard:
        assert not dashboard.update()  # nothing new, too soon
        monotonic.now_s += 0.1
        assert not dashboard.update()
        monotonic.now_s += 0.2  # 0.3 s after the first draw: due at 4 per second
        assert dashboard.update()
        state.add_epoch(epoch(0))
        assert dashboard.update()  # a new epoch redraws at once
        assert not dashboard.update()
        assert dashboard.update(force=True)
    output = buffer.getvalue()
    assert "loopback-test" in output and "confidence 80%" in output and "epoch 0" in output


def test_update_can_swap_the_state() -> None:
    buffer = io.StringIO()
    with Dashboard(DashboardState(), console=terminal(buffer), screen=False, clock=lambda: WHEN) as dashboard:
        replacement = DashboardState(stream_name="replacement-stream")
        replacement.add_epoch(epoch(5, stage=4))
        assert dashboard.update(replacement)
        assert dashboard.state is replacement
    assert "replacement-stream" in buffer.getvalue()


def test_epoch_log_line() -> None:
    line = EpochLogLine().format(epoch(12), truth=3, when=WHEN)
    assert line == (
        "2026-05-10T03:04:05+00:00 epoch=12 stage=N2 confidence=0.800 "
        "W=0.050 N1=0.050 N2=0.800 N3=0.050 REM=0.050 quality=good latency_ms=12.5 truth=N3"
    )
    assert EpochLogLine(digits=2).format(epoch(1), when=WHEN).endswith("quality=good latency_ms=12.5")
    assert "truth" not in EpochLogLine().format(epoch(1), truth=-1, when=WHEN)
