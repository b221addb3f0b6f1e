"""Archive throughput: nights staged per minute by ``streamstage stage`` on 1 and 2 workers, on the local
process pool and on a Dask LocalCluster bound to 127.0.0.1, and how it scales from 1 worker to 2.

python -m benchmarks.archive_throughput                       # 8 synthetic nights of 2 h
python -m benchmarks.archive_throughput --nights 4 --hours 1  # smoke run

A pool run's time includes starting its worker processes (each imports PyTorch and loads the model once),
as a user's run does; a Dask cluster is started before its runs are timed (its start is reported apart),
as a cluster is there before work is sent to it. Prints a table and writes docs/results/archive_bench.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edfio
import numpy as np
from rich.console import Console

from benchmarks.report import archive_table
from streamstage.archive import DaskCluster, LocalPool, StagingOptions, stage_archive
from streamstage.archive.runners import Runner
from streamstage.sim import SyntheticEEG
from streamstage.sim.hypnogram import synthetic_hypnogram

SFREQ = 100.0
DEFAULT_JSON = Path(__file__).resolve().parents[1] / "docs" / "results" / "archive_bench.json"


@dataclass(frozen=True)
class Measurement:
    runner: str
    workers: int
    nights: int
    wall_s: float
    startup_s: float
    staging_s_per_night: float
    cpu_s_per_night: float
    load_1min: float

    @property
    def nights_per_min(self) -> float:
        return 60.0 * self.nights / self.wall_s


def write_synthetic_archive(folder: Path, nights: int, hours: float) -> list[Path]:
    """``nights`` single-channel EDF nights (Fpz-Cz, 100 Hz) with realistic stage sequences."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(nights):
        samples = SyntheticEEG(synthetic_hypnogram(hours, seed=seed), SFREQ, seed=seed).generate()[0]
        signal = edfio.EdfSignal(
            samples.astype(np.float64),
            SFREQ,
            label="EEG Fpz-Cz",
            physical_dimension="uV",
            physical_range=(-2000, 2000),
        )
        path = folder / f"night{seed:02d}.edf"
        edfio.Edf([signal]).write(path)
        paths.append(path)
    return paths


def time_batch(
    runner_name: str, workers: int, runner: Runner, archive: Path, out: Path, startup_s: float = 0.0
) -> Measurement:
    """Stage the whole archive into a fresh ``out`` on ``runner`` and time it."""
    console = Console(file=io.StringIO(), force_terminal=False)
    started = time.perf_counter()
    results = stage_archive([archive], out, StagingOptions(), runner, console)
    wall_s = time.perf_counter() - started
    failed = [r for r in results if r.failed]
    if failed:
        raise SystemExit(f"{runner_name}: {len(failed)} nights failed, first: {failed[0].error}")
    per_night = sum(r.seconds for r in results) / len(results)
    cpu_per_night = sum(r.cpu_s for r in results) / len(results)
    load = os.getloadavg()[0]
    return Measurement(runner_name, workers, len(results), wall_s, startup_s, per_night, cpu_per_night, load)


def measure(
    archive: Path, scratch: Path, worker_counts: list[int], repeats: int, with_dask: bool = True
) -> list[Measurement]:
    """Every configuration ``repeats`` times, interleaved (so a change in the machine's load touches all
    of them alike); per configuration the run of median wall time. ``with_dask`` False: the pool only."""
    runs: dict[tuple[str, int], list[Measurement]] = {}
    for repeat in range(repeats):
        for workers in worker_counts:
            out = scratch / f"pool{workers}-{repeat}"
            runs.setdefault(("process pool", workers), []).append(
                time_batch("process pool", workers, LocalPool(workers), archive, out)
            )
            if not with_dask:
                continue
            from distributed import LocalCluster

            started = time.perf_counter()
            with LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                startup_s = time.perf_counter() - started
                dask = DaskCluster(cluster.scheduler_address)
                out = scratch / f"dask{workers}-{repeat}"
                runs.setdefault(("dask", workers), []).append(
                    time_batch("dask", workers, dask, archive, out, startup_s)
                )
    ordered = sorted(runs.items(), key=lambda item: (item[0][1], item[0][0] != "process pool"))
    return [sorted(group, key=lambda m: m.wall_s)[len(group) // 2] for _, group in ordered]


def scaling(measurements: list[Measurement]) -> dict[str, float]:
    """Per runner: throughput on the most workers measured over throughput on one."""
    ratios = {}
    for runner in dict.fromkeys(m.runner for m in measurements):
        rows = sorted((m for m in measurements if m.runner == runner), key=lambda m: m.workers)
        if len(rows) > 1 and rows[0].workers == 1:
            ratios[runner] = rows[-1].nights_per_min / rows[0].nights_per_min
    return ratios


def bench_archive(nights: int, hours: float, repeats: int, worker_counts: Sequence[int]) -> dict[str, Any]:
    """Stage ``nights`` synthetic nights of ``hours`` on a process pool and on a Dask LocalCluster
    (127.0.0.1) with each worker count, ``repeats`` times each: the runs of median wall time, the scaling."""
    with_dask = importlib.util.find_spec("distributed") is not None
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as scratch:
        archive = Path(scratch) / "archive"
        write_synthetic_archive(archive, nights, hours)
        measurements = measure(archive, Path(scratch), list(worker_counts), repeats, with_dask)
    ratios = scaling(measurements)
    return {
        **({} if with_dask else {"skipped": "Dask skipped: pip install 'streamstage[dask]' to include it."}),
        "nights": nights,
        "hours_per_night": hours,
        "repeats": repeats,
        "statistic": "per configuration, the run of median wall time",
        "cpus": os.cpu_count(),
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "measurements": [{**m.__dict__, "nights_per_min": round(m.nights_per_min, 2)} for m in measurements],
        "scaling_2_over_1": {runner: round(ratio, 3) for runner, ratio in ratios.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.archive_throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--nights", type=int, default=8, help="synthetic nights in the archive (default 8)")
    parser.add_argument("--hours", type=float, default=2.0, help="hours per night (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (default 3)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write (default {DEFAULT_JSON})"
    )
    args = parser.parse_args(argv)
    worker_counts = [int(n) for n in args.workers.split(",")]
    result = bench_archive(args.nights, args.hours, args.repeats, worker_counts)
    console = Console()
    console = console if console.is_terminal else Console(width=110)  # a log keeps the table whole
    console.print(archive_table(result).to_rich())
    payload = {
        "benchmark": "archive_throughput",
        **result,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
