"""The Mamba step alone, deep into a stream: the NumPy fast step beside the PyTorch reference step.

The model is timed as the live path runs it (``FastStepper.probabilities``: every member of an ensemble in
one step, their probabilities averaged) beside its reference (``EnsembleNet.step`` / ``StagingNet.step``),
and one network of it alone (the figure of a single-network model). Each steps the same normalised epoch
tokens from the same empty state, epoch after epoch up to the last mark, so it carries a real night's state
at every mark. They run one after the other, each in its own loop as the Transformer baselines do
(interleaved, each would find the caches full of the other's data); the largest difference between the
fast and the reference stage probabilities over the whole run is recorded beside the timings (the tests
hold the outputs within 1e-5).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.measure import at_marks
from streamstage.model.ensemble import EnsembleNet, networks
from streamstage.model.fast_step import FastStepper
from streamstage.model.stager import StagingNet


def bench_mamba_steps(
    net: StagingNet | EnsembleNet, tokens: np.ndarray, marks_epochs: Sequence[int], window: int
) -> dict[str, Any]:
    """Time the reference step, :class:`FastStepper` on the whole model and on its first network, on every
    token up to the last mark."""
    n_epochs = max(marks_epochs)
    n_stages = len(net.config.stages)
    reference_probs = np.empty((n_epochs, n_stages))
    fast_probs = np.empty_like(reference_probs)
    inputs = torch.from_numpy(np.ascontiguousarray(tokens[:, None, None]))  # (n, batch, epochs, C, F)
    state = net.init_state(1)

    def reference_step(index: int) -> dict[str, float]:
        nonlocal state
        started = time.perf_counter()
        with torch.no_grad():
            logits, state = net.step(inputs[index], state)
        seconds = time.perf_counter() - started
        reference_probs[index] = torch.softmax(logits[0, 0].double(), dim=-1).numpy()
        return {"reference_step": seconds}

    fast = FastStepper.from_net(net, 1)

    def fast_step(index: int) -> dict[str, float]:
        started = time.perf_counter()
        probs = fast.probabilities(tokens[index][None])
        seconds = time.perf_counter() - started
        fast_probs[index] = probs[0]
        return {"fast_step": seconds}

    one = FastStepper.from_net(networks(net)[0], 1)
    network_step = _timed("network_fast_step", lambda index: one.step(tokens[index][None]))
    state_bytes = {"state_bytes": fast.nbytes, "network_state_bytes": one.nbytes}
    reference = at_marks(reference_step, marks_epochs, window, lambda: state_bytes)
    network = at_marks(network_step, marks_epochs, window, lambda: state_bytes)
    rows = at_marks(fast_step, marks_epochs, window, lambda: state_bytes)
    for row, reference_row, network_row in zip(rows, reference, network, strict=True):
        row["reference_step_ms"] = reference_row["reference_step_ms"]
        row["network_fast_step_ms"] = network_row["network_fast_step_ms"]
    largest = float(np.abs(fast_probs - reference_probs).max())
    return {
        "window_epochs": window,
        "n_members": len(networks(net)),
        "marks": rows,
        "largest_probability_difference": largest,
    }


def _timed(name: str, step: Callable[[int], object]) -> Callable[[int], dict[str, float]]:
    def timed(index: int) -> dict[str, float]:
        started = time.perf_counter()
        step(index)
        return {name: time.perf_counter() - started}

    return timed
