"""The causal Transformer baseline's per-epoch cost and memory at the same hours as the Mamba live path.

The baseline has the stager's width and depth and, through its MLP width, its parameter count; it steps
over the same normalised epoch tokens. Two ways to stage live with attention:

* KV cache: every epoch of the stream is stepped in order, so the cache really holds the whole night at each
  mark (its bytes are exact, from the tensors);
* re-attend: the full causal forward over the history at every epoch. Stepping all 8640 epochs that way
  would take hours, so at each mark the history is loaded as the stepper's state (only input features are
  kept between steps) and only the next ``reattend_steps`` epochs are stepped and timed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.measure import (
    EPOCHS_PER_HOUR,
    MB,
    at_marks,
    latency_summary,
    peak_rss_bytes,
    rss_bytes,
)
from benchmarks.transformer import (
    CausalTransformer,
    KVCacheStepper,
    ReattendStepper,
    count_parameters,
    transformer_matching,
)
from streamstage.model.checkpoint import StagingModel


def matched_transformer(model: StagingModel) -> CausalTransformer:
    """A Transformer as wide and deep as the stager, with (within 10 %) its parameter count."""
    config = model.config
    torch.manual_seed(0)
    baseline = transformer_matching(
        model.n_parameters(), config.d_model, config.n_layers, n_features=config.n_inputs
    )
    return baseline.eval()


def bench_kv_cache(
    baseline: CausalTransformer, tokens: np.ndarray, marks_epochs: Sequence[int], window: int
) -> list[dict[str, Any]]:
    """Step every epoch up to the last mark with a KV cache; summarise the last ``window`` at each mark."""
    stepper = KVCacheStepper(baseline)
    inputs = torch.from_numpy(tokens.reshape(len(tokens), 1, -1))

    def step(index: int) -> dict[str, float]:
        started = time.perf_counter()
        stepper.step(inputs[index])
        return {"step": time.perf_counter() - started}

    def snapshot() -> dict[str, Any]:
        return {"rss_mb": rss_bytes() / MB, "state_bytes": stepper.cache_nbytes()}

    return at_marks(step, marks_epochs, window, snapshot)


def bench_reattend(
    baseline: CausalTransformer, tokens: np.ndarray, marks_epochs: Sequence[int], steps: int
) -> list[dict[str, Any]]:
    """At each mark, load the history before it and time the ``steps`` epochs that end at the mark."""
    flat = tokens.reshape(len(tokens), -1)
    rows = []
    for mark in sorted(set(marks_epochs)):
        first = max(0, mark - steps)
        stepper = ReattendStepper(baseline)
        stepper.load_state_dict({"history": flat[None, :first]})
        durations = []
        for index in range(first, mark):
            started = time.perf_counter()
            stepper.step(torch.from_numpy(flat[index : index + 1]))
            durations.append(time.perf_counter() - started)
        rows.append(
            {
                "epochs": mark,
                "hours": mark / EPOCHS_PER_HOUR,
                "step_ms": latency_summary(durations),
                "rss_mb": rss_bytes() / MB,
                "peak_rss_mb": peak_rss_bytes() / MB,
                "state_bytes": stepper.cache_nbytes(),
            }
        )
    return rows


def bench_transformer(
    model: StagingModel,
    tokens: np.ndarray,
    marks_epochs: Sequence[int],
    window: int,
    reattend_steps: int,
) -> dict[str, Any]:
    """Both baselines over ``tokens`` ``(n >= max(marks), n_channels, 10)``, with their exact sizes."""
    baseline = matched_transformer(model)
    return {
        "mamba_parameters": model.n_parameters(),
        "transformer_parameters": count_parameters(baseline),
        "d_model": baseline.d_model,
        "n_layers": len(baseline.blocks),
        "d_mlp": baseline.blocks[0].mlp[0].out_features,
        "n_heads": baseline.blocks[0].attn.n_heads,
        "window_epochs": window,
        "reattend_steps": reattend_steps,
        "kv_cache": bench_kv_cache(baseline, tokens, marks_epochs, window),
        "reattend": bench_reattend(baseline, tokens, marks_epochs, reattend_steps),
    }
