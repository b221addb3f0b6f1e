"""Reading a night's ``hypnogram.csv`` back, including one still being written or cut short by a crash.

The run loop appends one line per epoch and flushes it, so a complete line always ends with a newline: a
last line without one is a partial write and is dropped. Epochs missing from the file (a crash, then a
resume) come back as unknown epochs with quality ``"unstaged"`` so the statistics keep the night's real
length; an epoch written twice keeps its last row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from streamstage import STAGES
from streamstage.errors import HypnogramError, InputFileError
from streamstage.output import HYPNOGRAM_COLUMNS
from streamstage.records import UNKNOWN_NAME
from streamstage.stats import UNKNOWN

UNSTAGED = "unstaged"
DEFAULT_EPOCH_S = 30.0
MAX_MISSING_EPOCHS = 2880
"""A hole longer than a day between two rows is a damaged epoch index, not a night."""


class _Row(NamedTuple):
    epoch: int
    start_s: float
    wall_time: str
    stage: int
    probs: list[float]
    quality: str
    latency_ms: float
    truth: int


@dataclass(frozen=True, eq=False)
class StagedNight:
    """One night's epochs on a contiguous grid, oldest first; stage codes are -1 where unknown."""

    epoch: np.ndarray
    start_s: np.ndarray
    wall_time: tuple[str, ...]
    stages: np.ndarray
    probs: np.ndarray
    quality: tuple[str, ...]
    latency_ms: np.ndarray
    truth: np.ndarray
    epoch_s: float
    dropped_partial_line: bool = False

    @property
    def n_epochs(self) -> int:
        return int(self.stages.size)

    @property
    def has_truth(self) -> bool:
        return bool(np.any(self.truth >= 0))

    @property
    def n_unstaged(self) -> int:
        return sum(q == UNSTAGED for q in self.quality)

    @property
    def started(self) -> datetime | None:
        """Wall-clock time of the first epoch, when the file recorded it."""
        stamp = self.wall_time[0] if self.wall_time else ""
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
        except ValueError:
            return None


def read_night(path: Path) -> StagedNight:
    """Read ``hypnogram.csv``; a damaged line other than a partial last one raises :class:`HypnogramError`."""
    try:
        text = path.read_bytes().decode("utf-8").rstrip("\x00")
    except FileNotFoundError as error:
        raise InputFileError(
            f"{path} does not exist: pass the night's output folder (it holds hypnogram.csv)"
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"cannot read {path} ({error}): check the file and its permissions") from error
    lines = text.splitlines(keepends=True)
    dropped = bool(lines) and not lines[-1].endswith(("\n", "\r"))
    if dropped:
        lines.pop()
    rows = list(csv.reader(lines))
    if not rows:
        return _grid(path, [], dropped)
    header = [name.strip() for name in rows[0]]
    missing = [name for name in HYPNOGRAM_COLUMNS if name not in header]
    if missing:
        raise HypnogramError(
            f"{path} lacks the column(s) {', '.join(missing)}: it is not a streamstage hypnogram.csv"
        )
    position = [header.index(name) for name in HYPNOGRAM_COLUMNS]
    records = []
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise HypnogramError(
                f"{path}, line {line_number}: expected {len(header)} fields, found {len(row)}; "
                "the file is damaged there: repair or delete that line"
            )
        records.append([row[i].strip() for i in position])
    return _grid(path, records, dropped)


def _grid(path: Path, records: list[list[str]], dropped: bool) -> StagedNight:
    """Place parsed rows on the contiguous epoch grid (last row of an epoch wins, gaps unknown)."""
    by_epoch: dict[int, _Row] = {}
    for line_number, record in enumerate(records, start=2):
        row = _parse(path, line_number, record)
        by_epoch[row.epoch] = row
    rows = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    first = rows[0].epoch if rows else 0
    n = rows[-1].epoch - first + 1 if rows else 0
    if n > len(rows) + MAX_MISSING_EPOCHS:
        raise HypnogramError(
            f"{path}: epoch indices run from {first} to {rows[-1].epoch} with only {len(rows)} rows; "
            "an epoch index is damaged: repair or delete that line"
        )
    epoch_s = _epoch_length([row.epoch for row in rows], [row.start_s for row in rows])

    start_s = (rows[0].start_s if rows else 0.0) + epoch_s * np.arange(n)
    stages = np.full(n, UNKNOWN, dtype=np.int64)
    truth = np.full(n, UNKNOWN, dtype=np.int64)
    probs = np.full((n, len(STAGES)), np.nan)
    latency_ms = np.full(n, np.nan)
    wall_time, quality = [""] * n, [UNSTAGED] * n
    for row in rows:
        i = row.epoch - first
        start_s[i], wall_time[i], stages[i], probs[i] = row.start_s, row.wall_time, row.stage, row.probs
        quality[i], latency_ms[i], truth[i] = row.quality, row.latency_ms, row.truth
    return StagedNight(
        epoch=first + np.arange(n),
        start_s=start_s,
        wall_time=tuple(wall_time),
        stages=stages,
        probs=probs,
        quality=tuple(quality),
        latency_ms=latency_ms,
        truth=truth,
        epoch_s=epoch_s,
        dropped_partial_line=dropped,
    )


def _parse(path: Path, line_number: int, record: list[str]) -> _Row:
    epoch, start_s, wall_time, stage, *probs, quality, latency_ms, truth = record
    try:
        return _Row(
            epoch=int(epoch),
            start_s=float(start_s),
            wall_time=wall_time,
            stage=_stage_code(stage),
            probs=[float(p) if p else np.nan for p in probs],
            quality=quality or "unknown",
            latency_ms=float(latency_ms) if latency_ms else np.nan,
            truth=_stage_code(truth),
        )
    except ValueError as error:
        raise HypnogramError(
            f"{path}, line {line_number}: {error}; the file is damaged there: repair or delete that line"
        ) from error


def _stage_code(name: str) -> int:
    if not name or name == UNKNOWN_NAME:
        return UNKNOWN
    if name not in STAGES:
        expected = f"{', '.join(STAGES)}, {UNKNOWN_NAME} or empty"
        raise ValueError(f"unknown stage {name!r} (expected one of {expected})")
    return STAGES.index(name)


def _epoch_length(epochs: list[int], starts: list[float]) -> float:
    """The typical spacing of epoch starts per epoch index, or 30 s when it cannot be told."""
    if len(epochs) < 2:
        return DEFAULT_EPOCH_S
    spacing = float(np.median(np.diff(starts) / np.diff(epochs)))
    return spacing if spacing > 0 else DEFAULT_EPOCH_S
