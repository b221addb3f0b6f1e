"""The last few seconds of filtered signal, for the dashboard's live trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from streamstage.signal._state import restored_array


class TraceRing:
    """A fixed ring buffer of the newest ``length`` samples of one channel."""

    def __init__(self, length: int) -> None:
        self.length = length
        self._ring = np.zeros(length)
        self._next = 0
        self._count = 0

    def push(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)[-self.length :]
        positions = (self._next + np.arange(len(values))) % self.length
        self._ring[positions] = values
        self._next = (self._next + len(values)) % self.length
        self._count = min(self._count + len(values), self.length)

    @property
    def values(self) -> np.ndarray:
        """The buffered samples, oldest first (fewer than ``length`` until the ring has filled)."""
        return np.roll(self._ring, -self._next)[self.length - self._count :]

    def state_dict(self) -> dict[str, Any]:
        return {"values": self.values}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        count = min(len(np.asarray(state.get("values", ()))), self.length)
        self._ring[:] = 0.0
        self._ring[:count] = restored_array(state, "values", (count,), np.float64)
        self._next = count % self.length
        self._count = count
