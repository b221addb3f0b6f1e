"""Stage one recording into its night folder: the work `stage` does for one file, and for each file of a
batch on whichever worker gets it.

A batch stages each file into a hidden ``.<name>.partial`` folder, writes ``done.json`` there last and then
renames the folder into place, so a night folder under an archive is complete or absent: a killed batch
leaves only partial folders, which the next run clears and stages again. ``done.json`` holds the input's
size and modification time (not a hash: an overnight file is hundreds of MB) and the file's summary row,
so a second run skips files that have not changed since and still reports them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamstage import STAGES
from streamstage.errors import OutputError, StreamstageError
from streamstage.io.files import write_atomic
from streamstage.io.xdf import StreamChoice
from streamstage.output import FILE_MODE, NightWriter

if TYPE_CHECKING:
    from streamstage.model.checkpoint import StagingModel
    from streamstage.offline import RecordingSource
    from streamstage.records import StagedEpoch

DONE_FILE = "done.json"
PARTIAL_SUFFIX = ".partial"
EPOCH_MIN = 0.5


@dataclass(frozen=True)
class StagingOptions:
    """How every file of a run is staged: what ``stage`` takes besides the files and the output."""

    channels: tuple[str, ...] | None = None
    reference: str | None = None
    stream: StreamChoice = field(default_factory=StreamChoice)
    model: str | None = None


@dataclass(frozen=True)
class FileJob:
    """One file of a batch and the night folder it goes to."""

    recording: Path
    folder: Path
    options: StagingOptions


@dataclass(frozen=True)
class FileResult:
    """One file's row of the batch summary. ``status`` is ``staged``, ``skipped`` (finished by an earlier
    run and unchanged since) or ``failed`` (``error`` says why)."""

    file: str
    folder: str
    status: str
    channels: tuple[str, ...] = ()
    epochs: int = 0
    stage_min: dict[str, float] = field(default_factory=dict)
    unknown_min: float = 0.0
    poor_quality_min: float = 0.0
    error: str = ""
    seconds: float = 0.0
    cpu_s: float = 0.0
    """The worker's wall and CPU time on the file (the first file of a worker includes loading the model)."""

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @classmethod
    def of_night(
        cls, recording: Path, folder: Path, channels: Sequence[str], epochs: Sequence[StagedEpoch]
    ) -> FileResult:
        stage_min = {stage: 0.0 for stage in STAGES}
        for epoch in epochs:
            if epoch.known:
                stage_min[epoch.stage_name] += EPOCH_MIN
        return cls(
            file=str(recording),
            folder=str(folder),
            status="staged",
            channels=tuple(channels),
            epochs=len(epochs),
            stage_min=stage_min,
            unknown_min=EPOCH_MIN * sum(not epoch.known for epoch in epochs),
            poor_quality_min=EPOCH_MIN * sum(not epoch.quality_ok for epoch in epochs),
        )


@dataclass(frozen=True)
class StagedNight:
    source: RecordingSource
    epochs: list[StagedEpoch]
    folder: Path


def read_labels(path: Path, stream: StreamChoice) -> list[str]:
    """The channel labels of an EDF/BDF file, or of an XDF file's EEG stream."""
    from streamstage.io.edf import EdfRecording
    from streamstage.io.xdf import XdfRecording, is_xdf

    return XdfRecording.open(path, stream).labels if is_xdf(path) else EdfRecording.open(path).labels


def choose_channels(
    path: Path,
    labels: Sequence[str],
    options: StagingOptions,
    model_channels: tuple[str, ...],
    say: Callable[[str], object] | None = None,
) -> list[str]:
    """``--channel`` when given, else the channel ``run`` would stage on a stream with these labels
    (``say`` hears when that is a fallback from the model's own channels)."""
    if options.channels:
        return list(options.channels)
    from streamstage.signal.montage_choice import pick_montage

    chosen = list(pick_montage(labels, model_channels).labels)
    if chosen != list(model_channels) and say is not None:
        say(f"{path.name} has no {', '.join(model_channels)}: staging {', '.join(chosen)} instead")
    return chosen


