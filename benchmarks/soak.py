"""The overnight soak: many hours of synthetic EEG at maximum speed through the full staging pipeline, with
resident memory and per-epoch latency recorded as the stream goes, to show that neither grows.

Nothing here keeps more than one interval's latencies: a soak that itself grew with time would hide the
growth it is looking for. Memory is judged from the end of the first interval on (the first one pays
for imports, allocator pools and the model's first calls).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.measure import MB, latency_summary, rss_bytes
from streamstage.errors import ConfigError
from streamstage.model.checkpoint import StagingModel
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG, synthetic_hypnogram

DERIVATIONS: dict[str, tuple[str, str | None]] = {"fpz-cz": ("Fpz-Cz", None), "muse": ("AF7", "TP9")}
"""The one channel staged per synthetic montage: (positive, reference)."""
RSS_TOLERANCE_MB = 5.0
"""Growth from the first interval to the last that still counts as flat (allocator noise)."""
LATENCY_TOLERANCE = 1.25
"""Ratio of the last quarter's median latency to the first quarter's that still counts as flat."""


def soak(
    model: StagingModel,
    hours: float,
    *,
    sfreq_hz: float = 256.0,
    montage: str = "fpz-cz",
    chunk_s: float = 1.0,
    interval_h: float = 1.0,
    seed: int = 0,
    on_interval: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Stream ``hours`` of synthetic EEG in ``chunk_s`` chunks; one row per ``interval_h`` of stream."""
    if montage not in DERIVATIONS:
        raise ConfigError(f"Unknown soak montage {montage!r}; use one of {', '.join(DERIVATIONS)}.")
    eeg = SyntheticEEG(synthetic_hypnogram(hours, seed), sfreq_hz, seed=seed, montage=montage)
    positive, reference = DERIVATIONS[montage]
    columns = [eeg.ch_names.index(positive), *([eeg.ch_names.index(reference)] if reference else [])]
    signs = np.array([1.0, -1.0][: len(columns)], dtype=np.float32)
    pipeline = StagingPipeline(model, sfreq_hz)
    interval_samples = round(interval_h * 3600 * sfreq_hz)
    rows: list[dict[str, Any]] = []
    latencies: list[float] = []
    wall_s, cpu_s, samples, interval_start, started = 0.0, 0.0, 0, 0, time.perf_counter()
    for chunk in eeg.iter_chunks(chunk_s):
        derived = (signs @ chunk[columns])[:, None]
        pushed, pushed_cpu = time.perf_counter(), time.thread_time()
        latencies.extend(epoch.latency_s for epoch in pipeline.push(derived))
        wall_s += time.perf_counter() - pushed
        cpu_s += time.thread_time() - pushed_cpu
        samples += chunk.shape[1]
        if samples >= (len(rows) + 1) * interval_samples or samples == eeg.n_samples:
            stream_s = (samples - interval_start) / sfreq_hz
            row = {
                "hours": samples / sfreq_hz / 3600,
                "stream_s": stream_s,
                "epochs": len(latencies),
                "rss_mb": rss_bytes() / MB,
                "latency_ms": latency_summary(latencies),
                "pipeline_s": wall_s,
                "cpu_ms_per_epoch": 1e3 * cpu_s / max(len(latencies), 1),
                "x_realtime": stream_s / max(wall_s, 1e-9),
            }
            rows.append(row)
            on_interval(row)
            latencies, wall_s, cpu_s, interval_start = [], 0.0, 0.0, samples
    return {
        "model": model.source,
        "hours": hours,
        "sfreq_hz": sfreq_hz,
        "montage": montage,
        "channel": positive if reference is None else f"{positive}-{reference}",
        "chunk_s": chunk_s,
        "epochs": pipeline.n_epochs,
        "elapsed_s": time.perf_counter() - started,
        "interval_h": interval_h,
        "intervals": rows,
        "flatness": flatness(rows),
    }


def flatness(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Memory and latency growth over the soak: last interval vs first (memory), last quarter of the
    intervals vs first quarter (median latency, and CPU time per epoch), and the least-squares RSS slope,
    first interval left out of the slope where there are enough.

    Wall-clock latency also moves with whatever else the machine runs; the pipeline thread's CPU time per
    epoch moves far less with it, so on a shared machine it is the better witness of growth in the work.
    """
    fitted = rows[1:] if len(rows) > 2 else rows
    rss = np.array([row["rss_mb"] for row in fitted])
    x_h = np.array([row["hours"] for row in fitted])
    slope = float(np.polyfit(x_h, rss, 1)[0]) if len(fitted) > 1 else 0.0
    latency_first_ms, latency_last_ms = _quarters(
        [row["latency_ms"]["median_ms"] for row in rows if row["epochs"]]
    )
    cpu_first_ms, cpu_last_ms = _quarters([row["cpu_ms_per_epoch"] for row in rows if row["epochs"]])
    growth_mb = rows[-1]["rss_mb"] - rows[0]["rss_mb"]
    return {
        "rss_first_mb": rows[0]["rss_mb"],
        "rss_last_mb": rows[-1]["rss_mb"],
        "rss_growth_mb": growth_mb,
        "rss_slope_mb_per_h": slope,
        "memory_flat": growth_mb < RSS_TOLERANCE_MB,
        "latency_first_median_ms": latency_first_ms,
        "latency_last_median_ms": latency_last_ms,
        "latency_ratio": latency_last_ms / latency_first_ms,
        "latency_flat": bool(latency_last_ms / latency_first_ms < LATENCY_TOLERANCE),
        "cpu_first_ms_per_epoch": cpu_first_ms,
        "cpu_last_ms_per_epoch": cpu_last_ms,
        "cpu_ratio": cpu_last_ms / cpu_first_ms,
        "cpu_flat": bool(cpu_last_ms / cpu_first_ms < LATENCY_TOLERANCE),
        "rss_tolerance_mb": RSS_TOLERANCE_MB,
        "latency_tolerance": LATENCY_TOLERANCE,
    }


def _quarters(values: list[float]) -> tuple[float, float]:
    """Median of the first and of the last quarter of ``values`` (at least one value each)."""
    if not values:
        return float("nan"), float("nan")
    quarter = max(1, len(values) // 4)
    return float(np.median(values[:quarter])), float(np.median(values[-quarter:]))
