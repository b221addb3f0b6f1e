"""Colours, stage order and number formats shared by the live dashboard and the morning report.

Kept in one place so the terminal and ``report.png`` tell the same story in the same colours.
"""

from __future__ import annotations

from streamstage import STAGES

STAGE_COLOURS: dict[str, str] = {
    "W": "#f2c14e",
    "N1": "#7fd4e8",
    "N2": "#3a86ff",
    "N3": "#6a4fd8",
    "REM": "#e63946",
}
"""Hex colours per stage: Rich down-converts them on 256-colour terminals, matplotlib takes them as is."""

UNKNOWN_COLOUR = "#808080"

HYPNOGRAM_LEVELS: tuple[int, ...] = (0, 4, 1, 2, 3)
"""Stage codes from the top row of a classic hypnogram to the bottom: W, REM, N1, N2, N3."""


def stage_colour(stage: int) -> str:
    """The colour of a stage code; grey for unknown (-1)."""
    return STAGE_COLOURS[STAGES[stage]] if stage >= 0 else UNKNOWN_COLOUR


def format_hm(seconds: float | None) -> str:
    """A duration as hours and minutes, ``7h05``, rounded to the minute; ``-`` when undefined."""
    if seconds is None:
        return "-"
    minutes = int(seconds / 60 + 0.5)
    return f"{minutes // 60}h{minutes % 60:02d}"


def format_hms(seconds: float) -> str:
    """An elapsed time as ``H:MM:SS``."""
    whole = max(int(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
