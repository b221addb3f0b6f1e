"""Which recordings a batch stages, and which folder each one's night goes to.

Inputs are paths, globs or folders (searched recursively). A folder or glob keeps only recordings
(EDF/EDF+, BDF/BDF+, and XDF where pyxdf is installed); a file named on its own is taken as given, so a
wrong suffix fails in its own row of the summary instead of vanishing from the batch.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from streamstage.errors import InputFileError

EDF_SUFFIXES = (".edf", ".bdf")
XDF_SUFFIX = ".xdf"
_GLOB_CHARACTERS = frozenset("*?[")


def recording_suffixes() -> tuple[str, ...]:
    """The suffixes a folder or glob picks up: XDF only where pyxdf can read it."""
    has_pyxdf = importlib.util.find_spec("pyxdf") is not None
    return (*EDF_SUFFIXES, XDF_SUFFIX) if has_pyxdf else EDF_SUFFIXES


def is_glob(text: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in text)


def discover_recordings(inputs: Sequence[str | Path]) -> list[Path]:
    """The recordings the inputs name, each once, in the order given (a folder's or glob's sorted).

    An input that names nothing raises :class:`InputFileError` before anything is staged: a typo in an
    archive path should not pass as an empty batch.
    """
    suffixes = recording_suffixes()
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if is_glob(text):
            matches = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
            files = [p for m in matches for p in (_walk(m, suffixes) if m.is_dir() else [m])]
            files = [p for p in files if p.suffix.lower() in suffixes]
        elif path.is_dir():
            files = _walk(path, suffixes)
        elif path.is_file():
            files = [path]
        else:
            raise InputFileError(f"{text} does not exist; give recordings, folders or globs that do.")
        if not files:
            raise InputFileError(
                f"{text} holds no recording ({', '.join(suffixes)}); check the path or the pattern."
            )
        found.update((file.resolve(), None) for file in files)
    return list(found)


def _walk(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def night_folder_names(recordings: Sequence[Path]) -> dict[Path, str]:
    """A folder name per recording: its stem, or where two recordings share a stem (``night1.edf`` in
    two subjects' folders), the stem and a short hash of the full path, so the same inputs get the same
    folders on every run (which is what lets a second run find the nights the first one finished)."""
    counts = Counter(path.stem.lower() for path in recordings)
    return {
        path: path.stem if counts[path.stem.lower()] == 1 else f"{path.stem}-{_path_tag(path)}"
        for path in recordings
    }


def _path_tag(path: Path) -> str:
    return hashlib.sha1(str(path).encode()).hexdigest()[:8]
