"""Checked restore of saved arrays, shared by every stateful piece of the signal path.

A resumed night must fail loudly on a state saved by another configuration rather than run on with
mis-shaped buffers, so each ``load_state_dict`` goes through these helpers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from streamstage.errors import ResumeError


def restored_array(state: Mapping[str, Any], key: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A private copy of ``state[key]`` as ``dtype``, checked to have ``shape``."""
    if key not in state:
        raise ResumeError(f"saved signal state lacks '{key}'; resume from a state saved by this version.")
    array = np.array(state[key], dtype=dtype)
    if array.size == 0 and math.prod(shape) == 0:
        array = array.reshape(shape)  # JSON keeps no shape for empty arrays
    if array.shape != shape:
        raise ResumeError(
            f"saved signal state '{key}' has shape {array.shape}, expected {shape}; "
            "resume with the same channels, sampling rate and settings as the saved night."
        )
    return array


def restored_value(state: Mapping[str, Any], key: str, kind: type) -> Any:
    """``state[key]`` converted to ``kind`` (int, float, bool or str)."""
    if key not in state:
        raise ResumeError(f"saved signal state lacks '{key}'; resume from a state saved by this version.")
    return kind(np.asarray(state[key]).item()) if kind is not str else str(state[key])


def check_matches(state: Mapping[str, Any], key: str, expected: object) -> None:
    """Refuse a state whose fixed setting ``key`` differs from this object's."""
    saved = restored_value(state, key, type(expected))
    if saved != expected:
        raise ResumeError(
            f"saved signal state has {key}={saved!r} but this path has {key}={expected!r}; "
            "resume with the settings of the saved night."
        )
