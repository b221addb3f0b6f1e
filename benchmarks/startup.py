"""How long each command takes to start, in a fresh interpreter, and whether it imported torch.

A command that needs no model (``--help``, ``streams``, ``report``) should answer in well under half a
second; importing PyTorch alone costs about 2 s on a small machine, so the CLI imports a command's module
only when that command runs (see :mod:`streamstage.cli`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

COMMAND_LINES: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("streams", "--help"),
    ("streams", "--timeout", "0.1"),
    ("report", "--help"),
    ("bench", "--help"),
    ("stage", "--help"),
    ("run", "--help"),
)
"""``streams --timeout 0.1`` includes its 0.1 s of listening; ``run --help`` loads torch (run needs the
model)."""

_PROBE = """
import sys
from streamstage.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("torch imported" if "torch" in sys.modules else "no torch")
"""


def bench_startup(
    command_lines: Sequence[Sequence[str]] = COMMAND_LINES, repeats: int = 3
) -> list[dict[str, Any]]:
    """Median wall time of ``repeats`` runs of each command line (LSL as configured in this process)."""
    rows = []
    for argv in command_lines:
        seconds, imported = [], False
        for _ in range(repeats):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _PROBE, *argv],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            seconds.append(time.perf_counter() - started)
            imported = done.stderr.strip().endswith("torch imported")
        rows.append(
            {"command": " ".join(argv), "seconds": statistics.median(seconds), "imports_torch": imported}
        )
    return rows
