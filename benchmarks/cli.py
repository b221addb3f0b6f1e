"""The benchmark harness's command line: ``python -m benchmarks``, ``tools/bench.py`` and, from a source
checkout, ``streamstage bench`` all run :func:`run` (see docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import SECTIONS
from streamstage.errors import StreamstageError

DESCRIPTION = (
    "Measure the live path's per-epoch cost and memory after 1, 8, 24 and 72 h of stream, a causal "
    "Transformer of the same size (re-attending and KV-cached) on the same epochs, whole-night throughput "
    "(EDF file and LSL replay), many streams in one batch, a lab's beds stepped together and how many of "
    "them one core stages in real time, an archive staged on a process pool and on Dask, and YASA's "
    "offline staging when installed. "
    "Prints tables and writes JSON and Markdown to --out. Full sizes take about 5 minutes on 2 cores."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="toy sizes: a smoke run of a few seconds")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="folder for the results (default: %(default)s)",
    )
    parser.add_argument(
        "--sections",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=list(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default: 1, what one live stream should use; tiny per-epoch ops only "
        "lose from more threads, badly so on a busy machine)",
    )
    parser.add_argument(
        "--model", type=Path, help="checkpoint to time (default: the shipped model, else an untrained one)"
    )


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at the top: the parser (and `streamstage bench --help`) need no torch
    from rich.console import Console

    from benchmarks.inputs import bench_model
    from benchmarks.report import bench_tables, machine_caption, write_results
    from benchmarks.runner import FULL, QUICK, run_benchmarks

    console = Console()
    torch.set_num_threads(args.threads)
    if "lsl" in args.sections:
        from streamstage.lsl.scope import configure_lsl

        configure_lsl(loopback_only=True)
    model = bench_model(args.model)
    started = time.perf_counter()
    results = run_benchmarks(
        model,
        QUICK if args.quick else FULL,
        args.sections,
        progress=lambda name: console.print(f"[dim]bench: {name} ({time.perf_counter() - started:.0f} s)[/]"),
    )
    results["quick"] = args.quick
    results["elapsed_s"] = time.perf_counter() - started
    tables = bench_tables(results)
    for table in tables:
        console.print(table.to_rich())
    caption = machine_caption(results["machine"], results.get("load_average_after"))
    console.print(caption)
    stem = "bench-quick" if args.quick else "bench"
    markdown = "\n".join([caption, "", *(table.to_markdown() for table in tables)])
    written = write_results(args.out, stem, json.dumps(results, indent=2), markdown)
    console.print(f"wrote {', '.join(str(path) for path in written)} in {results['elapsed_s']:.0f} s")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except StreamstageError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
