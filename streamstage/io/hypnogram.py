"""Hypnograms: one stage per epoch, read from the formats scorers and datasets use, written as CSV or EDF+.

Stages are AASM codes: 0 W, 1 N1, 2 N2, 3 N3, 4 REM, and -1 (``UNKNOWN``) for epochs nobody could score
(movement time, "?", outside the scored window), which evaluation ignores. Rechtschaffen & Kales scores are
mapped to AASM: S3 and S4 both become N3.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import edfio
import numpy as np

from streamstage import STAGES
from streamstage.errors import HypnogramError
from streamstage.io.files import write_atomic

UNKNOWN = -1
_EDF_HEADER_START = b"0       "
_TEXT_CODES: dict[str, int] = {
    # One code or name per line, or a CSV "stage" column: digits are AASM codes, 4 is REM (as YASA writes).
    **{str(code): code for code in range(-1, 5)},
    **{name: code for code, name in enumerate(STAGES)},
    **{"WAKE": 0, "R": 4, "S1": 1, "S2": 2, "S3": 3, "S4": 3},
    **dict.fromkeys(("?", "U", "UNKNOWN", "M", "MT", "MOVEMENT"), UNKNOWN),
}
_EDF_STAGE_NAMES: dict[str, int] = {
    # The X of "Sleep stage X" annotations: Sleep-EDF's R&K scores (4 is S4, so N3) and AASM names.
    **{"W": 0, "1": 1, "2": 2, "3": 3, "4": 3, "R": 4, "?": UNKNOWN},
    **{"N1": 1, "N2": 2, "N3": 3, "REM": 4},
}
_EDF_STAGE_PREFIX = "Sleep stage "
_EDF_WRITTEN_NAMES = ("W", "N1", "N2", "N3", "R")
"""What the EDF+ writer puts after "Sleep stage ", as MNE and Sleep-EDF spell AASM stages."""
_EDF_MOVEMENT = "Movement time"
_DREAMS_CODES = {5: 0, 4: 4, 3: 1, 2: 2, 1: 3, 0: 3}
"""DREAMS R&K codes (one per 5 s): 5 W, 4 REM, 3 S1, 2 S2, 1 S3, 0 S4; anything else is unknown."""
_DREAMS_STEP_S = 5.0
_ONSET_COLUMNS = ("onset_s", "start_s", "onset")


class HypnogramLengthWarning(UserWarning):
    """A hypnogram was cropped or padded to fit its recording."""


@dataclass(frozen=True, eq=False)
class Hypnogram:
    """Stages of consecutive ``epoch_s`` epochs, the first starting ``start_s`` after the recording starts."""

    stages: np.ndarray
    epoch_s: float = 30.0
    start_s: float = 0.0

    def __post_init__(self) -> None:
        stages = np.asarray(self.stages)
        if stages.ndim != 1 or not (stages.size == 0 or np.all(np.mod(stages, 1) == 0)):
            raise ValueError("stages must be a 1-D sequence of integer stage codes")
        if stages.size and (stages.min() < UNKNOWN or stages.max() >= len(STAGES)):
            raise ValueError(f"stage codes must lie in -1..{len(STAGES) - 1}, got {np.unique(stages)}")
        if not self.epoch_s > 0:
            raise ValueError(f"epoch_s must be positive, got {self.epoch_s}")
        stages = stages.astype(np.int8)
        stages.setflags(write=False)
        object.__setattr__(self, "stages", stages)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def duration_s(self) -> float:
        return len(self) * self.epoch_s

    @property
    def stage_names(self) -> list[str]:
        """Stage names per epoch, ``"?"`` where unknown."""
        return [_name(code) for code in self.stages]

    def aligned_to(self, n_epochs: int, *, on_mismatch: Literal["error", "fit"] = "error") -> Hypnogram:
        """This hypnogram on a recording's epoch grid: ``n_epochs`` epochs from the recording's start.

        Epochs before ``start_s`` (scoring that starts late, by its own account) are unknown; unknown epochs
        past the recording are dropped silently (Sleep-EDF hypnograms end with hours of "Sleep stage ?" past
        the PSG). A scored epoch outside the recording, or a recording epoch after the hypnogram's end, counts
        as a mismatch; one is tolerated (a last partial epoch). More raise :class:`HypnogramError` with
        ``on_mismatch="error"`` (a hypnogram of another night is the usual cause), or are cropped and padded
        with a :class:`HypnogramLengthWarning` with ``on_mismatch="fit"``.
        """
        if n_epochs < 0:
            raise ValueError(f"n_epochs must be non-negative, got {n_epochs}")
        offset = self.start_s / self.epoch_s
        if not math.isclose(offset, round(offset), abs_tol=1e-6):
            raise HypnogramError(
                f"the hypnogram starts {self.start_s:g} s into the recording, off its {self.epoch_s:g}-s "
                "epoch grid; give epoch_s that matches the scoring."
            )
        shift = round(offset)
        index = np.arange(len(self)) + shift
        scored = self.stages != UNKNOWN
        outside = int(np.count_nonzero(scored & ((index < 0) | (index >= n_epochs))))
        uncovered = max(0, n_epochs - max(0, shift + len(self)))
        if max(outside, uncovered) > 1:
            message = (
                f"the hypnogram ({len(self)} epochs of {self.epoch_s:g} s from {self.start_s:g} s) does not "
                f"fit a recording of {n_epochs} epochs: {outside} scored epochs fall outside the recording "
                f"and {uncovered} recording epochs come after its end"
            )
            if on_mismatch == "error":
                raise HypnogramError(
                    f"{message}; check that it belongs to this recording, or pass on_mismatch='fit'."
                )
            warnings.warn(
                f"{message}; cropped and padded with unknown epochs.", HypnogramLengthWarning, stacklevel=2
            )
        aligned = np.full(n_epochs, UNKNOWN, dtype=np.int8)
        inside = (index >= 0) & (index < n_epochs)
        aligned[index[inside]] = self.stages[inside]
        return Hypnogram(aligned, self.epoch_s, 0.0)

    def aligned_to_duration(
        self, duration_s: float, *, on_mismatch: Literal["error", "fit"] = "error"
    ) -> Hypnogram:
        """:meth:`aligned_to` the complete epochs of a recording lasting ``duration_s``."""
        return self.aligned_to(math.floor(duration_s / self.epoch_s + 1e-9), on_mismatch=on_mismatch)


def read_hypnogram(path: str | Path, epoch_s: float = 30.0) -> Hypnogram:
    """Read a hypnogram, recognising its format by content.

    EDF+ "Sleep stage" annotations (Sleep-EDF), the DREAMS ``[Hypnogram]`` text (5-s codes, turned into
    ``epoch_s`` epochs scored only where one stage covers the whole epoch), a CSV with a ``stage`` column
    (and optional ``onset_s``/``start_s`` column), or one code or name per line (``#`` lines are comments).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise HypnogramError(f"hypnogram {path} does not exist or is not a file; check the path.")
    with path.open("rb") as file:
        is_edf = file.read(len(_EDF_HEADER_START)) == _EDF_HEADER_START
    if is_edf:
        return _from_edf_annotations(path, epoch_s)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise HypnogramError(
            f"{path} is neither text nor EDF+; give a hypnogram as EDF+ annotations, a CSV, "
            "or one stage per line."
        )
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if not lines:
        raise HypnogramError(f"{path} holds no stages; give a hypnogram with one stage per epoch.")
    first = lines[0][1]
    if first.lower() == "[hypnogram]":
        return _from_dreams(path, lines[1:], epoch_s)
    if "stage" in (field.strip().lower() for field in first.split(_delimiter(first))):
        return _from_csv(path, [line for _, line in lines], epoch_s)
    return Hypnogram(np.array([_code(line, path, f"line {n}") for n, line in lines], dtype=np.int8), epoch_s)


def write_hypnogram_csv(path: str | Path, hypnogram: Hypnogram, probs: np.ndarray | None = None) -> None:
    """Write ``epoch, start_s, stage`` rows (and ``p_W..p_REM`` given probabilities), atomically."""
    header = ["epoch", "start_s", "stage"]
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(hypnogram), len(STAGES)):
            raise ValueError(f"probs must have shape ({len(hypnogram)}, {len(STAGES)}), got {probs.shape}")
        header += [f"p_{name}" for name in STAGES]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for epoch, name in enumerate(hypnogram.stage_names):
        row = [epoch, round(hypnogram.start_s + epoch * hypnogram.epoch_s, 6), name]
        if probs is not None:
            row += [f"{p:.6f}" for p in probs[epoch]]
        writer.writerow(row)
    write_atomic(Path(path).expanduser(), buffer.getvalue().encode())


