"""A night's output folder: nothing staged may be lost, nothing written twice, nothing shown to others.

``hypnogram.csv`` (one row per epoch) and ``events.jsonl`` are appended and flushed line by line, so a killed
process loses none of them; ``state.npz`` (the whole pipeline state) is replaced atomically beside them, and
every state save first fsyncs the rows written since the last one (one commit per chunk staged: a power cut
costs at most the last chunk, and the state never runs ahead of the rows). A killed process leaves a night
that ``streamstage run --resume DIR`` continues. An existing night is never overwritten. Sleep data is
health data: the folder is 0700 and its files 0600. One process writes a night at a time (an ``flock`` the
kernel releases when the process dies, so a crash leaves no stale lock). A failed write (disk full, a file
size limit) raises :class:`OutputError`: a night that cannot be kept ends with a message, never silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from streamstage import STAGES
from streamstage.errors import OutputError, ResumeError
from streamstage.records import StagedEpoch
from streamstage.state_io import load_state, save_state

HYPNOGRAM_FILE = "hypnogram.csv"
EVENTS_FILE = "events.jsonl"
STATE_FILE = "state.npz"
LOCK_FILE = ".lock"
FOLDER_MODE = 0o700
FILE_MODE = 0o600
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


def _has_rows(path: Path) -> bool:
    """Whether a hypnogram holds any epoch row (a failed start leaves only the header)."""
    with open(path, "rb") as handle:
        return len(handle.read(1 << 16).split(b"\n", 1)[-1].strip()) > 0


def check_night_folder(folder: Path, resume: bool = False) -> None:
    """Refuse, before the night starts, a folder that holds a night already or cannot be written."""
    folder = Path(folder)
    if resume:
        if not (folder / HYPNOGRAM_FILE).is_file():
            raise OutputError(f"{folder} holds no resumable night (no {HYPNOGRAM_FILE}); check the path.")
        return
    hypnogram = folder / HYPNOGRAM_FILE
    if (folder / STATE_FILE).exists() or (hypnogram.exists() and _has_rows(hypnogram)):
        raise OutputError(
            f"{folder} already holds a night; continue it with --resume {folder} "
            "or choose another --out folder."
        )
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        folder.chmod(FOLDER_MODE)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write to the output folder {folder} ({error.strerror}); "
            "choose a writable --out folder before the night starts."
        ) from error


class NightLock:
    """An exclusive ``flock`` on the night folder for as long as this process writes it."""

    def __init__(self, folder: Path) -> None:
        path = Path(folder) / LOCK_FILE
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise OutputError(
                f"{folder} is being written by another streamstage process (pid {holder}); stop it first, "
                "or write this night to another --out folder."
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class WrittenEpoch:
    """The newest epoch a hypnogram holds: where a resumed or rebuilt night goes on from."""

    index: int
    start_s: float
    wall_end: datetime
    duration_s: float = 30.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def last_written_epoch(path: Path) -> WrittenEpoch | None:
    """The last complete row of ``hypnogram.csv``, or None when it holds no epoch yet."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 4096))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        fields = line.split(",")
        if len(fields) == len(HYPNOGRAM_COLUMNS) and fields[0].isdigit():
            wall = datetime.fromisoformat(fields[2]) if fields[2] else datetime.now().astimezone()
            return WrittenEpoch(int(fields[0]), float(fields[1]), wall)
    return None


def damaged_state(path: Path, error: BaseException) -> ResumeError:
    """The one message for a state file that cannot be used, with the two ways to go on."""
    return ResumeError(
        f"{path} is damaged or incomplete ({type(error).__name__}: {error}); continue the night with "
        f"`streamstage run --resume {path.parent} --rebuild-state` (the rows stay, the model starts afresh "
        "and the time since the last row is marked missing), or start a new night with another --out."
    )


def _open_private(path: Path) -> TextIO:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    return open(descriptor, "a", encoding="utf-8", newline="")


class NightWriter:
    """Appends epochs and events to a night folder and keeps its resumable state."""

    def __init__(self, folder: Path, resume: bool = False) -> None:
        self.folder = Path(folder)
        self.hypnogram_path = self.folder / HYPNOGRAM_FILE
        self.events_path = self.folder / EVENTS_FILE
        self.state_path = self.folder / STATE_FILE
        check_night_folder(self.folder, resume)
        self._lock = NightLock(self.folder)
        try:
            if resume:
                for path in (self.hypnogram_path, self.events_path):
                    if path.is_file():
                        _repair_partial_line(path)
            else:
                self.hypnogram_path.unlink(missing_ok=True)  # a header left by a start that failed
            self._hypnogram = _open_private(self.hypnogram_path)
            self._events = _open_private(self.events_path)
            self._unsynced: set[TextIO] = set()
            if self.hypnogram_path.stat().st_size == 0:
                self._write_line(self._hypnogram, ",".join(HYPNOGRAM_COLUMNS))
        except BaseException:
            self._lock.release()
            raise

    def _write_line(self, handle: TextIO, line: str) -> None:
        try:
            handle.write(line + "\n")
            handle.flush()
        except OSError as error:
            raise self._failed(handle.name, error) from error
        self._unsynced.add(handle)

    def sync(self) -> None:
        """fsync the files written since the last sync (every state save does, before it saves)."""
        for handle in tuple(self._unsynced):
            try:
                os.fsync(handle.fileno())
            except OSError as error:
                raise self._failed(handle.name, error) from error
            self._unsynced.discard(handle)

    def _failed(self, what: object, error: OSError) -> OutputError:
        return OutputError(
            f"cannot write {what} in {self.folder} ({error.strerror or error}); the night stops here with "
            f"everything before it kept: free space (or raise the file size limit) and continue with "
            f"`streamstage run --resume {self.folder}`."
        )

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
        """Commit the rows written so far, then the state that follows them (atomically)."""
        self.sync()
        try:
            save_state(self.state_path, state)
        except OSError as error:
            raise self._failed(STATE_FILE, error) from error

    def load_state(self) -> dict[str, Any]:
        """The saved state, or one clear :class:`ResumeError` whatever is wrong with the file."""
        if not self.state_path.is_file():
            raise ResumeError(
                f"{self.folder} has no {STATE_FILE} (the night stopped before its first epoch was saved); "
                f"continue it with `streamstage run --resume {self.folder} --rebuild-state`."
            )
        try:
            return load_state(self.state_path)
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise damaged_state(self.state_path, error) from error

    def last_epoch(self) -> WrittenEpoch | None:
        return last_written_epoch(self.hypnogram_path)

    def close(self) -> None:
        with contextlib.suppress(OutputError):  # a failed write was reported already
            self.sync()
        for handle in (self._hypnogram, self._events):
            with contextlib.suppress(OSError):  # a failed write was reported already
                handle.close()
        self._lock.release()

    def __enter__(self) -> NightWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
