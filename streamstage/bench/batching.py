"""Many streams at once: one batched Mamba step for every bed (or headband) of a sleep lab.

A batch of B streams steps together in one ``StagingNet.step`` call, each with its own state row. The
per-stream cost is the batch's cost over B; the state grows with B, never with time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from streamstage.bench.measure import latency_summary
from streamstage.model.stager import StagingNet


def bench_batch(net: StagingNet, tokens: np.ndarray, batch: int, n_steps: int, warmup: int) -> dict[str, Any]:
    """Time ``n_steps`` batched steps of ``batch`` streams over ``tokens`` ``(n, n_channels, 10)``."""
    state = net.init_state(batch)
    offsets = np.arange(batch)  # each stream at another point of the night
    durations = []
    for index in range(warmup + n_steps):
        rows = tokens[(index + offsets) % len(tokens)]
        inputs = torch.from_numpy(np.ascontiguousarray(rows[:, None]))
        started = time.perf_counter()
        _, state = net.step(inputs, state)
        if index >= warmup:
            durations.append(time.perf_counter() - started)
    per_batch = latency_summary(durations)
    return {
        "streams": batch,
        "batch_ms": per_batch,
        "per_stream_median_ms": per_batch["median_ms"] / batch,
        "per_stream_p99_ms": per_batch["p99_ms"] / batch,
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
