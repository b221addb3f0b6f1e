"""A residual stack of Mamba layers and the streaming interface the stager is written against.

``MambaStack`` mirrors mamba-ssm's ``MixerModel`` without the embedding: ``layers.{i}.norm``,
``layers.{i}.mixer`` and ``norm_f``, with the residual stream kept in float32 (``residual_in_fp32``), so its
state dict loads into (a slice of) theirs and back. Each layer computes ``x = x + mixer(norm(x))``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from streamstage.errors import ConfigError, ModelError, ResumeError
from streamstage.model.mamba import Mamba, MambaCache

_STATE_KEY = re.compile(r"layers\.(\d+)\.(conv_state|ssm_state)")


@dataclass(frozen=True)
class StackState:
    """The recurrent state of every layer for a batch of independent streams (beds, headbands).

    Its size is fixed by the model and the batch: it does not grow with the number of inputs seen.
    """

    layers: tuple[MambaCache, ...]

    @property
    def batch_size(self) -> int:
        return self.layers[0].batch_size

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)

    def to_dict(self) -> dict[str, Tensor]:
        """Flat ``layers.{i}.{conv_state,ssm_state}`` tensors: ``torch.save``-able, weights_only-loadable."""
        return {
            f"layers.{i}.{name}": tensor
            for i, layer in enumerate(self.layers)
            for name, tensor in layer.to_dict().items()
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StackState:
        """Rebuild from :meth:`to_dict` output (tensors or numpy arrays); damaged input raises ResumeError."""
        per_layer: dict[int, dict[str, Any]] = {}
        for key, value in state.items():
            match = _STATE_KEY.fullmatch(key)
            if match is None:
                raise ResumeError(f"The saved model state has an unknown entry {key!r}; is it a model state?")
            per_layer.setdefault(int(match[1]), {})[match[2]] = value
        if not per_layer or sorted(per_layer) != list(range(len(per_layer))):
            raise ResumeError(
                f"The saved model state has layers {sorted(per_layer)}, not 0..n-1; the file is damaged."
            )
        layers = tuple(MambaCache.from_dict(per_layer[i]) for i in range(len(per_layer)))
        if len({layer.batch_size for layer in layers}) != 1:
            raise ResumeError("The saved model state mixes batch sizes across layers; the file is damaged.")
        return cls(layers)

    def select(self, batch_indices: Sequence[int] | Tensor) -> StackState:
        """The states of some streams, in the given order."""
        return StackState(tuple(layer.select(batch_indices) for layer in self.layers))

    @classmethod
    def cat(cls, states: Sequence[StackState]) -> StackState:
        """Several states side by side along the batch, so their streams step together."""
        if not states or len({len(s.layers) for s in states}) != 1:
            raise ModelError("StackState.cat needs at least one state, all from models of the same depth.")
        return cls(tuple(MambaCache.cat(layers) for layers in zip(*(s.layers for s in states), strict=True)))


@runtime_checkable
class StreamingModule(Protocol):
    """What every streaming part of a model offers: the residual stack, the feature stagers (one network or
    an ensemble) and the raw-signal front end. A stream is advanced one chunk at a time from ``init_state``;
    ``forward`` over a whole sequence equals ``step`` over any chunking of it, and a saved state comes back
    through ``load_state``, which checks it against the module (a ResumeError when it does not fit)."""

    def init_state(self, batch: int = 1) -> Any:
        """The state before any input, for ``batch`` streams."""
        ...

    def step(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The outputs for ``inputs`` (a chunk of each stream) after ``state``, and the next state."""
        ...

    def forward(self, inputs: Tensor) -> Tensor:
        """The outputs for whole sequences, from the initial state."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> Any:
        """A saved ``state.to_dict()``, checked against this module."""
        ...


class RMSNorm(nn.Module):
    """Root-mean-square norm as in mamba-ssm (one ``weight``, computed in float32)."""

    def __init__(self, d_model: int, eps: float = 1e-5, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        scaled = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (scaled * self.weight.float()).to(self.weight.dtype)


class Block(nn.Module):
    """Pre-norm residual layer; named like mamba-ssm's ``Block`` (``norm``, ``mixer``)."""

    def __init__(self, norm: nn.Module, mixer: Mamba) -> None:
        super().__init__()
        self.norm = norm
        self.mixer = mixer


