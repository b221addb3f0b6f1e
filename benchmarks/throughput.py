"""Whole-night throughput of the file pipeline (EDF -> signal path -> features -> model), as a multiple of
real time, and a profiler that names where the time goes (for this path and the LSL one).

The target is an 8-hour night in 2 s or less on one core (14,400x real time, ahead of YASA's offline
staging of the same night); when a machine misses it, the profile's top entries say what to make faster.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import latency_summary
from streamstage.model.checkpoint import StagingModel
from streamstage.offline import RecordingSource, stage_recording

TARGET_X_REALTIME = 14_400.0


def bench_file_pipeline(model: StagingModel, path: Path, channel: str) -> dict[str, Any]:
    """Stage the whole recording with :func:`stage_recording`, opening the file included."""
    started = time.perf_counter()
    source = RecordingSource.open(path, [channel])
    staged = stage_recording(source, model)
    seconds = time.perf_counter() - started
    duration_s = source.recording.duration_s
    x_realtime = duration_s / seconds
    return {
        "hours": duration_s / 3600,
        "sfreq_hz": source.sfreq,
        "epochs": len(staged),
        "seconds": seconds,
        "x_realtime": x_realtime,
        "meets_target": x_realtime >= TARGET_X_REALTIME,
        "target_x_realtime": TARGET_X_REALTIME,
        "epoch_latency_ms": latency_summary([epoch.latency_s for epoch in staged]),
    }


def profiled(run: Callable[[], object], hours: float, top: int = 12) -> dict[str, Any]:
    """cProfile ``run`` (staging ``hours`` of recording, in this thread); the ``top`` functions by own
    time, which is where the CPU actually is, with their cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
    return profile_summary(profiler, hours, top)


def profile_summary(profiler: cProfile.Profile, hours: float, top: int = 12) -> dict[str, Any]:
    """The ``top`` functions of a finished profile by own time, with their cumulative time."""
    stats = pstats.Stats(profiler)
    total_s = stats.total_tt  # type: ignore[attr-defined]
    ranked = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    return {
        "hours": hours,
        "total_s": total_s,
        "top": [
            {
                "function": _function_name(key),
                "calls": calls,
                "own_s": own_s,
                "cumulative_s": cumulative_s,
                "own_share": own_s / total_s if total_s else 0.0,
            }
            for key, (_, calls, own_s, cumulative_s, _) in ranked[:top]
        ],
    }


def _function_name(key: tuple[str, int, str]) -> str:
    """``package/module.py:line(function)`` with the site-packages prefix cut off, or ``{built-in}``."""
    filename, line, function = key
    if filename == "~":
        return function
    parts = Path(filename).parts
    for anchor in ("site-packages", "streamstage"):
        if anchor in parts:
            keep = parts[parts.index(anchor) + (anchor == "site-packages") :]
            return f"{'/'.join(keep)}:{line}({function})"
    return f"{Path(filename).name}:{line}({function})"
