"""Sleep-EDF Expanded recordings: download PSG + hypnogram pairs from PhysioNet, and pair recordings with
their hypnograms in a folder.

Sleep-EDF names a recording ``SC4ssNE0-PSG.edf`` and its hypnogram ``SC4ssNxy-Hypnogram.edf``, where the
7th and 8th characters name the scorer, so the two pair by their first six characters (subject ``ss``,
night ``N``). A download lands in ``<name>.part`` and is renamed once its size matches what the server
announced, so a file under its own name is always whole and is never fetched again. A broken download
keeps its ``.part``: the next attempt (a retry, or the next run) asks for the rest with an HTTP Range
request, and starts over where the server does not serve ranges.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from streamstage.errors import InputFileError, OutputError

PHYSIONET_SLEEP_CASSETTE = "https://physionet.org/files/sleep-edfx/1.0.0/sleep-cassette/"
PART_SUFFIX = ".part"
_SLEEP_EDF_NAME = re.compile(r"^(S[CT][47](\d\d)(\d))\w\w-(PSG|Hypnogram)\.edf$", re.IGNORECASE)
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")
_RECORDING_SUFFIXES = (".edf", ".bdf")
_MAX_LISTING_BYTES = 16 * 2**20
_COPY_BLOCK_BYTES = 2**20
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
"""What a dropped or refused connection raises; an HTTP error status is not among them (not retried)."""


class DownloadListener(Protocol):
    """Hears how a download goes, e.g. to draw a progress bar."""

    def files_planned(self, names: list[str]) -> None:
        """The files the request covers, fetched or already there."""

    def file_started(self, name: str, size_bytes: int | None, offset_bytes: int) -> None:
        """A fetch begins (``offset_bytes`` > 0: resumed); size None where the server does not say."""

    def bytes_received(self, n_bytes: int) -> None: ...

    def file_finished(self, name: str, fetched: bool) -> None:
        """A file is whole under its own name (``fetched`` False: it was there already)."""


@dataclass(frozen=True)
class RecordingPair:
    """A recording and its hypnogram; subject and night are None outside Sleep-EDF's naming."""

    subject: int | None
    night: int | None
    psg_path: Path
    hypnogram_path: Path


def download_sleep_cassette(
    folder: str | Path,
    subjects: Collection[int] | None = None,
    nights: Collection[int] = (1, 2),
    *,
    base_url: str = PHYSIONET_SLEEP_CASSETTE,
    timeout_s: float = 60.0,
    retries: int = 2,
    listener: DownloadListener | None = None,
) -> list[RecordingPair]:
    """Fetch the PSG and hypnogram files of ``subjects`` (default: all) and ``nights`` into ``folder``.

    The file names come from the folder listing at ``base_url`` (a mirror may stand in for PhysioNet);
    nights Sleep-EDF lacks (e.g. subject 13, night 2) are simply not there. A file whose connection breaks
    is resumed up to ``retries`` times, then left as ``.part`` for the next run to resume. Returns the
    complete pairs among the requested recordings.
    """
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {folder} ({error.strerror}); choose a writable folder.") from None
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    wanted = []
    for name in _list_remote(base_url, timeout_s):
        match = _SLEEP_EDF_NAME.match(name)
        if match and (subjects is None or int(match[2]) in subjects) and int(match[3]) in nights:
            wanted.append(name)
    if not wanted:
        raise InputFileError(
            f"{base_url} lists no Sleep-EDF file for subjects {sorted(subjects or [])} and nights "
            f"{sorted(nights)}; check the numbers (subjects 0-82, nights 1-2) and the URL."
        )
    listener = listener or _Silent()
    listener.files_planned(wanted)
    for name in wanted:
        fetched = not (folder / name).exists()
        if fetched:
            _download(urllib.parse.urljoin(base_url, name), folder / name, timeout_s, retries, listener)
        listener.file_finished(name, fetched)
    return [pair for pair in find_edf_pairs(folder) if pair.psg_path.name in wanted]