class MambaStack(nn.Module):
    """``n_layers`` Mamba blocks with pre-norm residuals and a final norm; a :class:`StreamingModule`."""

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        norm: Literal["rmsnorm", "layernorm"] = "rmsnorm",
        norm_eps: float = 1e-5,
        use_fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if norm not in ("rmsnorm", "layernorm"):
            raise ConfigError(f"Unknown norm {norm!r}; use 'rmsnorm' or 'layernorm'.")
        if n_layers < 1:
            raise ConfigError(f"A Mamba stack needs at least one layer, got n_layers={n_layers}.")
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        norm_cls = RMSNorm if norm == "rmsnorm" else nn.LayerNorm
        self.d_model = d_model
        self.layers = nn.ModuleList(
            Block(
                norm_cls(d_model, eps=norm_eps, **factory),
                Mamba(d_model, d_state, d_conv, expand, use_fast_path=use_fast_path, **factory),
            )
            for _ in range(n_layers)
        )
        self.norm_f = norm_cls(d_model, eps=norm_eps, **factory)

    def forward(self, sequence: Tensor) -> Tensor:
        residual = _widened(sequence)
        for block in self.layers:
            residual = residual + block.mixer(self._normed(block.norm, residual)).to(residual.dtype)
        return self._normed(self.norm_f, residual).to(sequence.dtype)

    def step(self, inputs: Tensor, state: StackState) -> tuple[Tensor, StackState]:
        if inputs.ndim == 2:
            outputs, state = self.step(inputs.unsqueeze(1), state)
            return outputs.squeeze(1), state
        if len(state.layers) != len(self.layers):
            raise ModelError(
                f"The state has {len(state.layers)} layers but the model has {len(self.layers)}; "
                "create the state with this model's init_state."
            )
        residual = _widened(inputs)
        caches = []
        for block, cache in zip(self.layers, state.layers, strict=True):
            mixed, cache = block.mixer.stream(self._normed(block.norm, residual), cache)
            residual = residual + mixed.to(residual.dtype)
            caches.append(cache)
        return self._normed(self.norm_f, residual).to(inputs.dtype), StackState(tuple(caches))

    def init_state(self, batch: int) -> StackState:
        return StackState(tuple(block.mixer.allocate_inference_cache(batch) for block in self.layers))

    def load_state(self, state: Mapping[str, Any]) -> StackState:
        loaded = StackState.from_dict(state)
        expected = self.init_state(loaded.batch_size)
        shapes = [(c.conv_state.shape, c.ssm_state.shape) for c in loaded.layers]
        if shapes != [(c.conv_state.shape, c.ssm_state.shape) for c in expected.layers]:
            raise ResumeError(
                "The saved model state was made by a model of another size; resume with the model of that "
                "night or start without --resume."
            )
        device = expected.layers[0].ssm_state.device
        return StackState(
            tuple(
                MambaCache(
                    c.conv_state.to(device, e.conv_state.dtype), c.ssm_state.to(device, e.ssm_state.dtype)
                )
                for c, e in zip(loaded.layers, expected.layers, strict=True)
            )
        )

    @staticmethod
    def _normed(norm: nn.Module, residual: Tensor) -> Tensor:
        """The norm reads the float32 residual in its own dtype, as mamba-ssm's Block does."""
        return norm(residual.to(norm.weight.dtype))


def _widened(x: Tensor) -> Tensor:
    """The residual stream in float32 at least (mamba-ssm's ``residual_in_fp32``)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
