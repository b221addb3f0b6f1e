"""Progress over a batch: Rich bars of files and of epochs in a terminal, one plain line per file when the
output is piped or logged (a bar redrawn into a log file is noise).

The epochs bar's total is estimated from the EDF/BDF headers before staging (an XDF file's length is only
known once it is read, so it adds to the total when it is done); each file corrects the total by what it
actually staged, so the bar ends full.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from streamstage.archive.night import EPOCH_MIN, FileResult


def progress_line(done: int, total: int, result: FileResult) -> str:
    """``[3/8] staged night3.edf: 240 epochs (Fpz-Cz) in 1.2 s``, or the reason it failed."""
    name = Path(result.file).name
    if result.failed:
        return f"[{done}/{total}] failed {name}: {result.error}"
    channels = ", ".join(result.channels)
    timing = "" if result.status == "skipped" else f" in {result.seconds:.1f} s"
    return f"[{done}/{total}] {result.status} {name}: {result.epochs} epochs ({channels}){timing}"


def expected_epochs(recording: Path) -> int:
    """The 30-s epochs an EDF/BDF header promises; 0 where it cannot tell (XDF, a broken file)."""
    from streamstage.errors import StreamstageError
    from streamstage.io.edf import EdfRecording
    from streamstage.io.xdf import is_xdf

    if is_xdf(recording):
        return 0
    try:
        return int(EdfRecording.open(recording).duration_s // (EPOCH_MIN * 60))
    except (StreamstageError, OSError, ValueError):
        return 0  # its own staging will say what is wrong with it


class ArchiveProgress:
    """Counts files and epochs as results arrive; a context manager around the Rich bars.

    ``expected`` maps each file (as ``FileResult.file`` names it) to the epochs it is expected to stage.
    """

    def __init__(self, console: Console, expected: Mapping[str, int]) -> None:
        self.console = console
        self.expected = dict(expected)
        self.done = 0
        self._epoch_total = sum(self.expected.values())
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description:>10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._files = self._bar.add_task("recordings", total=len(self.expected))
            self._epochs = self._bar.add_task("epochs", total=self._epoch_total)

    def add(self, result: FileResult) -> None:
        self.done += 1
        line = progress_line(self.done, len(self.expected), result)
        if self._bar is None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        self._epoch_total += result.epochs - self.expected.get(result.file, 0)
        self._bar.update(self._epochs, advance=result.epochs, total=self._epoch_total)
        self._bar.advance(self._files, 1)
        if result.failed:  # failures scroll above the bars as they happen
            self._bar.console.print(f"[red]{escape(line)}[/red]", soft_wrap=True)

    def __enter__(self) -> ArchiveProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
