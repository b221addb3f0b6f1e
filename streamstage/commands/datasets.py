"""``streamstage datasets``: download public sleep datasets to train and evaluate on (Sleep-EDF Expanded).

``datasets sleep-edf --out DIR --subjects 0-19`` fetches the Sleep Cassette PSG and hypnogram pairs of
those subjects from PhysioNet (or a mirror, ``--base-url``). Finished files are skipped, a broken download
is resumed where it stopped, on a retry or on the next run. Nothing here needs PyTorch.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from streamstage.errors import ConfigError

SUBJECTS = range(83)
NIGHTS = (1, 2)
_SPAN = re.compile(r"^(\d+)(?:-(\d+))?$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets",
        help="download public sleep datasets (Sleep-EDF Expanded) to train and evaluate on",
        description="Download public sleep datasets for `train` and `evaluate`.",
    )
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    sleep_edf = datasets.add_parser(
        "sleep-edf",
        help="Sleep-EDF Expanded, Sleep Cassette: PSG + hypnogram per night (PhysioNet, ODC-By 1.0)",
        description="Fetch Sleep-EDF Expanded Sleep Cassette recordings (SC4ssN) and their hypnograms into "
        "--out. Files already there are skipped; a download that broke off is kept as <name>.part and "
        "resumed with an HTTP Range request (from the start where the server does not serve ranges). "
        "Cite Kemp et al. 2000 and Goldberger et al. 2000 (PhysioNet) when you use the data.",
    )
    sleep_edf.add_argument("--out", type=Path, required=True, help="folder to download into")
    sleep_edf.add_argument(
        "--subjects",
        nargs="+",
        type=_numbers,
        help="subjects 0-82 as numbers and ranges, e.g. 0-19 (Sleep-EDF-20) or 0 3 5-7 (default: all)",
    )
    sleep_edf.add_argument(
        "--nights", nargs="+", type=_numbers, help="nights 1 and/or 2 (default: both; a few have one)"
    )
    sleep_edf.add_argument("--base-url", help="a mirror of PhysioNet's sleep-cassette folder listing")
    sleep_edf.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)"
    )
    sleep_edf.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a broken download is resumed before the command gives up on it (default 2)",
    )
    sleep_edf.set_defaults(handler=run_sleep_edf)


def _numbers(text: str) -> list[int]:
    """``0-19``, ``5`` or ``0,3,5-7`` as the numbers they name."""
    numbers: list[int] = []
    for part in text.split(","):
        match = _SPAN.match(part.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"{part!r} is not a number or a range like 0-19")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise argparse.ArgumentTypeError(f"the range {part} runs backwards; write {last}-{first}")
        numbers.extend(range(first, last + 1))
    return numbers


def _chosen(groups: list[list[int]] | None, allowed: range | tuple[int, ...], what: str) -> list[int] | None:
    """The numbers asked for, each once, sorted; None when not asked (all of them)."""
    if groups is None:
        return None
    chosen = sorted({n for group in groups for n in group})
    outside = [n for n in chosen if n not in allowed]
    if outside:
        raise ConfigError(
            f"Sleep-EDF has no {what} {', '.join(map(str, outside))}; {what}s are "
            f"{min(allowed)}-{max(allowed)}."
        )
    return chosen


def run_sleep_edf(args: argparse.Namespace) -> int:
    from streamstage.io.sleepedf import PHYSIONET_SLEEP_CASSETTE, download_sleep_cassette

    subjects = _chosen(args.subjects, SUBJECTS, "subject")
    nights = _chosen(args.nights, NIGHTS, "night") or list(NIGHTS)
    console = Console(stderr=True)
    with DownloadProgress(console) as progress:
        pairs = download_sleep_cassette(
            args.out,
            subjects,
            nights,
            base_url=args.base_url or PHYSIONET_SLEEP_CASSETTE,
            timeout_s=args.timeout,
            retries=args.retries,
            listener=progress,
        )
    console.print(f"{len(pairs)} recordings with hypnograms in {args.out}", soft_wrap=True)
    return 0


class DownloadProgress:
    """Two Rich bars in a terminal, the files and the current file's bytes; plain lines when piped."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._bytes_task: TaskID | None = None
        if console.is_terminal:
            self._files = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            self._bytes = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
            )
            self._files_task = self._files.add_task("files", total=None)
            self._live = Live(Group(self._files, self._bytes), console=console, refresh_per_second=8)

    def files_planned(self, names: list[str]) -> None:
        if self._live is not None:
            self._files.update(self._files_task, total=len(names))

    def file_started(self, name: str, size_bytes: int | None, offset_bytes: int) -> None:
        if self._live is None:
            self.console.print(describe_start(name, size_bytes, offset_bytes), markup=False, highlight=False)
            return
        if self._bytes_task is not None:
            self._bytes.remove_task(self._bytes_task)
        self._bytes_task = self._bytes.add_task(name, total=size_bytes, completed=offset_bytes)

    def bytes_received(self, n_bytes: int) -> None:
        if self._live is not None and self._bytes_task is not None:
            self._bytes.advance(self._bytes_task, n_bytes)

    def file_finished(self, name: str, fetched: bool) -> None:
        if self._live is not None:
            self._files.advance(self._files_task, 1)
        elif not fetched:
            self.console.print(f"{name}: already there", markup=False, highlight=False)

    def __enter__(self) -> DownloadProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()


def describe_start(name: str, size_bytes: int | None, offset_bytes: int) -> str:
    """``fetching SC4001E0-PSG.edf (46.1 MB, resuming at 12.0 MB)``."""
    size = "size not announced" if size_bytes is None else _megabytes(size_bytes)
    resume = f", resuming at {_megabytes(offset_bytes)}" if offset_bytes else ""
    return f"fetching {name} ({size}{resume})"


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"
