"""Run the benchmark sections at full or quick sizes and gather one JSON-able result.

Full sizes finish in well under 15 minutes on a 2-core CPU; ``QUICK`` is a smoke run of a few seconds
that exercises every section at toy sizes. Sections that need the synthetic night (file pipeline, LSL
replay, YASA) share one, written once to a temporary EDF.
"""

from __future__ import annotations

import cProfile
import os
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import SECTIONS
from benchmarks.archive_throughput import bench_archive
from benchmarks.batching import bench_batching
from benchmarks.inputs import CHANNEL, epoch_tokens, synthetic_epochs, synthetic_night, write_night_edf
from benchmarks.lab_beds import bench_lab
from benchmarks.live_path import bench_live_path
from benchmarks.lsl_throughput import bench_lsl_replay
from benchmarks.mamba_step import bench_mamba_steps
from benchmarks.measure import EPOCHS_PER_HOUR, machine_info
from benchmarks.startup import bench_startup
from benchmarks.throughput import bench_file_pipeline, profile_summary, profiled
from benchmarks.transformer_cost import bench_transformer
from benchmarks.yasa_peer import bench_yasa
from streamstage.errors import ConfigError
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel
from streamstage.model.ensemble import networks

NIGHT_SECTIONS = frozenset({"file", "lsl", "yasa"})
RAM_FOLDER = Path("/dev/shm")
"""Where an LSL row keeps its night folder in memory (fsync free), to show what the disk costs."""


@dataclass(frozen=True)
class BenchSizes:
    """How much each section measures."""

    marks_h: tuple[float, ...] = (1.0, 8.0, 24.0, 72.0)
    window_epochs: int = 200
    """Epochs summarised before each mark (live path and KV cache)."""
    reattend_steps: int = 5
    """Epochs timed at each mark for the re-attending Transformer."""
    distinct_epochs: int = 60
    batch_sizes: tuple[int, ...] = (1, 16, 128)
    batch_steps: int = 200
    lab_beds: tuple[int, ...] = (1, 8, 32, 128)
    """Beds due together: their batched step through the lab against as many separate steps."""
    lab_rounds: int = 50
    lab_realtime_beds: tuple[int, ...] = (8, 32, 64, 128, 192, 256)
    """Beds handed an epoch at once, through their whole night as the lab runs it, for beds per core."""
    lab_realtime_rounds: int = 4
    night_h: float = 8.0
    night_sfreq_hz: float = 256.0
    profile_h: float = 1.0
    startup_repeats: int = 3
    night_runs: int = 2
    """Runs of the file and LSL nights; the fastest is reported (on a shared machine the others' load
    only ever adds time), all of them are kept in the JSON."""
    lsl_chunk_s: float = 30.0
    """What the LSL replay pushes at once (a run at the live default, 1 s, beside it)."""
    archive_nights: int = 8
    archive_hours: float = 2.0
    archive_repeats: int = 3
    archive_workers: tuple[int, ...] = (1, 2)
    """``stage`` on an archive of synthetic nights: a process pool and a Dask LocalCluster, per count."""

    @property
    def marks_epochs(self) -> tuple[int, ...]:
        return tuple(max(1, round(hours * EPOCHS_PER_HOUR)) for hours in self.marks_h)


FULL = BenchSizes()
QUICK = BenchSizes(
    marks_h=(0.1, 0.2, 0.4),
    window_epochs=8,
    reattend_steps=2,
    distinct_epochs=10,
    batch_sizes=(1, 4, 16),
    batch_steps=10,
    lab_beds=(1, 4),
    lab_rounds=3,
    lab_realtime_beds=(2, 4),
    lab_realtime_rounds=1,
    night_h=0.25,
    profile_h=0.1,
    startup_repeats=1,
    night_runs=1,
    archive_nights=2,
    archive_hours=0.05,
    archive_repeats=1,
    archive_workers=(1,),
)


