"""``report.png``: the hypnogram, the reference when known, and the stage probabilities over the night.

matplotlib is an optional extra (``streamstage[report]``), imported only here and only when drawing; the
figure is drawn on the non-interactive Agg canvas directly, so no pyplot state or display is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamstage import STAGES
from streamstage.dashboard.style import HYPNOGRAM_LEVELS, STAGE_COLOURS, stage_colour
from streamstage.report.night import StagedNight
from streamstage.stats import Agreement, agreement, sleep_stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LEVEL_OF_STAGE = {stage: len(HYPNOGRAM_LEVELS) - 1 - row for row, stage in enumerate(HYPNOGRAM_LEVELS)}
"""Height of each stage code on the hypnogram's y axis: W at the top, N3 at the bottom."""


def plot_night(
    night: StagedNight,
    path: Path,
    rescored: np.ndarray | None = None,
    rescored_probs: np.ndarray | None = None,
) -> None:
    """Draw the night (and its morning re-score, above the live hypnogram, with the re-score's
    probabilities) into a PNG at ``path``; raises ``ModuleNotFoundError`` without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hours = (night.start_s - night.start_s[0]) / 3600
    edges = np.r_[hours, hours[-1] + night.epoch_s / 3600]
    panels = (
        [("predicted", night.stages)]
        if rescored is None
        else [("re-scored", rescored), ("live", night.stages)]
    )
    panels += [("reference", night.truth)] if night.has_truth else []
    figure = Figure(figsize=(12, 1.9 * len(panels) + 2.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels) + 1, 1, sharex=True)
    for ax, (label, stages) in zip(axes, panels, strict=False):
        _draw_hypnogram(ax, edges, stages, label)
    bad = np.array([q != "good" for q in night.quality])
    if bad.any():
        axes[0].fill_between(
            edges,
            0,
            1,
            where=np.r_[bad, bad[-1]],
            step="post",
            transform=axes[0].get_xaxis_transform(),
            color="#e63946",
            alpha=0.12,
            linewidth=0,
            label="low signal quality or no epoch",
        )
        axes[0].legend(loc="upper right", fontsize="small", frameon=False)
    if rescored_probs is None:
        _draw_probabilities(axes[-1], edges, night.probs, "probability")
    else:
        _draw_probabilities(axes[-1], edges, rescored_probs, "re-score probability")
    axes[-1].set_xlabel("hours since the first epoch")
    axes[-1].set_xlim(edges[0], edges[-1])
    figure.suptitle(_title(night, rescored))
    figure.savefig(path, format="png", dpi=110)


def _draw_hypnogram(ax: Axes, edges: np.ndarray, stages: np.ndarray, label: str) -> None:
    """Classic step hypnogram with each epoch's level drawn thick in its stage colour."""
    level = np.array([LEVEL_OF_STAGE.get(int(s), np.nan) for s in stages], dtype=np.float64)
    ax.step(edges, np.r_[level, level[-1]], where="post", color="0.6", linewidth=0.8)
    known = np.isfinite(level)
    ax.hlines(
        level[known],
        edges[:-1][known],
        edges[1:][known],
        colors=[stage_colour(int(s)) for s in stages[known]],
        linewidth=5,
    )
    ax.set_yticks(sorted(LEVEL_OF_STAGE.values()), [STAGES[s] for s in reversed(HYPNOGRAM_LEVELS)])
    ax.set_ylim(-0.6, len(HYPNOGRAM_LEVELS) - 0.4)
    ax.set_ylabel(label)


def _draw_probabilities(ax: Axes, edges: np.ndarray, probs: np.ndarray, label: str) -> None:
    """Stacked stage probabilities per epoch; epochs without a prediction stay blank."""
    filled = np.nan_to_num(probs, nan=0.0)
    ax.stackplot(
        edges,
        np.vstack([filled, filled[-1:]]).T,
        step="post",
        colors=list(STAGE_COLOURS.values()),
        labels=list(STAGES),
        linewidth=0,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel(label)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)


def _title(night: StagedNight, rescored: np.ndarray | None) -> str:
    predicted = night.stages if rescored is None else rescored
    stats = sleep_stats(predicted, night.epoch_s)
    hours, minutes = divmod(round(stats.total_sleep_s / 60), 60)
    parts = ["streamstage night"]
    if night.started is not None:
        parts.append(f"started {night.started:%Y-%m-%d %H:%M}")
    parts.append(f"total sleep {hours} h {minutes:02d}")
    if stats.efficiency is not None:
        parts.append(f"efficiency {stats.efficiency:.0%}")
    if rescored is not None:
        parts.append(_agreement_text("live vs re-score", agreement(night.stages, rescored)))
    if night.has_truth:
        parts.append(_agreement_text("agreement", agreement(predicted, night.truth)))
    return " · ".join(part for part in parts if part)


def _agreement_text(label: str, agree: Agreement) -> str:
    if agree.accuracy is None:
        return ""
    kappa = "-" if agree.kappa is None else f"{agree.kappa:.2f}"
    return f"{label} {agree.accuracy:.0%}, κ {kappa}"
