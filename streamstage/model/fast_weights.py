"""The weights :class:`~streamstage.model.fast_step.FastStepper` steps with: every network of a model
stacked on a leading member axis, transposed for ``x @ w`` and fused where that saves a pass.

At batch 1 a step's cost is the number of operators, not their size, so the members of an ensemble step
together: one batched matmul or one ufunc over all members costs about what it costs over one. The
rewrites are algebraically equal to the reference and each was kept because it measured faster:

- each RMSNorm's weight and √d_model folded into the projection after it, and its ``d_model * eps`` carried
  by one constant column of the residual (so ``Σ residual²`` over the widened row is already ``Σx² + d eps``:
  ``rmsnorm(x) @ W = (x @ (√d · w · W)) / sqrt(Σx² + d·eps)``, two operators a norm);
- the conv bias as one more tap, against a row of ones kept in the conv history;
- every member's first embedding layer in one matmul, and GELU's ½ in the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from streamstage.errors import ModelError
from streamstage.model.mamba import Mamba
from streamstage.model.stack import RMSNorm
from streamstage.model.stager import StagingNet

DTYPE = np.float32
"""Weights, activations and state (the reference keeps its state in float32 too)."""


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """Float64, so the fused weights are formed before the single rounding to float32."""
    return tensor.detach().to("cpu", torch.float64).numpy()


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=DTYPE)


def _stacked(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """One float32 array with the members on a new leading axis."""
    return np.ascontiguousarray(np.stack(arrays), dtype=DTYPE)


def _norm_eps(norm: torch.nn.Module) -> float:
    if not isinstance(norm, RMSNorm):
        raise ModelError(f"FastStepper steps RMSNorm stacks only, not {type(norm).__name__}.")
    return float(norm.eps)


def _rms_folded(norm: torch.nn.Module, weight_t: np.ndarray) -> np.ndarray:
    """``weight_t`` (d_model, out) scaled by the norm weight and √d_model, with a zero row appended for the
    residual's constant column (see the module docstring)."""
    folded = np.sqrt(weight_t.shape[0]) * _numpy(norm.weight)[:, None] * weight_t
    return np.vstack([folded, np.zeros((1, weight_t.shape[1]))])


@dataclass(frozen=True)
class LayerWeights:
    """One residual Mamba layer of every member; ``M`` members, inner width ``di``."""

    w_in: np.ndarray
    """(2, M, d_model + 1, di): ``in_proj``'s x and z parts, with the norm folded in."""
    conv_w: np.ndarray
    """(d_conv + 1, M, 1, di): the bias (against the history's row of ones), then the taps, oldest first."""
    w_x: np.ndarray
    """(M, di, dt_rank + 2 d_state): ``x_proj`` (dt, B, C)."""
    w_dt: np.ndarray
    """(M, dt_rank, di): ``dt_proj`` (kept apart: fused with x_proj it would cost 4x the flops)."""
    dt_bias: np.ndarray
    """(M, 1, di)."""
    a: np.ndarray
    """(M, 1, d_state, di): ``A``, in the (stream, state, channel) layout of the state."""
    a_log2e: np.ndarray
    """``A log2(e)``: torch's ``exp2`` is 4x faster than its ``exp`` (NumPy's ``exp`` is its fastest)."""
    d_skip: np.ndarray
    """(M, 1, di): the skip ``y += x D``."""
    w_out: np.ndarray
    """(M, di, d_model + 1): ``out_proj``, with a zero column so the constant column stays as it is."""

    @classmethod
    def of(cls, blocks: Sequence[torch.nn.Module]) -> LayerWeights:
        """The same layer of every member (``blocks``: each member's ``backbone.layers[i]``)."""
        mixers: list[Mamba] = [block.mixer for block in blocks]
        if any(
            m.in_proj.bias is not None or m.out_proj.bias is not None or m.conv1d.bias is None for m in mixers
        ):
            raise ModelError(
                "FastStepper needs Mamba layers as the stager builds them (bias=False, conv_bias)."
            )
        w_out = [_numpy(m.out_proj.weight).T for m in mixers]
        w_in = _stacked([_rms_folded(b.norm, _numpy(b.mixer.in_proj.weight).T) for b in blocks])
        d_inner = mixers[0].d_inner
        return cls(
            w_in=np.ascontiguousarray(np.stack([w_in[..., :d_inner], w_in[..., d_inner:]])),
            conv_w=_f32(
                np.stack(
                    [np.vstack([_numpy(m.conv1d.bias), _numpy(m.conv1d.weight)[:, 0, :].T]) for m in mixers],
                    axis=1,
                )[:, :, None]
            ),
            w_x=_stacked([_numpy(m.x_proj.weight).T for m in mixers]),
            w_dt=_stacked([_numpy(m.dt_proj.weight).T for m in mixers]),
            dt_bias=_stacked([_numpy(m.dt_proj.bias)[None] for m in mixers]),
            a=_stacked([-np.exp(_numpy(m.A_log)).T[None] for m in mixers]),
            a_log2e=_stacked([(-np.exp(_numpy(m.A_log)).T * np.log2(np.e))[None] for m in mixers]),
            d_skip=_stacked([_numpy(m.D)[None] for m in mixers]),
            w_out=_stacked([np.hstack([w, np.zeros((w.shape[0], 1))]) for w in w_out]),
        )


