"""The staging network: per-epoch features in, five stage logits out, one Mamba step per epoch.

The Mamba stack is rate-agnostic: it steps over whatever tokens it is given. Here a token is one 30-s epoch's
normalised band-power features; a raw-signal model would feed it sample embeddings instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from streamstage import STAGES
from streamstage.features import N_FEATURES
from streamstage.model.stack import MambaStack, StackState


@dataclass(frozen=True)
class StagerConfig:
    """Everything needed to rebuild a :class:`StagingNet`; stored in every checkpoint."""

    channels: tuple[str, ...] = ("Fpz-Cz",)
    n_features: int = N_FEATURES
    d_model: int = 64
    n_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dropout: float = 0.1
    bidirectional: bool = False
    stages: tuple[str, ...] = field(default=STAGES)
    n_members: int = 1
    """More than one: an :class:`~streamstage.model.ensemble.EnsembleNet` of that many networks."""

    @property
    def n_inputs(self) -> int:
        return len(self.channels) * self.n_features

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["channels"] = list(self.channels)
        record["stages"] = list(self.stages)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> StagerConfig:
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        known["channels"] = tuple(known.get("channels", ("Fpz-Cz",)))
        known["stages"] = tuple(known.get("stages", STAGES))
        return cls(**known)


class StagingNet(nn.Module):
    """Feature embedding -> residual Mamba stack -> linear stage head.

    ``forward`` runs whole sequences (training); ``init_state`` and ``step`` run the same weights one epoch
    at a time with a constant-size state (live). ``bidirectional`` adds a time-reversed stack and exists only
    as an offline reference in cross-validation: it cannot step.
    """

    def __init__(self, config: StagerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Sequential(
            nn.Linear(config.n_inputs, config.d_model),
            nn.GELU(),
            nn.Linear(config.d_model, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)
        stack_args = {
            "d_model": config.d_model,
            "n_layers": config.n_layers,
            "d_state": config.d_state,
            "d_conv": config.d_conv,
            "expand": config.expand,
        }
        self.backbone = MambaStack(**stack_args)
        self.backward_backbone = MambaStack(**stack_args) if config.bidirectional else None
        head_in = config.d_model * (2 if config.bidirectional else 1)
        self.head = nn.Linear(head_in, len(config.stages))

    def _embed(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(features.flatten(start_dim=-2)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, n_epochs, n_channels, n_features)`` -> logits ``(batch, n_epochs, 5)``."""
        hidden = self._embed(features)
        out = self.backbone(hidden)
        if self.backward_backbone is not None:
            backward = self.backward_backbone(hidden.flip(1)).flip(1)
            out = torch.cat([out, backward], dim=-1)
        return self.head(self.dropout(out))

    def init_state(self, batch: int = 1) -> StackState:
        if self.backward_backbone is not None:
            raise RuntimeError("a bidirectional model is an offline reference and cannot stream")
        return self.backbone.init_state(batch)

    def load_state(self, state: Mapping[str, Any]) -> StackState:
        """A saved state, checked against this network's sizes (the loader resume goes through)."""
        return self.backbone.load_state(state)

    @torch.no_grad()
    def step(self, features: torch.Tensor, state: StackState) -> tuple[torch.Tensor, StackState]:
        """``(batch, n_epochs_new, n_channels, n_features)`` -> logits ``(batch, n_epochs_new, 5)``."""
        hidden, state = self.backbone.step(self._embed(features), state)
        return self.head(hidden), state
