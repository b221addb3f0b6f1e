"""The night on screen: the dashboard's state, or one plain line per epoch for pipes and logs."""

from __future__ import annotations

import sys
from typing import TextIO

from streamstage.dashboard import DashboardState, EpochLogLine
from streamstage.records import ProvisionalStage
from streamstage.sinks.base import Delivery, Journal, NightSink, NightStart, SignalBlock


class DashboardSink(NightSink):
    """Keeps the dashboard's state; the dashboard itself only redraws it."""

    def __init__(self, state: DashboardState) -> None:
        self.state = state

    def start(self, night: NightStart, journal: Journal) -> None:
        self.state.stream_name = night.stream_name
        self.state.sfreq = night.sfreq_hz
        self.state.channel = ", ".join(night.channels)

    def on_block(self, block: SignalBlock) -> None:
        if block.trace_uv is not None:
            self.state.trace_uv = block.trace_uv

    def on_epoch(self, delivery: Delivery) -> None:
        epoch = delivery.epoch
        self.state.add_epoch(epoch, delivery.truth)
        self.state.elapsed_s = delivery.elapsed_s
        self.state.quality = "good" if epoch.quality_ok else f"{epoch.quality}"

    def on_notice(self, message: str) -> None:
        self.state.log_event(message)

    def on_provisional(self, provisional: ProvisionalStage) -> None:
        self.state.set_provisional(provisional)


class EpochLinePrinter(NightSink):
    """One ``key=value`` line per epoch (``--no-dashboard``), with its wall time and truth where known;
    ``prefix`` starts each line (a lab's ``bed=NAME``)."""

    def __init__(self, out: TextIO | None = None, prefix: str = "") -> None:
        self.out = out
        self.prefix = prefix
        self.line = EpochLogLine()

    def on_epoch(self, delivery: Delivery) -> None:
        text = self.line.format(delivery.epoch, truth=delivery.truth, when=delivery.wall_end)
        print(f"{self.prefix}{text}", file=self.out or sys.stdout, flush=True)
