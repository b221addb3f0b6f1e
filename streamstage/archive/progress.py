"""Progress over a batch: a Rich bar of files and epochs in a terminal, one plain line per file when the
output is piped or logged (a bar redrawn into a log file is noise)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streamstage.archive.night import FileResult


def progress_line(done: int, total: int, result: FileResult) -> str:
    """``[3/8] staged night3.edf: 240 epochs (Fpz-Cz) in 1.2 s``, or the reason it failed."""
    name = Path(result.file).name
    if result.failed:
        return f"[{done}/{total}] failed {name}: {result.error}"
    channels = ", ".join(result.channels)
    timing = "" if result.status == "skipped" else f" in {result.seconds:.1f} s"
    return f"[{done}/{total}] {result.status} {name}: {result.epochs} epochs ({channels}){timing}"


class ArchiveProgress:
    """Counts files and epochs as results arrive; a context manager around the Rich bar."""

    def __init__(self, console: Console, n_files: int) -> None:
        self.console = console
        self.n_files = n_files
        self.done = 0
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[epochs]} epochs"),
                TimeElapsedColumn(),
                console=console,
            )
            self._files = self._bar.add_task("recordings", total=n_files, epochs=0)

    def add(self, result: FileResult) -> None:
        self.done += 1
        line = progress_line(self.done, self.n_files, result)
        if self._bar is None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        epochs = self._bar.tasks[0].fields["epochs"] + result.epochs
        self._bar.update(self._files, advance=1, epochs=epochs)
        if result.failed:  # failures scroll above the bar as they happen
            self._bar.console.print(f"[red]{escape(line)}[/red]", soft_wrap=True)

    def __enter__(self) -> ArchiveProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
