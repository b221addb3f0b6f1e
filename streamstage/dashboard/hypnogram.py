"""The night's hypnogram as terminal text, squeezed into whatever width the terminal gives it.

Until the night outgrows the width each column is one epoch and the plot grows to the right; after that
each column summarises a run of neighbouring epochs by their most frequent known stage. Ties go to the
lightest stage in code order (W, N1, N2, N3, REM) so that brief awakenings stay visible.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from streamstage import STAGES
from streamstage.dashboard.style import HYPNOGRAM_LEVELS, stage_colour
from streamstage.stats import UNKNOWN

LABEL_WIDTH = 4
TICK_STEPS_S = (300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600)
"""Axis tick spacings to choose from, the smallest one leaving room for its labels."""


def column_of_epoch(n_epochs: int, n_columns: int) -> np.ndarray:
    """The column each epoch falls in: itself while it fits, else an even share of the width."""
    if n_epochs <= n_columns:
        return np.arange(n_epochs)
    return np.arange(n_epochs) * n_columns // n_epochs


def compress_stages(stages: np.ndarray, n_columns: int) -> np.ndarray:
    """One stage code per used column: the most frequent known stage of its epochs, -1 if none is known."""
    column = column_of_epoch(stages.size, n_columns)
    n_used = int(column[-1]) + 1 if column.size else 0
    known = stages >= 0
    counts = np.bincount(column[known] * len(STAGES) + stages[known], minlength=n_used * len(STAGES))
    counts = counts.reshape(n_used, len(STAGES))
    summary = counts.argmax(axis=1)
    summary[counts.sum(axis=1) == 0] = UNKNOWN
    return summary


def compress_any(flags: np.ndarray, n_columns: int) -> np.ndarray:
    """Per used column, whether any of its epochs is flagged (e.g. failed a quality check)."""
    column = column_of_epoch(flags.size, n_columns)
    n_used = int(column[-1]) + 1 if column.size else 0
    return np.bincount(column, weights=flags.astype(np.float64), minlength=n_used) > 0


class HypnogramView:
    """A classic hypnogram (W top, then REM, N1, N2, N3), a bad-signal row, a reference strip and a time axis.

    Takes copies at construction so a redraw never sees an epoch half-added.
    """

    def __init__(self, stages: np.ndarray, truth: np.ndarray, quality_ok: np.ndarray, epoch_s: float) -> None:
        self.stages = np.array(stages, dtype=np.int64)
        self.truth = np.array(truth, dtype=np.int64)
        self.quality_ok = np.array(quality_ok, dtype=bool)
        self.epoch_s = epoch_s

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        n_columns = max(options.max_width - LABEL_WIDTH, 1)
        if self.stages.size == 0:
            yield Text("waiting for the first epoch", style="dim")
            return
        columns = compress_stages(self.stages, n_columns)
        yield from _level_rows(columns)
        bad = compress_any(~self.quality_ok, n_columns)
        if bad.any():
            yield _strip("sig", ["×" if b else " " for b in bad], ["red" if b else "" for b in bad])
        if np.any(self.truth >= 0):
            truth = compress_stages(self.truth, n_columns)
            yield _strip("ref", ["█" if s >= 0 else " " for s in truth], [stage_colour(s) for s in truth])
        yield _time_axis(self.stages.size, n_columns, self.epoch_s)
        if self.stages.size > n_columns:
            minutes = self.stages.size / n_columns * self.epoch_s / 60
            yield Text(f"1 column ≈ {minutes:.1f} min (most frequent stage)", style="dim", no_wrap=True)


def _level_rows(columns: np.ndarray) -> RenderResult:
    """One text row per level, a block where the stage sits and a thin riser where it changes level."""
    row_of_stage = {stage: row for row, stage in enumerate(HYPNOGRAM_LEVELS)}
    rows = np.array([row_of_stage.get(int(s), -1) for s in columns])
    previous = np.r_[rows[:1], rows[:-1]]
    for row, stage in enumerate(HYPNOGRAM_LEVELS):
        rising = (np.minimum(previous, rows) < row) & (row < np.maximum(previous, rows)) & (previous >= 0)
        chars = np.where(rows == row, "█", np.where(rising, "│", " "))
        styles = [stage_colour(stage) if c == "█" else "dim" for c in chars]
        yield _strip(STAGES[stage], list(chars), styles)


def _strip(label: str, chars: list[str], styles: list[str]) -> Text:
    """A labelled row of single-cell characters, each with its style, merged into runs."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"{label:<{LABEL_WIDTH - 1}} ", style="bold")
    start = 0
    for end in range(1, len(chars) + 1):
        if end == len(chars) or styles[end] != styles[start]:
            text.append("".join(chars[start:end]), style=styles[start] or None)
            start = end
    return text


def _time_axis(n_epochs: int, n_columns: int, epoch_s: float) -> Text:
    """Elapsed-time labels (``H:MM``) under the plot, as dense as they fit without touching."""
    columns_per_s = min(n_columns / n_epochs, 1.0) / epoch_s
    step_s = next((s for s in TICK_STEPS_S if s * columns_per_s >= 6), TICK_STEPS_S[-1])
    line = [" "] * n_columns
    tick_s = 0
    while (column := int(tick_s * columns_per_s)) < n_columns:
        label = f"{tick_s // 3600}:{tick_s % 3600 // 60:02d}"
        if column + len(label) <= n_columns:
            line[column : column + len(label)] = label
        tick_s += step_s
    return Text(" " * LABEL_WIDTH + "".join(line).rstrip(), style="dim", no_wrap=True, overflow="crop")