def run_benchmarks(
    model: StagingModel,
    sizes: BenchSizes = FULL,
    sections: Sequence[str] = SECTIONS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every requested section, in :data:`SECTIONS` order, with the machine and sizes they ran with.

    The ``lsl`` section expects LSL to be configured already (``streamstage bench`` calls
    ``configure_lsl(loopback_only=True)``), so that no packet leaves this machine.
    """
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"Unknown bench section(s) {', '.join(unknown)}; pick from {', '.join(SECTIONS)}.")
    wanted = [name for name in SECTIONS if name in sections]
    results: dict[str, Any] = {"machine": machine_info(), "model": model.source, "sizes": asdict(sizes)}
    epochs = synthetic_epochs(sizes.distinct_epochs, len(model.channels))
    tokens = epoch_tokens(epochs, max(sizes.marks_epochs))
    network = networks(model.net)[0]  # many streams: one network (the Mamba step times both)
    long_stream = {
        "live": lambda: bench_live_path(model, epochs, sizes.marks_epochs, sizes.window_epochs),
        "mamba": lambda: bench_mamba_steps(model.net, tokens, sizes.marks_epochs, sizes.window_epochs),
        "transformer": lambda: bench_transformer(
            model, tokens, sizes.marks_epochs, sizes.window_epochs, sizes.reattend_steps
        ),
        "batching": lambda: bench_batching(network, tokens, sizes.batch_sizes, sizes.batch_steps),
        "lab": lambda: bench_lab(
            model,
            epoch_features(epochs),
            sizes.lab_beds,
            sizes.lab_rounds,
            sizes.lab_realtime_beds,
            sizes.lab_realtime_rounds,
        ),
    }
    for name in wanted:
        if name in long_stream:
            progress(name)
            results[name] = long_stream[name]()
    if NIGHT_SECTIONS & set(wanted):
        results.update(_night_sections(model, sizes, [n for n in wanted if n in NIGHT_SECTIONS], progress))
    if "archive" in wanted:
        progress("archive")
        results["archive"] = bench_archive(
            sizes.archive_nights, sizes.archive_hours, sizes.archive_repeats, sizes.archive_workers
        )
    if "startup" in wanted:
        progress("startup")
        results["startup"] = bench_startup(repeats=sizes.startup_repeats)
    if "mamba" in results and "transformer" in results:
        results["comparison"] = compare(results["mamba"], results["transformer"])
    results["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return results


def _night_sections(
    model: StagingModel, sizes: BenchSizes, wanted: Sequence[str], progress: Callable[[str], None]
) -> dict[str, Any]:
    """File pipeline, LSL replay and YASA on one synthetic night; the two pipelines are also profiled, on a
    shorter night of ``sizes.profile_h`` (cProfile's overhead would distort the timed run)."""
    night_uv = synthetic_night(sizes.night_h, sizes.night_sfreq_hz)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="streamstage-bench-") as folder:
        night = write_night_edf(Path(folder) / "night.edf", night_uv, sizes.night_sfreq_hz)
        short_uv = synthetic_night(sizes.profile_h, sizes.night_sfreq_hz, seed=1)
        short = write_night_edf(Path(folder) / "short.edf", short_uv, sizes.night_sfreq_hz)
        if "file" in wanted:
            progress("file")
            results["file"] = _best_of(sizes.night_runs, lambda: bench_file_pipeline(model, night, CHANNEL))
            profile = profiled(lambda: bench_file_pipeline(model, short, CHANNEL), sizes.profile_h)
            results["file"]["profile"] = profile
        if "lsl" in wanted:
            progress("lsl")
            pull = sizes.lsl_chunk_s
            results["lsl"] = _best_of(
                sizes.night_runs, lambda: bench_lsl_replay(model, night, CHANNEL, _stream_name(), pull)
            )
            results["lsl_live_chunks"] = bench_lsl_replay(model, night, CHANNEL, _stream_name())
            if RAM_FOLDER.is_dir():
                results["lsl_ram"] = bench_lsl_replay(model, night, CHANNEL, _stream_name(), pull, RAM_FOLDER)
            profiler = cProfile.Profile()  # over the night itself, not the stream's resolution before it
            bench_lsl_replay(model, short, CHANNEL, _stream_name(), pull, profiler=profiler)
            results["lsl"]["profile"] = profile_summary(profiler, sizes.profile_h)
    if "yasa" in wanted:
        progress("yasa")
        results["yasa"] = bench_yasa(night_uv, sizes.night_sfreq_hz, CHANNEL)
    return results


def _best_of(runs: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fastest of ``runs`` results (by ``seconds``), with every run's seconds in ``runs_s``."""
    results = [run() for _ in range(max(1, runs))]
    best = min(results, key=lambda result: result["seconds"])
    return {**best, "runs_s": [result["seconds"] for result in results]}


def _stream_name() -> str:
    """A stream name no other process (or earlier section) publishes."""
    return f"streamstage-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def compare(mamba: dict[str, Any], transformer: dict[str, Any]) -> list[dict[str, Any]]:
    """Per mark: each model's median step and held state, and every step's ratio to the fast Mamba step of
    the whole model (the KV cache's also to one network's)."""
    rows = []
    for step, kv, reattend in zip(
        mamba["marks"], transformer["kv_cache"], transformer["reattend"], strict=True
    ):
        fast_ms = step["fast_step_ms"]["median_ms"]
        medians = {
            "mamba_fast_step_median_ms": fast_ms,
            "mamba_network_fast_step_median_ms": step["network_fast_step_ms"]["median_ms"],
            "mamba_reference_step_median_ms": step["reference_step_ms"]["median_ms"],
            "kv_cache_step_median_ms": kv["step_ms"]["median_ms"],
            "reattend_step_median_ms": reattend["step_ms"]["median_ms"],
        }
        rows.append(
            {
                "hours": step["hours"],
                **medians,
                "mamba_reference_time_ratio": medians["mamba_reference_step_median_ms"] / fast_ms,
                "kv_cache_time_ratio": medians["kv_cache_step_median_ms"] / fast_ms,
                "kv_cache_network_time_ratio": medians["kv_cache_step_median_ms"]
                / medians["mamba_network_fast_step_median_ms"],
                "reattend_time_ratio": medians["reattend_step_median_ms"] / fast_ms,
                "mamba_state_bytes": step["state_bytes"],
                "kv_cache_bytes": kv["state_bytes"],
                "kv_cache_memory_ratio": kv["state_bytes"] / step["state_bytes"],
            }
        )
    return rows
