"""What every benchmark records: latency summaries, resident memory, and the machine it ran on.

Numbers from a shared 2-core laptop-class CPU are only meaningful next to the machine, the torch thread
count and the load while they were taken, so every result carries :func:`machine_info`.
"""

from __future__ import annotations

import os
import platform
import resource
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch

EPOCHS_PER_HOUR = 120
MB = 1024 * 1024


def rss_bytes() -> int:
    """Resident memory of this process now (``/proc/self/statm``), or its peak where /proc is missing."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The process's resident-memory high-water mark (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median, 99th percentile and mean of per-epoch durations, in milliseconds."""
    values_ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if values_ms.size == 0:
        return {"n": 0, "median_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": int(values_ms.size),
        "median_ms": float(np.median(values_ms)),
        "p99_ms": float(np.percentile(values_ms, 99)),
        "mean_ms": float(values_ms.mean()),
    }


def at_marks(
    step: Callable[[int], Mapping[str, float]],
    marks_epochs: Sequence[int],
    window: int,
    snapshot: Callable[[], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Run ``step(i)`` for epochs ``0 .. max(marks) - 1``; at each mark, summarise the last ``window`` epochs.

    ``step`` returns its own timed parts (seconds by name), so setup it does not time stays out of them;
    ``snapshot`` adds what is measured at the mark itself (memory, state size). Only ``window`` durations
    per part are kept, so the bench itself does not grow with the stream it simulates.
    """
    marks = sorted(set(marks_epochs))
    recent: dict[str, deque[float]] = {}
    rows = []
    for index in range(marks[-1]):
        for name, seconds in step(index).items():
            recent.setdefault(name, deque(maxlen=window)).append(seconds)
        if index + 1 in marks:
            row: dict[str, Any] = {"epochs": index + 1, "hours": (index + 1) / EPOCHS_PER_HOUR}
            row.update({f"{name}_ms": latency_summary(values) for name, values in recent.items()})
            row.update(snapshot())
            rows.append(row)
    return rows


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (or what ``platform`` knows elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine, library versions, torch threads and load average: the context every number needs."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
