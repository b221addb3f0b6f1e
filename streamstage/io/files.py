"""Atomic file replacement: readers see the old file or the new one, whole, never a torn write."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload`` via a temp file, fsync and rename."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
