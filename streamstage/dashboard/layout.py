"""Arranges the panels for the terminal's width: side by side when wide, stacked when narrow.

Rows have fixed heights sized to their panels' content, so the screen does not jump between redraws; on
a terminal shorter than the layout the least urgent panels (status, then trace) are cut first.
"""

from __future__ import annotations

from datetime import datetime

from rich.layout import Layout

from streamstage.dashboard.panels import (
    header_panel,
    hypnogram_panel,
    stage_panel,
    stats_panel,
    status_panel,
    trace_panel,
)
from streamstage.dashboard.state import DashboardState

WIDE_MIN_COLUMNS = 100
STAGE_PANEL_WIDTH = 34
STATS_PANEL_WIDTH = 40
STATUS_MIN_WIDTH = 30
HEADER_ROWS = 3
STAGE_ROWS = 13
HYPNOGRAM_ROWS = 12
STATS_ROWS = 11
TRACE_ROWS = 6


def render_dashboard(state: DashboardState, now: datetime, width: int) -> Layout:
    """The whole screen for a terminal ``width`` columns wide."""
    header = Layout(header_panel(state, now), name="header", size=HEADER_ROWS)
    stage = Layout(stage_panel(state), name="stage")
    hypnogram = Layout(hypnogram_panel(state), name="hypnogram")
    trace = Layout(trace_panel(state), name="trace")
    stats = Layout(stats_panel(state), name="stats")
    status = Layout(status_panel(state, now), name="status", minimum_size=3)
    root = Layout(name="root")
    if width >= WIDE_MIN_COLUMNS:
        stage.size, stats.size = STAGE_PANEL_WIDTH, STATS_PANEL_WIDTH
        trace.ratio, status.minimum_size = 2, STATUS_MIN_WIDTH
        top = Layout(name="top", size=STAGE_ROWS)
        top.split_row(stage, hypnogram)
        bottom = Layout(name="bottom", minimum_size=STATS_ROWS)
        bottom.split_row(trace, stats, status)
        root.split_column(header, top, bottom)
        return root
    stage.size, hypnogram.size = STAGE_ROWS, HYPNOGRAM_ROWS
    stats.size, trace.size = STATS_ROWS, TRACE_ROWS
    root.split_column(header, stage, hypnogram, stats, trace, status)
    return root
