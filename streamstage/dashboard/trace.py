"""The last seconds of filtered EEG as a braille oscilloscope trace.

Each character cell holds 2 x 4 braille dots. Every dot column draws the min-to-max range of its samples,
as a scope does, so a spike narrower than a column still shows. The vertical scale is symmetric and snaps
to 1-2-5 steps so it does not flicker from one redraw to the next; samples that are NaN (missing) are left
blank rather than drawn as zero.
"""

from __future__ import annotations

import math

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

DEFAULT_ROWS = 4
BRAILLE_BASE = 0x2800
BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])
"""Bit of each dot in a braille cell, indexed by [dot row, dot column]."""


def nice_scale_uv(peak_uv: float) -> float:
    """The smallest 1-2-5 step (at least 1 µV) that holds ``peak_uv``."""
    if not peak_uv > 1:
        return 1.0
    decade = 10 ** math.floor(math.log10(peak_uv))
    return next(step * decade for step in (1, 2, 5, 10) if step * decade >= peak_uv)


class TraceView:
    """A braille plot of ``trace_uv`` spanning ``span_s`` seconds, newest sample at the right edge.

    Uses the height it is given (a layout region), else :data:`DEFAULT_ROWS` rows.
    """

    def __init__(self, trace_uv: np.ndarray, sfreq: float, span_s: float, style: str = "green") -> None:
        self.trace_uv = np.array(trace_uv, dtype=np.float64)
        self.n_span = max(round(span_s * sfreq), 1)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        finite = self.trace_uv[np.isfinite(self.trace_uv)]
        if finite.size == 0:
            yield Text("no signal yet", style="dim")
            return
        scale_uv = nice_scale_uv(float(np.abs(finite).max()))
        labels = (f"+{scale_uv:g} µV", f"-{scale_uv:g} µV")
        label_width = max(len(label) for label in labels) + 1
        n_cells = max(options.max_width - label_width, 1)
        n_rows = max(options.height or DEFAULT_ROWS, 2)
        lines = braille_lines(self._padded(), scale_uv, n_rows, n_cells)
        for row, line in enumerate(lines):
            label = labels[0] if row == 0 else labels[1] if row == n_rows - 1 else ""
            text = Text(f"{label:>{label_width - 1}} ", style="dim", no_wrap=True, overflow="crop")
            text.append(line, style=self.style)
            yield text

    def _padded(self) -> np.ndarray:
        """The trace over the full span, NaN before the first sample so time runs at a fixed rate."""
        samples = self.trace_uv[-self.n_span :]
        return np.r_[np.full(self.n_span - samples.size, np.nan), samples]


def braille_lines(samples: np.ndarray, scale_uv: float, n_rows: int, n_cells: int) -> list[str]:
    """Rasterise samples in ``[-scale_uv, +scale_uv]`` into ``n_rows`` lines of ``n_cells`` braille cells."""
    n_dot_rows, n_dot_columns = 4 * n_rows, 2 * n_cells
    starts = np.arange(n_dot_columns) * samples.size // n_dot_columns
    with np.errstate(invalid="ignore"):
        high = np.maximum.reduceat(samples, starts)
        low = np.minimum.reduceat(samples, starts)
    drawn = np.isfinite(high) & np.isfinite(low)

    def dot_row(value_uv: np.ndarray) -> np.ndarray:
        position = (scale_uv - np.nan_to_num(value_uv)) / (2 * scale_uv) * (n_dot_rows - 1)
        return np.clip(np.rint(position), 0, n_dot_rows - 1).astype(np.int64)

    rows = np.arange(n_dot_rows)[:, None]
    dots = (rows >= dot_row(high)) & (rows <= dot_row(low)) & drawn
    cells = dots.reshape(n_rows, 4, n_cells, 2) * BRAILLE_BITS[None, :, None, :]
    codes = BRAILLE_BASE + cells.sum(axis=(1, 3))
    return ["".join(map(chr, line)) for line in codes]