def find_edf_pairs(folder: str | Path) -> list[RecordingPair]:
    """Pair the recordings in ``folder`` with their hypnograms, sorted by subject, night and name.

    Sleep-EDF files pair by their first six characters. Any other ``<name>.edf``/``.bdf`` pairs with
    ``<name>-hypnogram.*`` or ``Hypnogram_<name>.*`` (as DREAMS names them), else with ``<name>.txt`` or
    ``<name>.csv``. Recordings without a hypnogram are left out.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder; give the folder holding the recordings.")
    files = sorted(path for path in folder.iterdir() if path.is_file())
    sleep_edf: dict[str, dict[str, list[Path]]] = {}
    others = []
    for path in files:
        match = _SLEEP_EDF_NAME.match(path.name)
        if match:
            sleep_edf.setdefault(match[1].upper(), {}).setdefault(match[4].lower(), []).append(path)
        else:
            others.append(path)
    pairs = [
        RecordingPair(int(key[3:5]), int(key[5]), psg, _only(key, kinds["hypnogram"]))
        for key, kinds in sleep_edf.items()
        if "hypnogram" in kinds
        for psg in kinds.get("psg", [])
    ]
    by_name = {path.name.lower(): path for path in others}
    for path in others:
        stem = path.stem.lower()
        if path.suffix.lower() not in _RECORDING_SUFFIXES or stem.endswith("-hypnogram"):
            continue
        named = [p for p in others if p.stem.lower() in (f"{stem}-hypnogram", f"hypnogram_{stem}")]
        beside = [by_name[name] for name in (f"{stem}.txt", f"{stem}.csv") if name in by_name]
        if named or beside:
            pairs.append(RecordingPair(None, None, path, _only(path.name, named or beside)))
    return sorted(pairs, key=lambda p: (p.subject is None, p.subject or 0, p.night or 0, p.psg_path.name))


def _only(recording: str, hypnograms: list[Path]) -> Path:
    if len(hypnograms) > 1:
        names = ", ".join(path.name for path in hypnograms)
        raise InputFileError(
            f"{recording} has {len(hypnograms)} hypnograms ({names}); keep only one beside it."
        )
    return hypnograms[0]


def _list_remote(base_url: str, timeout_s: float) -> list[str]:
    """File names linked from the folder listing at ``base_url``."""
    try:
        with urllib.request.urlopen(base_url, timeout=timeout_s) as response:
            listing = response.read(_MAX_LISTING_BYTES).decode("utf-8", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise InputFileError(
            f"cannot list {base_url} ({_reason(error)}); check the internet connection and the URL."
        ) from None
    names = {urllib.parse.unquote(href.rstrip("/").rsplit("/", 1)[-1]) for href in _HREF.findall(listing)}
    return sorted(names)


def _download(url: str, target: Path, timeout_s: float, retries: int, listener: DownloadListener) -> None:
    """Fetch ``url`` into ``target`` through ``<target>.part``, resuming the part after a broken
    connection (up to ``retries`` times here, then on the next run)."""
    for attempt in range(retries + 1):
        try:
            _fetch_into_part(url, target, timeout_s, listener)
            return
        except _IncompleteDownload as error:
            if attempt == retries:
                raise InputFileError(
                    f"the download of {url} stopped ({error}); run the command again to resume it from "
                    f"{target.name}{PART_SUFFIX}."
                ) from None


class _IncompleteDownload(Exception):
    """The connection broke or the body came short: the part is kept, to be resumed."""


def _fetch_into_part(url: str, target: Path, timeout_s: float, listener: DownloadListener) -> None:
    partial = target.with_name(target.name + PART_SUFFIX)
    offset = partial.stat().st_size if partial.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            if _announced_size(error.headers.get("Content-Range", "")) == offset:  # whole, not yet renamed
                os.replace(partial, target)
                return
            partial.unlink()  # the part is no prefix of the file (it changed): start over
            raise _IncompleteDownload(f"{partial.name} did not fit the file; starting over") from None
        raise InputFileError(f"cannot download {url} ({error.code} {error.reason}); check the URL.") from None
    except _TRANSIENT as error:
        raise _IncompleteDownload(f"cannot connect: {_reason(error)}") from None
    with response:
        start, size = _span(response, offset)
        try:
            with partial.open("r+b" if start else "wb") as file:
                file.seek(start)
                file.truncate()
                listener.file_started(target.name, size, start)
                written = _copy(response, file, listener)
        except _TRANSIENT as error:
            received = partial.stat().st_size
            raise _IncompleteDownload(f"{_reason(error)} after {received} of {size or '?'} bytes") from None
        except OSError as error:
            raise OutputError(
                f"cannot write {partial} ({error.strerror or error}); check the disk space."
            ) from None
    if size is not None and written != size:
        raise _IncompleteDownload(f"the server sent {written} of {size} bytes")
    os.replace(partial, target)


def _span(response: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's whole size (None: not announced). A server that
    ignores Range answers 200 with the whole file, which then starts at 0."""
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            raise InputFileError(
                f"{response.url} answered a resume with a range that does not follow the part kept "
                f"({response.headers.get('Content-Range')!r}); delete the .part file and run again."
            )
        return offset, None if match[2] == "*" else int(match[2])
    length = response.headers.get("Content-Length")
    return 0, None if length is None else int(length)


def _announced_size(content_range: str) -> int | None:
    """The whole size in a ``bytes */1234`` Content-Range (what a 416 answer carries)."""
    match = re.match(r"^bytes \*/(\d+)$", content_range)
    return int(match[1]) if match else None


def _copy(response: http.client.HTTPResponse, file: BinaryIO, listener: DownloadListener) -> int:
    """Append the body to ``file`` and return the file's size; what arrived before a broken connection
    stays in the file (it is closed, so flushed, on the way out), to be resumed."""
    while block := response.read(_COPY_BLOCK_BYTES):
        file.write(block)
        listener.bytes_received(len(block))
    file.flush()
    os.fsync(file.fileno())
    return file.tell()


class _Silent:
    """The listener of a download nobody watches."""

    def files_planned(self, names: list[str]) -> None:
        pass

    def file_started(self, name: str, size_bytes: int | None, offset_bytes: int) -> None:
        pass

    def bytes_received(self, n_bytes: int) -> None:
        pass

    def file_finished(self, name: str, fetched: bool) -> None:
        pass


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error or type(error).__name__)
