"""Epoch features -> stage probabilities: the one implementation that live staging, offline staging,
evaluation and cross-validation all run.

It carries the causal normaliser and the Mamba state of one stream (the live pipeline) or of a batch of
independent streams (nights stepped together in evaluation). Both go through :meth:`EpochStager.push_batch`,
so what evaluation measures is what runs at night. The model steps through one
:class:`~streamstage.model.fast_step.FastStepper` (NumPy; every member of an ensemble in the same
operators, ~60 µs an epoch for the default's three), which equals the PyTorch reference step within float32
rounding and exchanges its state in the reference's :class:`StackState` format, so saved nights stay
portable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamstage.errors import ModelError
from streamstage.features import CausalNormalizer
from streamstage.model.checkpoint import StagingModel
from streamstage.model.fast_step import FastStepper
from streamstage.model.stack import StackState


def check_streams(model: StagingModel) -> None:
    """Refuse an offline reference model (it needs the whole night) where a stream is to be staged."""
    if not model.streams:
        raise ModelError(
            f"{model.source} is an offline reference model (whole-night normalisation or bidirectional) "
            "and cannot stage a stream; use a causal model."
        )


class EpochStager:
    """Raw epoch features ``(n_channels, 10)`` in, stage probabilities (float64, summing to 1) out.

    An epoch of bad quality is still stepped through the model, so the hidden state keeps moving with time,
    but it does not update the normaliser's running mean: one hour of a detached electrode must not shift
    the reference the rest of the night is measured against.
    """

    def __init__(self, model: StagingModel, batch_size: int = 1) -> None:
        check_streams(model)
        self.model = model
        self.batch_size = batch_size
        self.normalizer = CausalNormalizer(
            len(model.channels), model.normalizer, batch_size=None if batch_size == 1 else batch_size
        )
        self._stepper = FastStepper.from_net(model.net, batch_size)

    @property
    def state(self) -> StackState:
        """The Mamba state as the reference ``step`` carries it (an ensemble's: members' layers in order)."""
        return self._stepper.to_stack_state()

    def push_batch(self, features: np.ndarray, update: np.ndarray | bool = True) -> np.ndarray:
        """One epoch of every stream ``(batch, n_channels, 10)`` -> probabilities ``(batch, 5)``; an
        ensemble averages its members' probabilities."""
        return self._stepper.probabilities(self.normalizer.push_batch(features, update))

    def push(self, features: np.ndarray, update_normalizer: bool = True) -> np.ndarray:
        """One epoch's features ``(n_channels, 10)`` of a single stream -> probabilities ``(5,)``."""
        return self.push_batch(np.asarray(features)[None], update_normalizer)[0]

    def peek(self, features: np.ndarray) -> np.ndarray:
        """:meth:`push` of a single stream's epoch that moves nothing: the state and the normaliser are left
        as they were (a provisional stage of the epoch in progress)."""
        saved = self.state_dict()
        probs = self.push(features, update_normalizer=False)
        self.load_state_dict(saved)
        return probs

    def state_dict(self) -> dict[str, Any]:
        return {"normalizer": self.normalizer.state_dict(), "model": self.state.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.normalizer.load_state_dict(state["normalizer"])
        self._stepper.load_stack_state(self.model.net.load_state(state["model"]))
