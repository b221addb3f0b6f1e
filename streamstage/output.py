"""A night's output folder: nothing staged may be lost.

``hypnogram.csv`` (one row per epoch) and ``events.jsonl`` are appended, flushed and fsynced at every epoch;
``state.npz`` (the whole pipeline state) is replaced atomically beside them, so a killed process leaves a
night that ``streamstage run --resume DIR`` continues. An existing night is never overwritten.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from streamstage import STAGES
from streamstage.errors import OutputError
from streamstage.records import StagedEpoch
from streamstage.state_io import load_state, save_state

HYPNOGRAM_FILE = "hypnogram.csv"
EVENTS_FILE = "events.jsonl"
STATE_FILE = "state.npz"
HYPNOGRAM_COLUMNS: tuple[str, ...] = (
    "epoch",
    "start_s",
    "wall_time",
    "stage",
    *(f"p_{s}" for s in STAGES),
    "quality",
    "latency_ms",
    "truth",
)


def default_night_folder(root: Path | None = None) -> Path:
    """A new dated folder under ``root`` (default ``./nights``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = (root or Path("nights")) / f"night-{stamp}"
    candidate, suffix = base, 1
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


def _repair_partial_line(path: Path) -> None:
    """Drop a last line cut off by a crash, so appended rows start on a line of their own."""
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(raw.rfind(b"\n") + 1)


def check_night_folder(folder: Path, resume: bool = False) -> None:
    """Refuse, before the night starts, a folder that holds a night already or cannot be written."""
    folder = Path(folder)
    if resume:
        if not (folder / STATE_FILE).is_file():
            raise OutputError(f"{folder} holds no resumable night (no {STATE_FILE}); check the path.")
        return
    if (folder / HYPNOGRAM_FILE).exists():
        raise OutputError(
            f"{folder} already holds a night; continue it with --resume {folder} "
            "or choose another --out folder."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write to the output folder {folder} ({error.strerror}); "
            "choose a writable --out folder before the night starts."
        ) from error


class NightWriter:
    """Appends epochs and events to a night folder and keeps its resumable state."""

    def __init__(self, folder: Path, resume: bool = False) -> None:
        self.folder = Path(folder)
        self.hypnogram_path = self.folder / HYPNOGRAM_FILE
        self.events_path = self.folder / EVENTS_FILE
        self.state_path = self.folder / STATE_FILE
        check_night_folder(self.folder, resume)
        if resume:
            for path in (self.hypnogram_path, self.events_path):
                if path.is_file():
                    _repair_partial_line(path)
        self._hypnogram: TextIO = open(self.hypnogram_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._events: TextIO = open(self.events_path, "a", encoding="utf-8")  # noqa: SIM115
        if self.hypnogram_path.stat().st_size == 0:
            self._write_line(self._hypnogram, ",".join(HYPNOGRAM_COLUMNS))

    @staticmethod
    def _write_line(handle: TextIO, line: str) -> None:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def write_epoch(
        self, epoch: StagedEpoch, wall_time: datetime | None = None, truth: str | None = None
    ) -> None:
        row = [
            str(epoch.index),
            f"{epoch.start_s:.3f}",
            wall_time.isoformat(timespec="seconds") if wall_time else "",
            epoch.stage_name,
            *(f"{p:.5f}" for p in epoch.probs),
            epoch.quality,
            f"{epoch.latency_s * 1000:.3f}",
            truth or "",
        ]
        self._write_line(self._hypnogram, ",".join(row))

    def write_event(self, event: str, **fields: Any) -> None:
        self.write_record({"event": event, **fields})

    def write_record(self, record: dict[str, Any]) -> None:
        """One line of events.jsonl: a record with an ``event`` name, stamped with the time it was logged."""
        stamped = {"logged_at": datetime.now().astimezone().isoformat(timespec="seconds"), **record}
        self._write_line(self._events, json.dumps(stamped, default=str))

    def save_state(self, state: dict[str, Any]) -> None:
        save_state(self.state_path, state)

    def load_state(self) -> dict[str, Any]:
        return load_state(self.state_path)

    def close(self) -> None:
        self._hypnogram.close()
        self._events.close()

    def __enter__(self) -> NightWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
