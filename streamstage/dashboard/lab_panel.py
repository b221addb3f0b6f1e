"""A lab's overview: one row per bed (stage, confidence, signal quality, minutes since its last epoch, alarm).

Pure functions of :class:`BedView` rows, as every panel here: :func:`lab_panel` for the terminal and
:func:`lab_lines` for pipes and logs, so the overview is tested by rendering it to text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamstage.dashboard.style import STAGE_COLOURS

STALE_EPOCH_MIN = 1.5
"""Minutes without an epoch after which a staging bed's row is shown as late (an epoch is due every 0.5)."""


@dataclass(frozen=True)
class BedView:
    """One bed as the overview shows it."""

    name: str
    status: str
    """staging, looking for the stream, signal lost, ended, or failed: why."""
    stage: str | None = None
    confidence: float | None = None
    quality: str = ""
    minutes_since_epoch: float | None = None
    alarm: str = ""
    epochs: int = 0
    last_event: str = ""

    @property
    def late(self) -> bool:
        since = self.minutes_since_epoch
        return self.status == "staging" and since is not None and since > STALE_EPOCH_MIN

    @property
    def failed(self) -> bool:
        return self.status.startswith("failed")


def lab_panel(beds: Sequence[BedView], title: str = "lab") -> Panel:
    """The overview table, a row per bed; a failed, lost or late bed stands out in its status colour."""
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    for header, justify in [
        ("bed", "left"),
        ("status", "left"),
        ("stage", "left"),
        ("conf", "right"),
        ("quality", "left"),
        ("min since", "right"),
        ("alarm", "left"),
        ("epochs", "right"),
        ("last event", "left"),
    ]:
        table.add_column(header, justify=justify, no_wrap=header != "last event")  # type: ignore[arg-type]
    for bed in beds:
        table.add_row(
            bed.name,
            Text(bed.status, style=_status_style(bed)),
            Text(bed.stage or "-", style=STAGE_COLOURS.get(bed.stage or "", "")),
            "-" if bed.confidence is None else f"{bed.confidence:.2f}",
            Text(bed.quality or "-", style="" if bed.quality in ("", "good") else "yellow"),
            _minutes(bed.minutes_since_epoch),
            bed.alarm or "-",
            str(bed.epochs),
            Text(bed.last_event, overflow="ellipsis"),
        )
    staging = sum(bed.status == "staging" for bed in beds)
    return Panel(table, title=f"{title}: {staging} of {len(beds)} beds staging", title_align="left")


def lab_lines(beds: Sequence[BedView]) -> list[str]:
    """The overview as plain ``key=value`` lines, one per bed (no terminal: pipes, logs)."""
    return [
        f"bed={bed.name} status={bed.status.replace(' ', '_')} stage={bed.stage or '-'} "
        f"confidence={'-' if bed.confidence is None else f'{bed.confidence:.2f}'} "
        f"quality={bed.quality or '-'} min_since_epoch={_minutes(bed.minutes_since_epoch)} "
        f"alarm={(bed.alarm or '-').replace(' ', '_')} epochs={bed.epochs}"
        for bed in beds
    ]


def _status_style(bed: BedView) -> str:
    if bed.failed:
        return "bold red"
    if bed.status == "staging":
        return "yellow" if bed.late else "green"
    return "yellow" if bed.status in ("signal lost", "looking for the stream") else "dim"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
