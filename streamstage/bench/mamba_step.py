"""The Mamba step alone, deep into a stream: the NumPy fast step beside the PyTorch reference step.

Both step the same normalised epoch tokens from the same empty state, epoch after epoch up to the last
mark, so each carries a real night's state at every mark; the largest difference between their logits over
the whole run is recorded beside the timings (the tests hold it under 1e-5).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from streamstage.bench.measure import at_marks
from streamstage.model.fast_step import FastStepper
from streamstage.model.stager import StagingNet


def bench_mamba_steps(
    net: StagingNet, tokens: np.ndarray, marks_epochs: Sequence[int], window: int
) -> dict[str, Any]:
    """Time ``StagingNet.step`` and :class:`FastStepper` on every token up to the last mark."""
    fast = FastStepper.from_net(net, 1)
    state = net.init_state(1)
    inputs = torch.from_numpy(np.ascontiguousarray(tokens[:, None, None]))  # (n, batch, epochs, C, F)
    largest_difference = 0.0

    def step(index: int) -> dict[str, float]:
        nonlocal state, largest_difference
        started = time.perf_counter()
        with torch.no_grad():
            reference, state = net.step(inputs[index], state)
        stepped = time.perf_counter()
        logits = fast.step(tokens[index][None])
        done = time.perf_counter()
        largest_difference = max(largest_difference, float(np.abs(logits - reference[:, 0].numpy()).max()))
        return {"reference_step": stepped - started, "fast_step": done - stepped}

    marks = at_marks(step, marks_epochs, window, lambda: {"state_bytes": fast.nbytes})
    return {"window_epochs": window, "marks": marks, "largest_logit_difference": largest_difference}
