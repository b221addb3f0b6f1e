"""Sleep-EDF Expanded recordings: download PSG + hypnogram pairs from PhysioNet, and pair recordings with
their hypnograms in a folder.

Sleep-EDF names a recording ``SC4ssNE0-PSG.edf`` and its hypnogram ``SC4ssNxy-Hypnogram.edf``, where the
7th and 8th characters name the scorer, so the two pair by their first six characters (subject ``ss``,
night ``N``). Downloads land under a temporary name and are renamed once complete, so an interrupted
download never leaves a file that looks whole; files already present are not fetched again.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from streamstage.errors import InputFileError, OutputError

PHYSIONET_SLEEP_CASSETTE = "https://physionet.org/files/sleep-edfx/1.0.0/sleep-cassette/"
_SLEEP_EDF_NAME = re.compile(r"^(S[CT][47](\d\d)(\d))\w\w-(PSG|Hypnogram)\.edf$", re.IGNORECASE)
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_RECORDING_SUFFIXES = (".edf", ".bdf")
_MAX_LISTING_BYTES = 16 * 2**20
_COPY_BLOCK_BYTES = 2**20


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
    progress: Callable[[str], None] | None = None,
) -> list[RecordingPair]:
    """Fetch the PSG and hypnogram files of ``subjects`` (default: all) and ``nights`` into ``folder``.

    The file names come from the folder listing at ``base_url``; nights Sleep-EDF lacks (e.g. subject 13,
    night 2) are simply not there. ``progress`` is called with each file name before it is fetched.
    Returns the complete pairs among the requested recordings.
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
    for name in wanted:
        if not (folder / name).exists():
            if progress is not None:
                progress(name)
            _download(urllib.parse.urljoin(base_url, name), folder / name, timeout_s)
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


def _download(url: str, target: Path, timeout_s: float) -> None:
    """Fetch ``url`` into ``target`` through a temporary file, checking the length the server announced."""
    temporary = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, temporary.open("wb") as file:
            announced = response.headers.get("Content-Length")
            shutil.copyfileobj(response, file, _COPY_BLOCK_BYTES)
            file.flush()
            os.fsync(file.fileno())
            received = file.tell()
        if announced is not None and received != int(announced):
            raise InputFileError(
                f"the download of {url} stopped after {received} of {announced} bytes; run it again."
            )
        os.replace(temporary, target)
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
        raise InputFileError(
            f"cannot download {url} ({_reason(error)}); check the internet connection, or fetch the file "
            f"by hand into {target.parent}."
        ) from None
    except OSError as error:
        raise OutputError(
            f"cannot write {target} ({error.strerror or error}); check the disk space."
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error or type(error).__name__)
