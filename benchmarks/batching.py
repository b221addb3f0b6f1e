"""Many streams at once: one batched Mamba step for every bed (or headband) of a sleep lab.

A batch of B streams steps together, each with its own state row, through ``StagingNet.step`` (PyTorch,
the reference) and through :class:`~streamstage.model.fast_step.FastStepper`. The per-stream cost is the
batch's cost over B; the state grows with B, never with time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.measure import latency_summary
from streamstage.model.fast_step import FastStepper
from streamstage.model.stager import StagingNet


def bench_batch(net: StagingNet, tokens: np.ndarray, batch: int, n_steps: int, warmup: int) -> dict[str, Any]:
    """Time ``n_steps`` batched steps of ``batch`` streams over ``tokens`` ``(n, n_channels, 10)``, through
    the reference step, then (in a loop of its own) the fast step."""
    offsets = np.arange(batch)  # each stream at another point of the night
    rows = [
        np.ascontiguousarray(tokens[(index + offsets) % len(tokens)]) for index in range(warmup + n_steps)
    ]
    state = net.init_state(batch)
    reference = []
    for index, features in enumerate(rows):
        inputs = torch.from_numpy(features[:, None])
        started = time.perf_counter()
        with torch.no_grad():
            _, state = net.step(inputs, state)
        if index >= warmup:
            reference.append(time.perf_counter() - started)
    fast, fast_durations = FastStepper.from_net(net, batch), []
    for index, features in enumerate(rows):
        started = time.perf_counter()
        fast.step(features)
        if index >= warmup:
            fast_durations.append(time.perf_counter() - started)
    per_batch, fast_batch = latency_summary(reference), latency_summary(fast_durations)
    return {
        "streams": batch,
        "batch_ms": per_batch,
        "fast_batch_ms": fast_batch,
        "per_stream_median_ms": per_batch["median_ms"] / batch,
        "fast_per_stream_median_ms": fast_batch["median_ms"] / batch,
        "state_bytes": state.nbytes,
    }


def bench_batching(
    net: StagingNet, tokens: np.ndarray, batch_sizes: Sequence[int], n_steps: int, warmup: int = 5
) -> dict[str, Any]:
    """:func:`bench_batch` for each batch size, smallest first."""
    return {
        "n_steps": n_steps,
        "rows": [bench_batch(net, tokens, batch, n_steps, warmup) for batch in sorted(batch_sizes)],
    }
