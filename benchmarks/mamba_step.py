"""The Mamba step alone, deep into a stream: the NumPy fast step beside the PyTorch reference step.

Each steps the same normalised epoch tokens from the same empty state, epoch after epoch up to the last
mark, so it carries a real night's state at every mark. They run one after the other, each in its own
loop as the Transformer baselines do (interleaved, each would find the caches full of the other's data);
the largest difference between their logits over the whole run is recorded beside the timings (the tests
hold it under 1e-5).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.measure import at_marks
from streamstage.model.fast_step import FastStepper
from streamstage.model.stager import StagingNet


def bench_mamba_steps(
    net: StagingNet, tokens: np.ndarray, marks_epochs: Sequence[int], window: int
) -> dict[str, Any]:
    """Time ``StagingNet.step`` and :class:`FastStepper` on every token up to the last mark."""
    n_epochs = max(marks_epochs)
    reference_logits = np.empty((n_epochs, len(net.config.stages)), dtype=np.float32)
    fast_logits = np.empty_like(reference_logits)
    inputs = torch.from_numpy(np.ascontiguousarray(tokens[:, None, None]))  # (n, batch, epochs, C, F)
    state = net.init_state(1)

    def reference_step(index: int) -> dict[str, float]:
        nonlocal state
        started = time.perf_counter()
        with torch.no_grad():
            logits, state = net.step(inputs[index], state)
        seconds = time.perf_counter() - started
        reference_logits[index] = logits[0, 0].numpy()
        return {"reference_step": seconds}

    fast = FastStepper.from_net(net, 1)

    def fast_step(index: int) -> dict[str, float]:
        started = time.perf_counter()
        logits = fast.step(tokens[index][None])
        seconds = time.perf_counter() - started
        fast_logits[index] = logits[0]
        return {"fast_step": seconds}

    state_bytes = {"state_bytes": fast.nbytes}
    reference = at_marks(reference_step, marks_epochs, window, lambda: state_bytes)
    rows = at_marks(fast_step, marks_epochs, window, lambda: state_bytes)
    for row, reference_row in zip(rows, reference, strict=True):
        row["reference_step_ms"] = reference_row["reference_step_ms"]
    largest = float(np.abs(fast_logits - reference_logits).max())
    return {"window_epochs": window, "marks": rows, "largest_logit_difference": largest}
