"""The live terminal dashboard: state filled by the run loop, pure panels, and the Rich ``Live`` wrapper."""

from streamstage.dashboard.layout import render_dashboard
from streamstage.dashboard.live import Dashboard, EpochLogLine, use_live_dashboard
from streamstage.dashboard.state import AlarmStatus, DashboardState

__all__ = [
    "AlarmStatus",
    "Dashboard",
    "DashboardState",
    "EpochLogLine",
    "render_dashboard",
    "use_live_dashboard",
]
