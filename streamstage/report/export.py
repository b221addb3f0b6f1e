"""A night's hypnogram for scorers and their tools: EDF+ annotations, CSV, or one code per line.

Every format carries the epoch length and the start time (the wall time of the first epoch's start): EDF+
in its header, CSV and text in ``#`` comment lines that :func:`streamstage.io.hypnogram.read_hypnogram`
skips. Each reads back through it as the same stages.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from streamstage import STAGES
from streamstage.errors import HypnogramError
from streamstage.io.files import write_atomic
from streamstage.report.annotations import event_annotations, stage_annotations, write_annotations
from streamstage.report.night import StagedNight
from streamstage.stats import UNKNOWN

FORMATS = {"edf+": ".edf", "csv": ".csv", "txt": ".txt"}
"""Format name -> file suffix of ``DIR/export<suffix>``."""


def night_start(night: StagedNight) -> datetime:
    """Wall time of the first epoch's start (rows hold each epoch's end)."""
    if night.started is None:
        raise HypnogramError("the night's first row has no wall time; it cannot be exported with a start.")
    return night.started - timedelta(seconds=night.epoch_s)


def export_hypnogram(folder: Path, night: StagedNight, stages: np.ndarray, fmt: str, path: Path) -> None:
    """Write ``stages`` (one per epoch of ``night``) to ``path`` in format ``fmt`` (a key of FORMATS)."""
    if not night.n_epochs:
        raise HypnogramError(f"{folder} holds no staged epoch; there is nothing to export.")
    start = night_start(night)
    if fmt == "edf+":
        annotations = stage_annotations(night, start, stages) + event_annotations(folder, start)
        write_annotations(path, annotations, start)
        return
    lines = [
        f"# streamstage hypnogram of {Path(folder).name}",
        f"# start {start.isoformat(timespec='seconds')}",
        f"# epoch {night.epoch_s:g} s",
    ]
    if fmt == "txt":
        lines += ["# codes: 0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1 unknown", *(str(int(s)) for s in stages)]
        write_atomic(path, ("\n".join(lines) + "\n").encode())
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "onset_s", "wall_start", "stage"])
    for i, stage in enumerate(stages):
        wall = start + timedelta(seconds=i * night.epoch_s)
        name = "?" if stage == UNKNOWN else STAGES[stage]
        writer.writerow([i, f"{i * night.epoch_s:g}", wall.isoformat(timespec="seconds"), name])
    write_atomic(path, ("\n".join(lines) + "\n" + buffer.getvalue()).encode())
