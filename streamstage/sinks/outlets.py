"""The stages published back to LSL (:class:`~streamstage.lsl.outlets.StageOutlets`) as a night sink."""

from __future__ import annotations

from streamstage.lsl.outlets import StageOutlets
from streamstage.records import ProvisionalStage
from streamstage.sinks.base import Delivery, NightSink


class OutletSink(NightSink):
    """Each epoch as a marker and as probabilities, time-stamped in the source stream's clock."""

    def __init__(self, outlets: StageOutlets) -> None:
        self.outlets = outlets

    def on_epoch(self, delivery: Delivery) -> None:
        self.outlets.push(delivery.outward)

    def on_provisional(self, provisional: ProvisionalStage) -> None:
        self.outlets.push_provisional(provisional)  # published where the outlets were opened for it
