"""Cut the model-rate sample stream into 30-s epochs, each emitted the moment it is full."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from streamstage.signal._state import restored_array, restored_value


class EpochSamples(NamedTuple):
    """One complete epoch: ``data`` and ``missing`` are ``(n_channels, epoch_len)``."""

    index: int
    data: np.ndarray
    missing: np.ndarray


class EpochBuffer:
    """Holds at most one epoch of samples, in preallocated arrays, so memory does not grow overnight."""

    def __init__(self, n_channels: int, epoch_len: int) -> None:
        self.n_channels = n_channels
        self.epoch_len = epoch_len
        self._data = np.zeros((n_channels, epoch_len))
        self._missing = np.zeros((n_channels, epoch_len), dtype=bool)
        self._fill = 0
        self.index = 0

    def push(self, samples: np.ndarray, missing: np.ndarray) -> list[EpochSamples]:
        """Append ``(n, n_channels)`` samples; returns the epochs they completed, oldest first."""
        complete = []
        position = 0
        while position < len(samples):
            take = min(len(samples) - position, self.epoch_len - self._fill)
            self._data[:, self._fill : self._fill + take] = samples[position : position + take].T
            self._missing[:, self._fill : self._fill + take] = missing[position : position + take].T
            self._fill += take
            position += take
            if self._fill == self.epoch_len:
                complete.append(EpochSamples(self.index, self._data.copy(), self._missing.copy()))
                self._fill = 0
                self.index += 1
        return complete

    def state_dict(self) -> dict[str, Any]:
        return {
            "data": self._data[:, : self._fill].copy(),
            "missing": self._missing[:, : self._fill].copy(),
            "index": self.index,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = np.asarray(state.get("data", ()))
        fill = min(saved.shape[1], self.epoch_len) if saved.ndim == 2 else 0
        self._data[:, :fill] = restored_array(state, "data", (self.n_channels, fill), np.float64)
        self._missing[:, :fill] = restored_array(state, "missing", (self.n_channels, fill), bool)
        self._fill = fill
        self.index = restored_value(state, "index", int)
