"""Overnight soak: stream many hours of synthetic EEG at maximum speed through the full staging pipeline and
record resident memory and per-epoch latency every simulated hour, to show that both stay flat.

    python tools/soak.py                 # 72 h (see docs/benchmarks.md for how long that takes)
    python tools/soak.py --hours 24 --out bench-results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))  # the harness (benchmarks/) is not installed with the package
    import torch
    from rich.console import Console

    from benchmarks.inputs import bench_model
    from benchmarks.measure import machine_info
    from benchmarks.report import machine_caption, soak_table, write_results
    from benchmarks.soak import DERIVATIONS, soak
    from streamstage.errors import StreamstageError

    parser = argparse.ArgumentParser(
        prog="tools/soak.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=72.0, help="hours of stream (default: %(default)g)")
    parser.add_argument(
        "--sfreq", type=float, default=256.0, help="sampling rate in Hz (default: %(default)g)"
    )
    parser.add_argument("--montage", choices=sorted(DERIVATIONS), default="fpz-cz", help="synthetic montage")
    parser.add_argument("--chunk-s", type=float, default=1.0, help="seconds per pushed chunk, as from LSL")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--model", type=Path, help="checkpoint (default: shipped model, else untrained)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for the JSON")
    args = parser.parse_args(argv)
    console = Console()
    torch.set_num_threads(args.threads)
    try:
        model = bench_model(args.model)
        machine = machine_info()
        started = time.perf_counter()

        def progress(row: dict) -> None:
            latency = row["latency_ms"]
            console.print(
                f"{row['hours']:6.1f} h  RSS {row['rss_mb']:7.1f} MiB  median {latency['median_ms']:.2f} ms  "
                f"p99 {latency['p99_ms']:6.2f} ms  ({time.perf_counter() - started:.0f} s)"
            )

        result = soak(
            model,
            args.hours,
            sfreq_hz=args.sfreq,
            montage=args.montage,
            chunk_s=args.chunk_s,
            on_interval=progress,
        )
        result["machine"] = machine
        table = soak_table(result)
        caption = machine_caption(machine)
        console.print(table.to_rich())
        console.print(caption)
        written = write_results(
            args.out,
            f"soak-{args.hours:g}h",
            json.dumps(result, indent=2),
            f"{caption}\n\n{table.to_markdown()}",
        )
    except StreamstageError as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 1
    console.print(f"wrote {', '.join(str(path) for path in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