def write_night(
    path: Path, folder: Path, channels: Sequence[str], options: StagingOptions, model: StagingModel
) -> StagedNight:
    """Stage ``path`` through the live pipeline into a new night folder."""
    from streamstage.offline import RecordingSource, stage_recording

    source = RecordingSource.open(path, channels, options.reference, options.stream)
    with NightWriter(folder) as writer:
        writer.write_event(
            "stage_file",
            file=str(path),
            channels=list(source.channel_labels),
            sfreq=source.sfreq,
            model=model.source,
            model_id=model.model_id,
        )
        staged = stage_recording(source, model)
        for epoch in staged:
            writer.write_epoch(epoch)
    return StagedNight(source, staged, folder)


def worker_model(spec: str | None) -> StagingModel:
    """The model, loaded once per worker process and kept for every file it stages, with torch on one
    thread in the calling thread: the setting holds per thread, and a Dask worker may stage on several."""
    import torch

    torch.set_num_threads(1)  # one epoch's work is tiny: a second thread only adds contention
    return _loaded_model(spec)


@functools.lru_cache(maxsize=4)
def _loaded_model(spec: str | None) -> StagingModel:
    from streamstage.model.checkpoint import load_model

    return load_model(spec)


def stage_file(job: FileJob) -> FileResult:
    """Stage one file of a batch; any failure becomes the file's ``failed`` row, never an exception, so
    one bad file cannot stop the others (this runs on a pool or Dask worker)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        model = worker_model(job.options.model)
        labels = read_labels(job.recording, job.options.stream)
        channels = choose_channels(job.recording, labels, job.options, model.channels)
        _check_replaceable(job.folder)
        partial = partial_folder(job.folder)
        shutil.rmtree(partial, ignore_errors=True)  # left by a run that was killed
        night = write_night(job.recording, partial, channels, job.options, model)
        result = FileResult.of_night(job.recording, job.folder, night.source.channel_labels, night.epochs)
        result = replace(
            result, seconds=time.perf_counter() - started, cpu_s=time.process_time() - cpu_started
        )
        write_done_marker(partial, job.recording, result)
        _move_into_place(partial, job.folder)
        return result
    except Exception as error:  # a bug in one file's staging is still that file's row, with its type
        shutil.rmtree(partial_folder(job.folder), ignore_errors=True)
        message = str(error) if isinstance(error, StreamstageError) else f"{type(error).__name__}: {error}"
        return FileResult(
            str(job.recording),
            str(job.folder),
            "failed",
            error=message,
            seconds=time.perf_counter() - started,
        )


def partial_folder(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}{PARTIAL_SUFFIX}")


def _check_replaceable(folder: Path) -> None:
    """Only a night an archive run finished is ever replaced (the night of a changed file, or --force)."""
    if folder.exists() and not (folder / DONE_FILE).is_file():
        raise OutputError(
            f"{folder} exists but holds no night an archive run finished (no {DONE_FILE}); move it "
            "away or choose another --out."
        )


def _move_into_place(partial: Path, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(partial, folder)


def _input_stamp(recording: Path) -> dict[str, Any]:
    stat = recording.stat()
    return {"source": str(recording), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_done_marker(folder: Path, recording: Path, result: FileResult) -> None:
    payload = {**_input_stamp(recording), "result": asdict(result)}
    write_atomic(folder / DONE_FILE, json.dumps(payload, indent=1).encode())
    (folder / DONE_FILE).chmod(FILE_MODE)


def finished_result(job: FileJob) -> FileResult | None:
    """The summary row of a night an earlier run finished from this very file, unchanged since (same
    size and modification time); None when it must be staged."""
    try:
        payload = json.loads((job.folder / DONE_FILE).read_text())
        if {key: payload[key] for key in ("source", "size", "mtime_ns")} != _input_stamp(job.recording):
            return None
        row = payload["result"]
        row = {**row, "channels": tuple(row["channels"]), "folder": str(job.folder)}  # the archive may move
        return replace(FileResult(**row), status="skipped")
    except (OSError, ValueError, KeyError, TypeError):
        return None