def write_hypnogram_edf(path: str | Path, hypnogram: Hypnogram) -> None:
    """Write an annotation-only EDF+ file, one "Sleep stage X" annotation per run of equal stages."""
    if not len(hypnogram):
        raise HypnogramError("the hypnogram has no epochs; there is nothing to write.")
    changes = np.flatnonzero(np.diff(hypnogram.stages)) + 1
    starts = np.concatenate([[0], changes])
    stops = np.concatenate([changes, [len(hypnogram)]])
    annotations = [
        edfio.EdfAnnotation(
            hypnogram.start_s + start * hypnogram.epoch_s,
            (stop - start) * hypnogram.epoch_s,
            _EDF_STAGE_PREFIX + _name(hypnogram.stages[start], _EDF_WRITTEN_NAMES),
        )
        for start, stop in zip(starts, stops, strict=True)
    ]
    write_atomic(Path(path).expanduser(), edfio.Edf([], annotations=annotations).to_bytes())


def _name(code: int, names: Sequence[str] = STAGES) -> str:
    return "?" if code == UNKNOWN else names[code]


def _delimiter(line: str) -> str:
    return next((d for d in (",", "\t", ";") if d in line), ",")


def _code(token: str, path: Path, where: str) -> int:
    try:
        return _TEXT_CODES[token.strip().upper()]
    except KeyError:
        raise HypnogramError(
            f"{path.name} {where}: {token!r} is not a sleep stage; use W, N1, N2, N3, REM (or 0-4) "
            "and ? for unknown."
        ) from None


