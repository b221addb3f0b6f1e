"""Benchmark the pure-PyTorch Mamba stack: step latency, streaming throughput, whole-sequence forward.

Live staging needs one step per 30-s epoch, so any latency below a second is plenty; the numbers that
matter are for offline work (training, evaluating a cohort), where ``forward`` runs whole nights, and for
how many streams (beds, headbands) one machine can step at once. The scan rows compare the blocked
parallel scan with the token-loop reference on one layer's real shapes.

    python tools/bench_mamba.py --out results.json            # full run (about a minute on 2 idle cores)
    python tools/bench_mamba.py --quick --out results.json    # fewer step/streaming repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from streamstage.model import MambaStack, selective_scan, selective_scan_ref

STREAM_CHUNKS = (1, 30, 1000)
FORWARD_LENGTHS = (1_000, 10_000, 100_000)
REFERENCE_MAX_LENGTH = 10_000  # the token loop takes minutes at 100k


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="fewer step and streaming repeats")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MambaStack(args.d_model, args.layers, d_state=args.d_state).eval()
    results = run(model, quick=args.quick)
    show(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        Console().print(f"wrote {args.out}")


def run(model: MambaStack, quick: bool) -> dict[str, Any]:
    with torch.no_grad():
        return {
            "machine": _machine(),
            "model": _describe(model),
            "quick": quick,
            "state_bytes_per_stream": model.init_state(1).nbytes,
            "step_latency_ms": {
                f"batch_{batch}": _step_latency(model, batch, calls=200 if quick else 2000)
                for batch in (1, 16)
            },
            "stream_inputs_per_s": {
                str(chunk): _stream_rate(model, chunk, total=3000 if quick else 30_000)
                for chunk in STREAM_CHUNKS
            },
            "forward": [
                _forward_times(model, length, reference=length <= REFERENCE_MAX_LENGTH)
                for length in FORWARD_LENGTHS
            ],
        }


def _step_latency(model: MambaStack, batch: int, calls: int) -> dict[str, float]:
    state = model.init_state(batch)
    inputs = torch.randn(calls, batch, model.d_model)
    for x in inputs[:20]:  # warm-up
        _, state = model.step(x, state)
    times = []
    for x in inputs:
        start = time.perf_counter()
        _, state = model.step(x, state)
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "median": 1e3 * statistics.median(times),
        "p99": 1e3 * times[min(len(times) - 1, int(0.99 * len(times)))],
        "calls": calls,
    }


def _stream_rate(model: MambaStack, chunk: int, total: int) -> float:
    n_chunks = max(1, total // chunk)
    inputs = torch.randn(1, n_chunks * chunk, model.d_model)
    state = model.init_state(1)
    model.step(inputs[:, :chunk], state)  # warm-up
    start = time.perf_counter()
    for i in range(n_chunks):
        _, state = model.step(inputs[:, i * chunk : (i + 1) * chunk], state)
    return n_chunks * chunk / (time.perf_counter() - start)


def _forward_times(model: MambaStack, length: int, reference: bool) -> dict[str, Any]:
    x = torch.randn(1, length, model.d_model)
    scan_args = _scan_args(model, length)
    scan_s = _seconds(lambda: selective_scan(**scan_args))
    ref_s = _seconds(lambda: selective_scan_ref(**scan_args)) if reference else None
    return {
        "length": length,
        "forward_s": _seconds(lambda: model(x)),
        "scan_s": scan_s,
        "scan_loop_reference_s": ref_s,
        "scan_speedup": ref_s / scan_s if ref_s else None,
    }


def _scan_args(model: MambaStack, length: int) -> dict[str, Any]:
    """One layer's scan inputs at their real shapes and magnitudes (delta through the model's softplus)."""
    mixer = model.layers[0].mixer
    d_inner, d_state = mixer.d_inner, mixer.d_state
    return {
        "u": torch.randn(1, length, d_inner),
        "delta": torch.randn(1, length, d_inner),
        "A": -torch.exp(mixer.A_log.float()),
        "B": torch.randn(1, length, d_state),
        "C": torch.randn(1, length, d_state),
        "D": mixer.D,
        "z": torch.randn(1, length, d_inner),
        "delta_bias": mixer.dt_proj.bias,
        "delta_softplus": True,
    }


def _seconds(fn: Callable[[], object]) -> float:
    """Best of a few runs after a warm-up, capped so a slow run is timed once."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    best = first
    for _ in range(2 if first < 1.0 else 0):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _describe(model: MambaStack) -> dict[str, Any]:
    mixer = model.layers[0].mixer
    return {
        "d_model": model.d_model,
        "n_layers": len(model.layers),
        "d_state": mixer.d_state,
        "d_conv": mixer.d_conv,
        "expand": mixer.expand,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def show(results: dict[str, Any]) -> None:
    console = Console()
    m, spec = results["machine"], results["model"]
    console.print(
        f"{m['platform']} | {m['cpu_count']} CPUs, {m['torch_threads']} torch threads | torch {m['torch']}\n"
        f"MambaStack d_model={spec['d_model']} layers={spec['n_layers']} d_state={spec['d_state']} "
        f"({spec['parameters']:,} parameters); state {results['state_bytes_per_stream']:,} bytes per stream"
    )
    table = Table("measure", "value", title="step and streaming (batch of streams, one call)")
    for name, lat in results["step_latency_ms"].items():
        table.add_row(f"step latency, {name}", f"median {lat['median']:.3f} ms, p99 {lat['p99']:.3f} ms")
    for chunk, rate in results["stream_inputs_per_s"].items():
        table.add_row(f"stream, chunks of {chunk}", f"{rate:,.0f} inputs/s")
    console.print(table)
    table = Table(
        "length", "forward (s)", "scan (s)", "loop scan (s)", "scan speed-up", title="whole sequences"
    )
    for row in results["forward"]:
        ref = row["scan_loop_reference_s"]
        table.add_row(
            f"{row['length']:,}",
            f"{row['forward_s']:.3f}",
            f"{row['scan_s']:.3f}",
            "-" if ref is None else f"{ref:.3f}",
            "-" if ref is None else f"{row['scan_speedup']:.1f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
