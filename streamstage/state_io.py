"""Save and load nested pipeline state (dicts of arrays, tensors and scalars) without pickle.

The structure goes to JSON, the bytes of every array and tensor to one ``.npz`` member, both in one file
written atomically (temp file, fsync, rename): a crash mid-write leaves the previous state intact, never a
torn one. A state saved in the earlier layout (one member per array) still loads.

PyTorch is imported only to restore a saved tensor: a state holding none (a night folder read by
``streamstage report``) saves and loads without it, and a tensor can only be saved once torch is loaded.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from streamstage.io.files import write_atomic

_META_KEY = "__structure__"
_BLOB_KEY = "__arrays__"


def _is_tensor(node: Any) -> bool:
    """Whether ``node`` is a torch tensor, without importing torch (none exists before it is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(node, torch.Tensor)


def _flatten(node: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(node, dict):
        return {str(k): _flatten(v, arrays) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_flatten(v, arrays) for v in node]
    if _is_tensor(node):
        arrays.append(node.detach().cpu().numpy())
        return {"__tensor__": len(arrays) - 1}
    if isinstance(node, np.ndarray):
        arrays.append(node)
        return {"__array__": len(arrays) - 1}
    if isinstance(node, np.generic):
        return node.item()
    return node


def _restore(node: Any, arrays: Mapping[Any, np.ndarray]) -> Any:
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
    """Every array's bytes in one ``.npz`` member, their dtypes, shapes and offsets in the JSON beside the
    structure: two members however many arrays (one member each cost ~70 µs, a state holds dozens)."""
    arrays: list[np.ndarray] = []
    structure = _flatten(state, arrays)
    contiguous = [np.require(array, requirements="C") for array in arrays]  # keeps 0-d arrays 0-d
    offsets = np.cumsum([0] + [array.nbytes for array in contiguous]).tolist()
    layout = [[a.dtype.str, list(a.shape), at] for a, at in zip(contiguous, offsets[:-1], strict=True)]
    blob = np.frombuffer(b"".join(array.tobytes() for array in contiguous), dtype=np.uint8)
    meta = json.dumps({"structure": structure, "arrays": layout})
    buffer = io.BytesIO()
    np.savez(buffer, **{_BLOB_KEY: blob, _META_KEY: np.array(meta)})
    return buffer.getvalue()


def state_from_bytes(raw: bytes) -> dict[str, Any]:
    """A state from :func:`state_to_bytes`, or from its earlier form (one ``.npz`` member per array)."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        meta = json.loads(str(data[_META_KEY]))
        if _BLOB_KEY not in data.files:
            return _restore(meta, {k: data[k] for k in data.files if k != _META_KEY})
        blob = data[_BLOB_KEY]
    arrays = {
        index: np.frombuffer(blob, np.dtype(dtype), math.prod(shape), offset).reshape(tuple(shape))
        for index, (dtype, shape, offset) in enumerate(meta["arrays"])
    }
    return _restore(meta["structure"], arrays)


def save_state(path: Path, state: dict[str, Any]) -> None:
    write_atomic(Path(path), state_to_bytes(state))


def load_state(path: Path) -> dict[str, Any]:
    return state_from_bytes(Path(path).read_bytes())
