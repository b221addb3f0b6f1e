"""A Mamba block in pure PyTorch, state-dict compatible with ``mamba_ssm.modules.mamba_simple.Mamba``.

Three ways in, all computing the same function of the input history:

- :meth:`Mamba.forward` runs a whole sequence from an empty history (training, offline staging);
- :meth:`Mamba.stream` takes any number of new inputs plus a :class:`MambaCache` and returns the outputs
  and the next cache (live staging: the night arrives one 30-s epoch at a time);
- :meth:`Mamba.step` is ``stream`` for exactly one input.

Caches are never modified in place: every call returns a new one, so a cache kept for a checkpoint stays
valid while the model moves on. Their size depends on the batch only, never on how long the night is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamstage.errors import ConfigError, ModelError, ResumeError
from streamstage.model import cuda
from streamstage.model.scan import selective_scan


@dataclass(frozen=True)
class MambaCache:
    """Everything one Mamba layer remembers of the past, for a batch of independent streams.

    ``conv_state`` (batch, d_inner, d_conv - 1): the last ``d_conv - 1`` inputs of the causal conv, oldest
    first, zeros before the first input. (mamba-ssm keeps ``d_conv`` columns whose first one is never used;
    its ``conv_state[..., 1:]`` is this one.) ``ssm_state`` (batch, d_inner, d_state): the SSM state, kept in
    float32 (float64 for a float64 model) whatever the model's dtype, because it integrates a whole night.
    """

    conv_state: Tensor
    ssm_state: Tensor

    @property
    def batch_size(self) -> int:
        return self.ssm_state.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.conv_state, self.ssm_state))

    def to_dict(self) -> dict[str, Tensor]:
        """Plain tensors, for ``torch.save`` (loadable with ``weights_only=True``)."""
        return {"conv_state": self.conv_state, "ssm_state": self.ssm_state}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> MambaCache:
        """Rebuild from :meth:`to_dict` output (tensors or numpy arrays); damaged input raises ResumeError."""
        try:
            conv_state, ssm_state = (torch.as_tensor(state[key]) for key in ("conv_state", "ssm_state"))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ResumeError(
                f"The saved model state is damaged ({exc!r}); start the night without --resume."
            ) from exc
        if conv_state.ndim != 3 or ssm_state.ndim != 3 or conv_state.shape[:2] != ssm_state.shape[:2]:
            raise ResumeError(
                f"The saved model state has inconsistent shapes {tuple(conv_state.shape)} and "
                f"{tuple(ssm_state.shape)}; start the night without --resume."
            )
        return cls(conv_state, ssm_state)

    def select(self, batch_indices: Sequence[int] | Tensor) -> MambaCache:
        """The caches of some streams, in the given order (to drop or reorder headbands)."""
        index = torch.as_tensor(batch_indices, dtype=torch.long, device=self.ssm_state.device)
        return MambaCache(self.conv_state.index_select(0, index), self.ssm_state.index_select(0, index))

    @classmethod
    def cat(cls, caches: Sequence[MambaCache]) -> MambaCache:
        """Streams of several caches side by side, so they step together in one batched call."""
        return cls(torch.cat([c.conv_state for c in caches]), torch.cat([c.ssm_state for c in caches]))


class Mamba(nn.Module):
    """Selective SSM block (Gu & Dao, 2023) with mamba-ssm's parameter names, shapes and initialisation.

    ``use_fast_path`` lets CUDA tensors use mamba-ssm's kernels when installed (see :mod:`.cuda`).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        use_fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.use_fast_path = use_fast_path

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
            **factory,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        self._init_dt(dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        # S4D-real init: A = -(1..d_state) for every channel, stored as log in float32.
        a = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def _init_dt(self, dt_init: str, dt_scale: float, dt_min: float, dt_max: float, floor: float) -> None:
        """dt_proj as in mamba-ssm: variance-preserving weight, bias = softplus⁻¹ of log-uniform dt."""
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ConfigError(f"Unknown dt_init {dt_init!r}; use 'random' or 'constant'.")
        log_dt = torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: Tensor) -> Tensor:
        """(batch, L, d_model) -> (batch, L, d_model), from an empty history."""
        self._check_input(x)
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        kernels = self._kernels(x) if x.shape[1] else None
        if kernels is None:
            y, _ = self._ssm(_causal_conv_silu(xs, None, self.conv1d)[0], z, None)
        else:
            xs = kernels.conv(xs, self.conv1d.weight, self.conv1d.bias)
            delta, b, c = self._project(xs)
            y = kernels.scan(xs, delta, self._A(), b, c, self.D, z, self.dt_proj.bias)
        return self.out_proj(y)

    def stream(self, x: Tensor, cache: MambaCache) -> tuple[Tensor, MambaCache]:
        """Continue from ``cache`` with new inputs (batch, L, d_model), any L >= 0; returns outputs and
        the cache after the last input. Streaming in any chunking gives the same outputs as ``forward``."""
        self._check_input(x)
        self._check_cache(cache, x.shape[0])
        xs, z = self.in_proj(x).chunk(2, dim=-1)
        kernels = self._kernels(x)
        if kernels is not None and x.shape[1] == 1:
            return self._kernel_step(kernels, xs, z, cache)
        xs, conv_state = _causal_conv_silu(xs, cache.conv_state, self.conv1d)
        y, ssm_state = self._ssm(xs, z, cache.ssm_state)
        return self.out_proj(y), MambaCache(conv_state, ssm_state)

    def step(self, x: Tensor, cache: MambaCache) -> tuple[Tensor, MambaCache]:
        """One input, (batch, d_model) or (batch, 1, d_model); the output has the input's shape."""
        if x.ndim == 2:
            y, cache = self.stream(x.unsqueeze(1), cache)
            return y.squeeze(1), cache
        if x.ndim != 3 or x.shape[1] != 1:
            raise ModelError(
                f"step takes one input of shape (batch, {self.d_model}) or (batch, 1, {self.d_model}), "
                f"got {tuple(x.shape)}; use stream for several inputs."
            )
        return self.stream(x, cache)

    def allocate_inference_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> MambaCache:
        """An empty history for ``batch_size`` streams; the conv state takes ``dtype`` (default: weights')."""
        weight = self.conv1d.weight
        conv_state = weight.new_zeros(batch_size, self.d_inner, self.d_conv - 1, dtype=dtype or weight.dtype)
        ssm_dtype = torch.promote_types(weight.dtype, torch.float32)
        ssm_state = torch.zeros(batch_size, self.d_inner, self.d_state, device=weight.device, dtype=ssm_dtype)
        return MambaCache(conv_state, ssm_state)

    def _A(self) -> Tensor:
        return -torch.exp(self.A_log.to(torch.promote_types(self.A_log.dtype, torch.float32)))

    def _project(self, xs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Input-dependent (delta without bias, B, C); the bias goes to the scan as ``delta_bias``."""
        dt, b, c = self.x_proj(xs).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), b, c

    def _ssm(self, xs: Tensor, z: Tensor, ssm_state: Tensor | None) -> tuple[Tensor, Tensor]:
        delta, b, c = self._project(xs)
        return selective_scan(
            xs,
            delta,
            self._A(),
            b,
            c,
            self.D,
            z=z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            initial_state=ssm_state,
        )

    def _kernel_step(
        self, kernels: cuda.Kernels, xs: Tensor, z: Tensor, cache: MambaCache
    ) -> tuple[Tensor, MambaCache]:
        x1, conv_state = kernels.conv_step(xs[:, 0], cache.conv_state, self.conv1d.weight, self.conv1d.bias)
        delta, b, c = self._project(x1)
        y, ssm_state = kernels.scan_step(
            cache.ssm_state, x1, delta, self._A(), b, c, self.D, z[:, 0], self.dt_proj.bias
        )
        return self.out_proj(y).unsqueeze(1), MambaCache(conv_state, ssm_state)

    def _kernels(self, x: Tensor) -> cuda.Kernels | None:
        return cuda.kernels_for(x) if self.use_fast_path else None

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ModelError(
                f"Mamba expects inputs of shape (batch, L, {self.d_model}), got {tuple(x.shape)}; "
                "check the feature size the model was built for."
            )

    def _check_cache(self, cache: MambaCache, batch_size: int) -> None:
        expected = {
            "conv_state": (batch_size, self.d_inner, self.d_conv - 1),
            "ssm_state": (batch_size, self.d_inner, self.d_state),
        }
        for name, shape in expected.items():
            got = tuple(getattr(cache, name).shape)
            if got != shape:
                raise ModelError(
                    f"The {name} has shape {got} but this layer and batch need {shape}; "
                    "allocate the cache from this model with the batch size of the input."
                )


def _causal_conv_silu(xs: Tensor, conv_state: Tensor | None, conv: nn.Conv1d) -> tuple[Tensor, Tensor]:
    """Depthwise causal conv + SiLU over (batch, L, d_inner) after the cached inputs (zeros if ``None``);
    returns the outputs and the last ``d_conv - 1`` inputs, the next cache."""
    history = conv.kernel_size[0] - 1
    seq = xs.transpose(1, 2)
    if conv_state is None:
        seq = F.pad(seq, (history, 0))
    else:
        seq = torch.cat([conv_state.to(seq.dtype), seq], dim=-1)
    if xs.shape[1] == 0:  # nothing new: conv1d would reject an input shorter than its kernel
        return xs, seq.clone()
    out = F.conv1d(seq, conv.weight, conv.bias, groups=conv.groups)
    return F.silu(out).transpose(1, 2), seq[..., seq.shape[-1] - history :].clone()
