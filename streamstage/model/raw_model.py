"""The raw-signal staging model: a :class:`~streamstage.model.raw_frontend.RawFrontEnd` under a trained
epoch network, and the per-stream runner the pipeline feeds samples to.

The epoch network is the feature model's (normaliser, epoch Mamba, head), widened to read the front end's
extra features with zero weights: a fresh raw model stages as its feature model does wherever the front end
reproduces the recipe, and fine-tuning end to end can then learn to use what the extras carry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from streamstage.errors import ModelError, ResumeError
from streamstage.model.checkpoint import StagingModel, build_net
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.raw_frontend import HOP as PATCH_HOP
from streamstage.model.raw_frontend import FrontEndState, RawFrontEnd
from streamstage.model.stager import StagingNet

_EMBED_WEIGHT = "embed.0.weight"


def widened(net: StagingNet | EnsembleNet, n_extra: int) -> StagingNet | EnsembleNet:
    """A copy of ``net`` that reads ``n_extra`` more features per channel, their input weights zero."""
    config = net.config
    wider = build_net(dataclasses.replace(config, n_features=config.n_features + n_extra))
    state = {}
    for key, tensor in net.state_dict().items():
        if key.endswith(_EMBED_WEIGHT):
            per_channel = tensor.reshape(tensor.shape[0], len(config.channels), config.n_features)
            tensor = torch.nn.functional.pad(per_channel, (0, n_extra)).reshape(tensor.shape[0], -1)
        state[key] = tensor
    wider.load_state_dict(state)
    return wider.eval()


def raw_model(feature_model: StagingModel, front_end: RawFrontEnd) -> StagingModel:
    """``front_end`` under ``feature_model``'s epoch network and normaliser."""
    if feature_model.is_raw:
        raise ModelError(
            f"{feature_model.source} is a raw model already; stack a front end under a feature model."
        )
    net = widened(feature_model.net, front_end.config.n_extra)
    training = {"epoch_model": feature_model.source, "epoch_model_id": feature_model.model_id}
    return StagingModel(net=net, normalizer=feature_model.normalizer, training=training, front_end=front_end)


class RawFeatureStream:
    """The front end of one multichannel stream: filtered samples ``(n, n_channels)`` in, features of the
    epochs they complete ``(k, n_channels, n_outputs)`` out; each channel is one front-end stream.

    Samples that complete no patch wait here, in NumPy, until one does (most live chunks are 0.1 s, a patch
    ends every 2 s): the front end then steps once over them all. Its stepping is bitwise chunk-invariant,
    so when the wait ends (a patch, a peek, a saved state) changes no output.
    """

    def __init__(self, front_end: RawFrontEnd, n_channels: int) -> None:
        self.front_end = front_end
        self.n_channels = n_channels
        self.state: FrontEndState = front_end.init_state(n_channels)
        self._waiting: list[np.ndarray] = []
        self._n_waiting = 0
        self._empty = np.zeros((0, n_channels, front_end.n_outputs), dtype=np.float32)

    @property
    def phase(self) -> int:
        """Samples into the epoch in progress."""
        return (self.state.phase + self._n_waiting) % self.front_end.config.epoch_samples

    @property
    def nbytes(self) -> int:
        return self.state.nbytes

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._waiting.append(np.array(samples, dtype=np.float32))  # a copy: the caller may reuse its array
        self._n_waiting += len(samples)
        if self._n_waiting < PATCH_HOP - self.state.phase % PATCH_HOP:
            return self._empty
        return self._flush()

    def peek(self) -> np.ndarray | None:
        """Features ``(n_channels, n_outputs)`` of the epoch in progress, or None this early in it."""
        self._flush()
        features = self.front_end.peek(self.state)
        return None if features is None else features.numpy()

    def state_dict(self) -> dict[str, Any]:
        self._flush()
        return self.state.to_dict()

    def _flush(self) -> np.ndarray:
        """Step the front end over the waiting samples; the features of the epochs they complete."""
        if not self._waiting:
            return self._empty
        samples = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting)
        self._waiting, self._n_waiting = [], 0
        inputs = torch.from_numpy(np.ascontiguousarray(samples.T))
        features, self.state = self.front_end.step(inputs, self.state)
        return features.transpose(0, 1).numpy()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        loaded = self.front_end.load_state(state)
        if loaded.batch_size != self.n_channels:
            raise ResumeError(
                f"the saved front-end state has {loaded.batch_size} channel(s), this stream "
                f"{self.n_channels}; resume with the channels of that night."
            )
        self.state = loaded
        self._waiting, self._n_waiting = [], 0
