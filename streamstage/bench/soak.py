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

from streamstage.bench.measure import MB, latency_summary, rss_bytes
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
    wall_s, samples, interval_start, started = 0.0, 0, 0, time.perf_counter()
    for chunk in eeg.iter_chunks(chunk_s):
        derived = (signs @ chunk[columns])[:, None]
        pushed = time.perf_counter()
        latencies.extend(epoch.latency_s for epoch in pipeline.push(derived))
        wall_s += time.perf_counter() - pushed
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
                "x_realtime": stream_s / max(wall_s, 1e-9),
            }
            rows.append(row)
            on_interval(row)
            latencies, wall_s, interval_start = [], 0.0, samples
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
    intervals vs first quarter (median latency), and the least-squares RSS slope, first interval left out
    of the slope where there are enough."""
    fitted = rows[1:] if len(rows) > 2 else rows
    rss = np.array([row["rss_mb"] for row in fitted])
    x_h = np.array([row["hours"] for row in fitted])
    slope = float(np.polyfit(x_h, rss, 1)[0]) if len(fitted) > 1 else 0.0
    quarter = max(1, len(rows) // 4)
    medians = [row["latency_ms"]["median_ms"] for row in rows if row["epochs"]]
    first_ms = float(np.median(medians[:quarter])) if medians else float("nan")
    last_ms = float(np.median(medians[-quarter:])) if medians else float("nan")
    growth_mb = rows[-1]["rss_mb"] - rows[0]["rss_mb"]
    return {
        "rss_first_mb": rows[0]["rss_mb"],
        "rss_last_mb": rows[-1]["rss_mb"],
        "rss_growth_mb": growth_mb,
        "rss_slope_mb_per_h": slope,
        "memory_flat": growth_mb < RSS_TOLERANCE_MB,
        "latency_first_median_ms": first_ms,
        "latency_last_median_ms": last_ms,
        "latency_ratio": last_ms / first_ms,
        "latency_flat": bool(last_ms / first_ms < LATENCY_TOLERANCE),
        "rss_tolerance_mb": RSS_TOLERANCE_MB,
        "latency_tolerance": LATENCY_TOLERANCE,
    }
