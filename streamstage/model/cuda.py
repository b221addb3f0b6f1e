"""The optional CUDA fast path: mamba-ssm's and causal-conv1d's kernels, imported lazily.

Importing them is slow and fails on machines without CUDA builds, so nothing here runs at import time:
:func:`kernels_for` imports once, caches the outcome (``None`` when absent or broken) and only offers the
kernels for CUDA tensors. The kernels cover the two calls they were written for: a whole sequence from a
zero state (``forward``) and one token from a cache (``step``). Streaming several tokens from a non-zero
state has no kernel (``selective_scan_fn`` takes no initial state), so it stays on the pure path, which runs
on CUDA tensors too.

Layouts follow the rest of the package: sequences (batch, L, channels), caches as in :mod:`.mamba`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Kernels:
    """The four kernel entry points, by their documented signatures."""

    selective_scan_fn: Callable[..., Tensor]
    selective_state_update: Callable[..., Tensor]
    causal_conv1d_fn: Callable[..., Tensor]
    causal_conv1d_update: Callable[..., Tensor]

    def conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """Causal depthwise conv + SiLU over (batch, L, d_inner) from zero history."""
        out = self.causal_conv1d_fn(
            x.transpose(1, 2).contiguous(), weight.squeeze(1), bias, activation="silu"
        )
        return out.transpose(1, 2)

    def conv_step(
        self, x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """One token (batch, d_inner) against its cached history; returns ``(out, new_conv_state)``.

        The kernel shifts the state in place, so it gets a copy and the caller's cache stays untouched.
        """
        new_state = conv_state.clone()
        out = self.causal_conv1d_update(x.contiguous(), new_state, weight.squeeze(1), bias, activation="silu")
        return out, new_state

    def scan(
        self,
        u: Tensor,
        delta: Tensor,
        A: Tensor,
        B: Tensor,
        C: Tensor,
        D: Tensor,
        z: Tensor,
        delta_bias: Tensor,
    ) -> Tensor:
        """Selective scan of a whole sequence from a zero state; (batch, L, ·) in and out."""
        y = self.selective_scan_fn(
            u.transpose(1, 2).contiguous(),
            delta.transpose(1, 2).contiguous(),
            A,
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            D.float(),
            z=z.transpose(1, 2).contiguous(),
            delta_bias=delta_bias.float(),
            delta_softplus=True,
        )
        return y.transpose(1, 2)

    def scan_step(
        self,
        ssm_state: Tensor,
        u: Tensor,
        delta: Tensor,
        A: Tensor,
        B: Tensor,
        C: Tensor,
        D: Tensor,
        z: Tensor,
        delta_bias: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """One token, all tensors (batch, ·); returns ``(y, new_ssm_state)`` without touching the input."""
        new_state = ssm_state.clone()
        y = self.selective_state_update(
            new_state, u, delta, A, B, C, D=D, z=z, dt_bias=delta_bias, dt_softplus=True
        )
        return y, new_state


def kernels_for(tensor: Tensor) -> Kernels | None:
    """The kernels when ``tensor`` is on CUDA and mamba-ssm + causal-conv1d load; else ``None``."""
    return _load() if tensor.is_cuda else None


@functools.cache
def _load() -> Kernels | None:
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except (ImportError, OSError):  # not installed, or built against another CUDA/torch
        return None
    return Kernels(selective_scan_fn, selective_state_update, causal_conv1d_fn, causal_conv1d_update)
