"""A small causal Transformer over 30-s epoch tokens: the baseline the Mamba stack is benchmarked against.

Staging live with attention costs either time or memory that grow with the night: re-attend over the whole
history at every epoch (:class:`ReattendStepper`) or keep every key and value (:class:`KVCacheStepper`).
Both give exactly what the full causal forward gives, so a benchmark compares costs, not different models.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamstage import STAGES
from streamstage.errors import ConfigError, ResumeError

KVCache = tuple[torch.Tensor, torch.Tensor]


def sinusoidal_positions(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """(L,) epoch indices -> (L, d_model) encodings; unbounded, so 72 h (8640 epochs) needs no table."""
    freqs = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    angles = positions.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat((torch.sin(angles), torch.cos(angles)), dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention that can run over a whole sequence or one new token against a cache."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        return q, k, v

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(batch, length, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def step(self, x: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Attend from the new token(s) ``x`` (B, 1, D) to every cached one and to itself."""
        q, k, v = self._heads(x)
        if cache is not None:
            k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
        return self._merge(F.scaled_dot_product_attention(q, k, v)), (k, v)


class Block(nn.Module):
    """Pre-norm residual block: attention, then a GELU MLP."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))

    def step(self, x: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        attended, cache = self.attn.step(self.attn_norm(x), cache)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), cache


class CausalTransformer(nn.Module):
    """Epoch features (B, L, n_features) -> stage logits (B, L, 5); epoch t sees epochs 0..t only."""

    def __init__(
        self,
        n_features: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_mlp: int = 128,
        n_classes: int = len(STAGES),
    ) -> None:
        super().__init__()
        if d_model % n_heads or d_model % 2:
            raise ConfigError(f"d_model={d_model} must be even and divisible by n_heads={n_heads}.")
        self.d_model = d_model
        self.embed = nn.Linear(n_features, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_mlp) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def _tokens(self, seq: torch.Tensor, first_position: int) -> torch.Tensor:
        positions = torch.arange(first_position, first_position + seq.shape[1], device=seq.device)
        return self.embed(seq) + sinusoidal_positions(positions, self.d_model).to(seq.dtype)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        x = self._tokens(seq, 0)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def step(
        self, features: torch.Tensor, caches: list[KVCache] | None, position: int
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """Logits (B, 5) for one new epoch (B, n_features) at ``position``, given the layers' caches."""
        x = self._tokens(features[:, None, :], position)
        new_caches = []
        for index, block in enumerate(self.blocks):
            x, cache = block.step(x, None if caches is None else caches[index])
            new_caches.append(cache)
        return self.head(self.norm(x))[:, 0], new_caches


class ReattendStepper:
    """Stages epoch by epoch by re-running the full causal forward over the whole history each time.

    Keeps only the input features, but each step costs attention over the night so far.
    """

    def __init__(self, model: CausalTransformer) -> None:
        self.model = model
        self._history: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_features) for the new epoch -> (B, 5) logits for it."""
        new = features[:, None, :]
        self._history = new if self._history is None else torch.cat((self._history, new), dim=1)
        return self.model(self._history)[:, -1]

    def cache_nbytes(self) -> int:
        """Bytes held between steps (the feature history)."""
        return 0 if self._history is None else self._history.nelement() * self._history.element_size()

    def state_dict(self) -> dict[str, Any]:
        empty = torch.zeros(0, 0, 0)
        return {"history": (empty if self._history is None else self._history).cpu().numpy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        history = torch.as_tensor(np.asarray(state["history"]), device=_device(self.model))
        self._history = history if history.numel() else None


class KVCacheStepper:
    """Stages epoch by epoch attending from the new epoch only, to every layer's cached keys and values.

    Each step is cheap, but the cache grows linearly with the night (see :meth:`cache_nbytes`).
    """

    def __init__(self, model: CausalTransformer) -> None:
        self.model = model
        self._caches: list[KVCache] | None = None
        self.position = 0

    @torch.no_grad()
    def step(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_features) for the new epoch -> (B, 5) logits for it."""
        logits, self._caches = self.model.step(features, self._caches, self.position)
        self.position += 1
        return logits

    def cache_nbytes(self) -> int:
        """Bytes held by the keys and values of every layer."""
        if self._caches is None:
            return 0
        return sum(t.nelement() * t.element_size() for cache in self._caches for t in cache)

    def state_dict(self) -> dict[str, Any]:
        caches = self._caches or []
        return {
            "position": self.position,
            "keys": [k.cpu().numpy() for k, _ in caches],
            "values": [v.cpu().numpy() for _, v in caches],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        keys, values = state["keys"], state["values"]
        if len(keys) != len(values) or (keys and len(keys) != len(self.model.blocks)):
            raise ResumeError(
                f"The saved cache has {len(keys)} layers but this model has {len(self.model.blocks)}; "
                "resume with the model that produced it."
            )
        self.position = int(state["position"])
        device = _device(self.model)
        self._caches = [
            (torch.as_tensor(np.asarray(k), device=device), torch.as_tensor(np.asarray(v), device=device))
            for k, v in zip(keys, values, strict=True)
        ] or None


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def count_parameters(module: nn.Module) -> int:
    """All parameters of ``module``, trainable or not."""
    return sum(parameter.numel() for parameter in module.parameters())


def transformer_matching(
    params_target: int,
    d_model: int = 64,
    n_layers: int = 2,
    *,
    n_features: int,
    n_heads: int = 4,
    n_classes: int = len(STAGES),
    tolerance: float = 0.10,
) -> CausalTransformer:
    """A :class:`CausalTransformer` whose MLP width brings it within ``tolerance`` of ``params_target``.

    The parameter count is linear in the MLP width, so two probe models give the exact width to pick.
    """

    def build(d_mlp: int) -> CausalTransformer:
        return CausalTransformer(n_features, d_model, n_layers, n_heads, d_mlp, n_classes)

    base, with_two = count_parameters(build(1)), count_parameters(build(2))
    per_unit = with_two - base
    model = build(max(1, round((params_target - base) / per_unit) + 1))
    if abs(count_parameters(model) - params_target) > tolerance * params_target:
        raise ConfigError(
            f"No MLP width brings a {n_layers}-layer, d_model={d_model} Transformer within "
            f"{tolerance:.0%} of {params_target} parameters (it has at least {base}); "
            "change d_model or n_layers."
        )
    return model
