"""Several staging networks of one recipe, trained with different seeds, staged together.

Cross-lab accuracy moves by about ±0.1 kappa between seeds of the same recipe; averaging the members'
probabilities removes most of that spread for a few tens of µs per epoch. The ensemble speaks the
:class:`~streamstage.model.stager.StagingNet` interface (``forward``, ``init_state``, ``step``,
``load_state``), and its state is one :class:`StackState` whose layers are the members' layers in order,
so saving, resuming and the state's size work as for a single network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from streamstage.errors import ModelError, ResumeError
from streamstage.model.stack import StackState
from streamstage.model.stager import StagerConfig, StagingNet


def mean_probability_logits(member_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Logits whose softmax is the mean of the members' softmax: ``log(mean_m p_m)``."""
    probs = torch.stack([torch.softmax(logits, dim=-1) for logits in member_logits]).mean(dim=0)
    return torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))


class EnsembleNet(nn.Module):
    """``config.n_members`` causal :class:`StagingNet` members; the output averages their probabilities."""

    def __init__(self, config: StagerConfig) -> None:
        super().__init__()
        if config.n_members < 2:
            raise ModelError(f"an ensemble needs at least 2 members, got {config.n_members}.")
        if config.bidirectional:
            raise ModelError("an ensemble stages live; its members must be causal.")
        self.config = config
        member = dataclasses.replace(config, n_members=1)
        self.members = nn.ModuleList(StagingNet(member) for _ in range(config.n_members))

    @classmethod
    def of(cls, members: Sequence[StagingNet]) -> EnsembleNet:
        """An ensemble holding copies of trained ``members`` (one config)."""
        configs = {dataclasses.replace(m.config, n_members=1) for m in members}
        if len(configs) != 1:
            raise ModelError("ensemble members must share one config (channels, sizes, stages).")
        ensemble = cls(dataclasses.replace(configs.pop(), n_members=len(members)))
        for slot, member in zip(ensemble.members, members, strict=True):
            slot.load_state_dict(member.state_dict())
        return ensemble.eval()

    @property
    def layers_per_member(self) -> int:
        return self.config.n_layers

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return mean_probability_logits([member(features) for member in self.members])

    def init_state(self, batch: int = 1) -> StackState:
        return StackState(tuple(layer for m in self.members for layer in m.init_state(batch).layers))

    def member_states(self, state: StackState) -> list[StackState]:
        n = self.layers_per_member
        return [StackState(state.layers[i * n : (i + 1) * n]) for i in range(len(self.members))]

    @torch.no_grad()
    def step(self, features: torch.Tensor, state: StackState) -> tuple[torch.Tensor, StackState]:
        outputs = [m.step(features, s) for m, s in zip(self.members, self.member_states(state), strict=True)]
        layers = tuple(layer for _, member_state in outputs for layer in member_state.layers)
        return mean_probability_logits([logits for logits, _ in outputs]), StackState(layers)

    def load_state(self, state: Mapping[str, Any]) -> StackState:
        """The checked loader: a saved ensemble state, each member's part checked against that member."""
        loaded = StackState.from_dict(state)
        if len(loaded.layers) != self.layers_per_member * len(self.members):
            raise ResumeError(
                f"the saved model state has {len(loaded.layers)} layers, this ensemble "
                f"{self.layers_per_member * len(self.members)}; resume with the model of that night."
            )
        parts = [
            member.load_state(part.to_dict())
            for member, part in zip(self.members, self.member_states(loaded), strict=True)
        ]
        return StackState(tuple(layer for part in parts for layer in part.layers))


def networks(net: StagingNet | EnsembleNet) -> list[StagingNet]:
    """The single networks a model steps: an ensemble's members, or the network itself."""
    return list(net.members) if isinstance(net, EnsembleNet) else [net]  # type: ignore[arg-type]