@dataclass(frozen=True)
class StackedWeights:
    """Every member's embedding, layers and head, stacked; and the sizes the stepper needs."""

    embed_w: np.ndarray
    """(n_inputs, M d_model): every member's first layer side by side, one matmul for all."""
    embed_b: np.ndarray
    """(M d_model,)."""
    embed2_w: np.ndarray
    """(M, d_model, d_model + 1): with GELU's ½ folded in and a zero column for the constant."""
    embed2_b: np.ndarray
    """(M, 1, d_model + 1): its last entry is the residual's constant ``sqrt(d_model * eps)``."""
    layers: tuple[LayerWeights, ...]
    head_w: np.ndarray
    """(M, d_model + 1, n_stages): the final norm folded in."""
    head_b: np.ndarray
    """(M, 1, n_stages)."""
    logit_bound: float
    """No logit can exceed this in magnitude: the head reads an RMS-normalised row of norm <= √d_model."""

    @classmethod
    def of(cls, members: Sequence[StagingNet]) -> StackedWeights:
        for net in members:
            if net.backward_backbone is not None:
                raise ModelError(
                    "a bidirectional model is an offline reference and cannot step; use a causal one."
                )
        eps = {_norm_eps(n.backbone.norm_f) for n in members}
        eps |= {_norm_eps(block.norm) for n in members for block in n.backbone.layers}
        if len(eps) != 1:
            raise ModelError(f"FastStepper needs one eps for every RMSNorm of a model, got {sorted(eps)}.")
        d_model = members[0].config.d_model
        constant = np.sqrt(d_model * eps.pop())
        embed2 = [(0.5 * _numpy(n.embed[2].weight).T, _numpy(n.embed[2].bias)) for n in members]
        head_w = [_rms_folded(n.backbone.norm_f, _numpy(n.head.weight).T) for n in members]
        head_b = [_numpy(n.head.bias) for n in members]
        bound = max(
            float(np.linalg.norm(w[:-1], axis=0).max() + np.abs(b).max())
            for w, b in zip(head_w, head_b, strict=True)
        )
        return cls(
            embed_w=_f32(np.hstack([_numpy(n.embed[0].weight).T for n in members])),
            embed_b=_f32(np.concatenate([_numpy(n.embed[0].bias) for n in members])),
            embed2_w=_stacked([np.hstack([w, np.zeros((d_model, 1))]) for w, _ in embed2]),
            embed2_b=_stacked([np.append(b, constant)[None] for _, b in embed2]),
            layers=tuple(
                LayerWeights.of([n.backbone.layers[i] for n in members])
                for i in range(len(members[0].backbone.layers))
            ),
            head_w=_stacked(head_w),
            head_b=_stacked([b[None] for b in head_b]),
            logit_bound=bound,
        )
