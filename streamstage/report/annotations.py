"""A night as EDF+ annotations: one ``Sleep stage X`` per run of equal stages, and the night's events (sleep
onset, signal lost and back, the alarm firing), timed from a recording's start.

The same annotations serve the companion file of the raw recording (``raw.annotations.edf``, opened beside
``raw.bdf`` in EDFbrowser) and ``streamstage export --format edf+``; both read back as a hypnogram through
:func:`streamstage.io.hypnogram.read_hypnogram`. Times come from each row's and event's wall time, and
stage onsets are put on the 30-s grid of the recording, whose first sample starts epoch 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import edfio
import numpy as np

from streamstage.io.files import write_atomic
from streamstage.output import EVENTS_FILE, FILE_MODE
from streamstage.report.night import StagedNight
from streamstage.stats import UNKNOWN

STAGE_PREFIX = "Sleep stage "
EDF_STAGE_NAMES = ("W", "N1", "N2", "N3", "R")
"""After "Sleep stage ", as Sleep-EDF and MNE spell the AASM stages; unknown epochs are "?"."""
EVENT_TEXT = {
    "sleep_onset": "sleep onset",
    "signal_lost": "signal lost",
    "signal_back": "signal back",
}


def _seconds_since(stamp: str, start: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if (when.tzinfo is None) != (start.tzinfo is None):
        when = when.replace(tzinfo=start.tzinfo)
    return (when - start).total_seconds()


def stage_annotations(
    night: StagedNight, start: datetime, stages: np.ndarray | None = None
) -> list[edfio.EdfAnnotation]:
    """One annotation per run of equal ``stages`` (default: the night's own) on the recording's epoch grid,
    placed by the first row's wall time; epochs before ``start`` are left out."""
    stages = night.stages if stages is None else stages
    dated = [(i, s) for i, w in enumerate(night.wall_time) if (s := _seconds_since(w, start)) is not None]
    if not dated:
        return []
    first, since = dated[0]
    onsets = night.epoch_s * (round(since / night.epoch_s - 1) - first + np.arange(len(stages)))
    annotations: list[edfio.EdfAnnotation] = []
    kept = np.flatnonzero(onsets >= 0)
    for run in np.split(kept, np.flatnonzero(np.diff(stages[kept]) != 0) + 1) if kept.size else []:
        code = int(stages[run[0]])
        name = "?" if code == UNKNOWN else EDF_STAGE_NAMES[code]
        annotations.append(
            edfio.EdfAnnotation(float(onsets[run[0]]), len(run) * night.epoch_s, STAGE_PREFIX + name)
        )
    return annotations


def event_annotations(folder: Path, start: datetime) -> list[edfio.EdfAnnotation]:
    """Sleep onset, signal lost/back and a fired alarm from ``events.jsonl``, at their wall times."""
    path = Path(folder) / EVENTS_FILE
    if not path.is_file():
        return []
    annotations = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a crash
        name = record.get("event")
        if name == "alarm_decision" and record.get("action") == "fired":
            text = f"alarm fired ({record.get('reason')})"
        elif name in EVENT_TEXT:
            text = EVENT_TEXT[name]
        else:
            continue
        since = _seconds_since(record.get("wall"), start)
        if since is not None and since >= 0:
            annotations.append(edfio.EdfAnnotation(round(since, 3), None, text))
    return annotations


def write_annotations(path: Path, annotations: Sequence[edfio.EdfAnnotation], start: datetime) -> None:
    """An annotation-only EDF+ file starting at ``start`` (to the microsecond, as the raw file does)."""
    edf = edfio.Edf(
        [],
        annotations=sorted(annotations, key=lambda a: a.onset),
        recording=edfio.Recording(startdate=start.date()),
        starttime=start.time().replace(tzinfo=None),
    )
    write_atomic(Path(path), edf.to_bytes())
    Path(path).chmod(FILE_MODE)  # health data, like every file of the night
