"""The batch summary: one row per file, as ``summary.csv`` in the archive folder and as a printed table."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.table import Table

from streamstage import STAGES
from streamstage.archive.night import FileResult
from streamstage.io.files import write_atomic
from streamstage.output import FILE_MODE

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS: tuple[str, ...] = (
    "file",
    "channels",
    "epochs",
    *(f"{stage}_min" for stage in STAGES),
    "unknown_min",
    "poor_quality_min",
    "status",
    "error",
    "folder",
)


def summary_row(result: FileResult) -> dict[str, str]:
    """A file's summary as text; minutes with one decimal (epochs are half minutes)."""
    minutes = {f"{stage}_min": f"{result.stage_min.get(stage, 0.0):.1f}" for stage in STAGES}
    return {
        "file": result.file,
        "channels": " ".join(result.channels),
        "epochs": str(result.epochs),
        **minutes,
        "unknown_min": f"{result.unknown_min:.1f}",
        "poor_quality_min": f"{result.poor_quality_min:.1f}",
        "status": result.status,
        "error": result.error,
        "folder": result.folder,
    }


def write_summary_csv(folder: Path, results: Sequence[FileResult]) -> Path:
    """Replace ``summary.csv`` in ``folder`` atomically: a reader never sees half a summary."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_row(result) for result in results)
    path = Path(folder) / SUMMARY_FILE
    write_atomic(path, buffer.getvalue().encode())
    path.chmod(FILE_MODE)  # stage minutes are health data, like the nights themselves
    return path


def summary_table(results: Sequence[FileResult]) -> Table:
    """The printed summary: file names (their folders are in the CSV), stages in minutes, status (the
    reasons for failures follow the table, see :func:`failure_lines`)."""
    table = Table(title="minutes per stage", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("file", overflow="fold")
    table.add_column("channels", overflow="fold")
    for column in ("epochs", *STAGES, "unknown", "poor"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    names = short_names([Path(result.file) for result in results])
    for result, name in zip(results, names, strict=True):
        row = summary_row(result)
        status = "[red]failed[/red]" if result.failed else result.status
        table.add_row(
            name,
            row["channels"],
            row["epochs"],
            *(row[f"{stage}_min"] for stage in STAGES),
            row["unknown_min"],
            row["poor_quality_min"],
            status,
        )
    return table


def short_names(paths: Sequence[Path]) -> list[str]:
    """Each path relative to the folder all of them share (``s01/night1.edf``), for a narrow table."""
    if len(paths) < 2:
        return [path.name for path in paths]
    root = Path(os.path.commonpath([path.parent for path in paths]))
    return [str(path.relative_to(root)) for path in paths]


def failure_lines(results: Sequence[FileResult]) -> list[str]:
    """``night3.edf: <why it failed>``, one per failed file."""
    names = short_names([Path(result.file) for result in results])
    return [f"{name}: {result.error}" for result, name in zip(results, names, strict=True) if result.failed]


def outcome_line(results: Sequence[FileResult]) -> str:
    """``8 recordings: 6 staged, 1 skipped (finished before), 1 failed``."""
    counts = {status: sum(r.status == status for r in results) for status in ("staged", "skipped", "failed")}
    return (
        f"{len(results)} recordings: {counts['staged']} staged, {counts['skipped']} skipped "
        f"(finished before), {counts['failed']} failed"
    )
