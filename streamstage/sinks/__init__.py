"""Where a night's staged epochs go: one protocol (:class:`NightSink`), one fan-out (:class:`SinkFanout`).

* :mod:`~streamstage.sinks.hypnogram`: the night folder's hypnogram.csv (registered first);
* :mod:`~streamstage.sinks.outlets`: the stages published back to LSL;
* :mod:`~streamstage.sinks.raw`: the raw signal kept as BDF+;
* :mod:`~streamstage.sinks.display`: the dashboard's state, or one plain line per epoch;
* :mod:`~streamstage.sinks.decisions`: events with their hooks, and the smart alarm.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamstage.config import Settings
from streamstage.dashboard import DashboardState
from streamstage.output import NightWriter
from streamstage.sinks.base import (
    Delivery,
    Journal,
    NightSink,
    NightStart,
    SignalBlock,
    SinkFanout,
    recorded_channels,
)
from streamstage.sinks.decisions import AlarmSink, EventSink
from streamstage.sinks.display import DashboardSink
from streamstage.sinks.hypnogram import HypnogramSink


def night_sinks(
    writer: NightWriter,
    settings: Settings,
    dashboard: DashboardState | None = None,
    extra: Sequence[NightSink] = (),
) -> list[NightSink]:
    """The sinks of a night, in the order they get each epoch: the hypnogram first (on disk before anything
    acts on it), then ``extra`` (outlets, the raw recording, a line printer), the dashboard, the events
    with their hooks, and the smart alarm if one is set."""
    events = EventSink(settings.hooks, settings.sleep_onset_epochs, writer.folder)
    sinks: list[NightSink] = [HypnogramSink(writer), *extra]
    if dashboard is not None:
        sinks.append(DashboardSink(dashboard))
    sinks.append(events)
    if settings.alarm is not None:
        sinks.append(AlarmSink(settings.alarm, events, dashboard))
    return sinks


__all__ = [
    "Delivery",
    "Journal",
    "NightSink",
    "NightStart",
    "SignalBlock",
    "SinkFanout",
    "night_sinks",
    "recorded_channels",
]
