"""Save and load nested pipeline state (dicts of arrays, tensors and scalars) without pickle.

The structure goes to JSON, each array or tensor to an ``.npz`` member, both in one file written atomically
(temp file, fsync, rename): a crash mid-write leaves the previous state intact, never a torn one.

PyTorch is imported only to restore a saved tensor: a state holding none (a night folder read by
``streamstage report``) saves and loads without it, and a tensor can only be saved once torch is loaded.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from streamstage.io.files import write_atomic

_META_KEY = "__structure__"


def _is_tensor(node: Any) -> bool:
    """Whether ``node`` is a torch tensor, without importing torch (none exists before it is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(node, torch.Tensor)


def _flatten(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(node, dict):
        return {str(k): _flatten(v, arrays) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_flatten(v, arrays) for v in node]
    if _is_tensor(node):
        key = f"a{len(arrays)}"
        arrays[key] = node.detach().cpu().numpy()
        return {"__tensor__": key}
    if isinstance(node, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = node
        return {"__array__": key}
    if isinstance(node, np.generic):
        return node.item()
    return node


def _restore(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(node, dict):
        if "__tensor__" in node:
            import torch

            return torch.from_numpy(arrays[node["__tensor__"]].copy())
        if "__array__" in node:
            return arrays[node["__array__"]].copy()
        return {k: _restore(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [_restore(v, arrays) for v in node]
    return node


def state_to_bytes(state: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    structure = _flatten(state, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_META_KEY: np.array(json.dumps(structure))})
    return buffer.getvalue()


def state_from_bytes(raw: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != _META_KEY}
        structure = json.loads(str(data[_META_KEY]))
    return _restore(structure, arrays)


def save_state(path: Path, state: dict[str, Any]) -> None:
    write_atomic(Path(path), state_to_bytes(state))


def load_state(path: Path) -> dict[str, Any]:
    return state_from_bytes(Path(path).read_bytes())
