"""The night folder's hypnogram: one row per epoch, flushed as it is staged (registered first, so an epoch
is on disk before anything else acts on it)."""

from __future__ import annotations

from streamstage import STAGES
from streamstage.output import NightWriter
from streamstage.sinks.base import Delivery, NightSink


class HypnogramSink(NightSink):
    def __init__(self, writer: NightWriter) -> None:
        self.writer = writer

    def on_epoch(self, delivery: Delivery) -> None:
        truth = None if delivery.truth is None or delivery.truth < 0 else STAGES[delivery.truth]
        self.writer.write_epoch(delivery.outward, delivery.wall_end, truth)