def _from_edf_annotations(path: Path, epoch_s: float) -> Hypnogram:
    try:
        annotations = edfio.read_edf(path, lazy_load_data=True).annotations
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise HypnogramError(
            f"{path} is not a readable EDF+ file ({error}); re-export the hypnogram."
        ) from None
    spans: list[tuple[int, int, int]] = []
    for onset, duration, text in annotations:
        if text == _EDF_MOVEMENT:
            code = UNKNOWN
        elif text.startswith(_EDF_STAGE_PREFIX):
            name = text.removeprefix(_EDF_STAGE_PREFIX).strip().upper()
            if name not in _EDF_STAGE_NAMES:
                raise HypnogramError(f"{path.name}: unknown stage annotation {text!r} at {onset:g} s.")
            code = _EDF_STAGE_NAMES[name]
        else:
            continue  # lights off, arousals and other events carry no stage
        first, count = onset / epoch_s, (duration or epoch_s) / epoch_s
        if not (
            math.isclose(first, round(first), abs_tol=1e-6)
            and math.isclose(count, round(count), abs_tol=1e-6)
        ):
            raise HypnogramError(
                f"{path.name}: {text!r} at {onset:g} s for {duration or 0:g} s is off the {epoch_s:g}-s "
                "epoch grid; pass the epoch length the hypnogram was scored in."
            )
        spans.append((round(first), round(first) + round(count), code))
    if not spans:
        raise HypnogramError(
            f"{path} has no 'Sleep stage' annotations; it is not a hypnogram (a recording, perhaps?)."
        )
    start = min(first for first, _, _ in spans)
    stages = np.full(max(stop for _, stop, _ in spans) - start, UNKNOWN, dtype=np.int8)
    for first, stop, code in spans:
        stages[first - start : stop - start] = code
    return Hypnogram(stages, epoch_s, start * epoch_s)


def _from_dreams(path: Path, lines: Sequence[tuple[int, str]], epoch_s: float) -> Hypnogram:
    steps = epoch_s / _DREAMS_STEP_S
    if steps < 1 or steps != int(steps):
        raise HypnogramError(
            f"DREAMS hypnograms have 5-s steps; epoch_s must be a multiple of 5, not {epoch_s:g}."
        )
    codes = np.empty(len(lines), dtype=np.int8)
    for i, (number, line) in enumerate(lines):
        if not line.lstrip("-").isdigit():
            raise HypnogramError(f"{path.name} line {number}: {line!r} is not a DREAMS stage code (0-5).")
        codes[i] = _DREAMS_CODES.get(int(line), UNKNOWN)
    n_epochs = len(codes) // int(steps)
    windows = codes[: n_epochs * int(steps)].reshape(n_epochs, int(steps))
    uniform = np.all(windows == windows[:, :1], axis=1)
    return Hypnogram(np.where(uniform, windows[:, 0], UNKNOWN), epoch_s)


def _from_csv(path: Path, lines: Sequence[str], epoch_s: float) -> Hypnogram:
    header, *rows = csv.reader(lines, delimiter=_delimiter(lines[0]))
    columns = [name.strip().lower() for name in header]
    stage_column = columns.index("stage")
    onset_column = next((columns.index(name) for name in _ONSET_COLUMNS if name in columns), None)
    codes = np.empty(len(rows), dtype=np.int8)
    onsets = np.empty(len(rows))
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise HypnogramError(
                f"{path.name} row {i + 2} has {len(row)} fields, not {len(columns)}; repair it."
            )
        codes[i] = _code(row[stage_column], path, f"row {i + 2}")
        try:
            onsets[i] = i * epoch_s if onset_column is None else float(row[onset_column])
        except ValueError:
            raise HypnogramError(
                f"{path.name} row {i + 2}: onset {row[onset_column]!r} is not a number."
            ) from None
    if not len(rows):
        raise HypnogramError(f"{path} holds no stages; give a hypnogram with one stage per epoch.")
    index = (onsets - onsets[0]) / epoch_s
    if not np.allclose(index, np.round(index), atol=1e-6) or np.any(np.diff(index) <= 0):
        raise HypnogramError(
            f"{path.name}: onsets are not increasing on a {epoch_s:g}-s grid; pass the hypnogram's epoch_s."
        )
    stages = np.full(round(index[-1]) + 1, UNKNOWN, dtype=np.int8)
    stages[np.round(index).astype(int)] = codes
    return Hypnogram(stages, epoch_s, float(onsets[0]))
