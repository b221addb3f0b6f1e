"""Stage an archive: discover the recordings, skip the nights finished before, stage the rest on a runner,
and write the summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from streamstage.archive.discover import discover_recordings, is_glob, night_folder_names
from streamstage.archive.night import FileJob, FileResult, StagingOptions, finished_result, worker_model
from streamstage.archive.progress import ArchiveProgress, expected_epochs
from streamstage.archive.runners import DaskCluster, LocalPool, Runner
from streamstage.archive.single import stage_single
from streamstage.archive.summary import failure_lines, outcome_line, summary_table, write_summary_csv
from streamstage.errors import OutputError
from streamstage.output import FOLDER_MODE


def stage_files(
    inputs: Sequence[str],
    out: Path | None,
    options: StagingOptions,
    console: Console,
    *,
    workers: int,
    scheduler: str | None = None,
    force: bool = False,
) -> int:
    """What ``streamstage stage`` does: one recording is staged into ``out`` itself, as it always was;
    several (or a folder, or a glob) are a batch, on a local pool of ``workers`` processes or on the Dask
    cluster at ``scheduler``. The exit code is 1 when any file failed."""
    if len(inputs) == 1 and not is_glob(inputs[0]) and not Path(inputs[0]).is_dir():
        return stage_single(Path(inputs[0]), out, options, console)
    runner: Runner = DaskCluster(scheduler) if scheduler else LocalPool(workers)
    model = options.model
    if model is not None and Path(model).is_file():  # a worker's working folder is not ours
        options = replace(options, model=str(Path(model).resolve()))
    results = stage_archive(inputs, out or default_archive_folder(), options, runner, console, force)
    return 1 if any(result.failed for result in results) else 0


def default_archive_folder(root: Path | None = None) -> Path:
    """A new dated folder under ``root`` (default ``./nights``) for a batch's night folders."""
    return (root or Path("nights")) / f"archive-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def plan_jobs(recordings: Sequence[Path], out: Path, options: StagingOptions) -> list[FileJob]:
    names = night_folder_names(recordings)
    return [FileJob(recording, out / names[recording], options) for recording in recordings]


def stage_archive(
    inputs: Sequence[str | Path],
    out: Path,
    options: StagingOptions,
    runner: Runner,
    console: Console,
    force: bool = False,
) -> list[FileResult]:
    """Stage every recording ``inputs`` name into its own folder under ``out``; the results in input
    order, with ``summary.csv`` written beside the folders. Files unchanged since an earlier run
    finished them are skipped unless ``force``."""
    from streamstage.model.choice import model_choice

    recordings = discover_recordings(inputs)
    model = worker_model(options.model)  # a wrong --model stops the batch here, not once per file
    _make_folder(out)
    jobs = plan_jobs(recordings, out, options)
    finished = {} if force else {job: finished_result(job) for job in jobs}
    todo = [job for job in jobs if finished.get(job) is None]
    console.print(model_choice(options.model, model), soft_wrap=True)
    console.print(
        f"{len(jobs)} recordings, {len(jobs) - len(todo)} finished before; staging {len(todo)} on "
        f"{runner.describe()} into {out}",
        soft_wrap=True,
    )
    results: dict[Path, FileResult] = {}
    expected = {str(job.recording): expected_epochs(job.recording) for job in jobs}
    with ArchiveProgress(console, expected) as progress:
        for job in jobs:
            if (done := finished.get(job)) is not None:
                results[job.recording] = done
                progress.add(done)
        for result in runner.run(todo):
            results[Path(result.file)] = result
            progress.add(result)
    ordered = [results[job.recording] for job in jobs]
    summary = write_summary_csv(out, ordered)
    console.print(summary_table(ordered))
    for line in failure_lines(ordered):
        console.print(f"failed {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{outcome_line(ordered)}; summary: {summary}", soft_wrap=True)
    return ordered


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the output folder {out} ({error.strerror}); choose another --out."
        ) from None
