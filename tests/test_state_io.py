"""Pipeline state survives a save/load round trip without pickle, and writes are atomic."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from streamstage.state_io import load_state, save_state, state_from_bytes, state_to_bytes


def test_nested_state_round_trip(tmp_path):
    state = {
        "signal": {"zi": np.arange(6.0).reshape(3, 2), "count": 7, "rate": 256.0, "flag": "good"},
        "model": {"layers": [{"ssm": torch.ones(1, 4, 2), "conv": torch.zeros(1, 4, 3)}]},
        "history": [1, 2.5, None, True],
        "scalar": np.float64(1.5),
    }
    save_state(tmp_path / "state.npz", state)
    loaded = load_state(tmp_path / "state.npz")
    np.testing.assert_array_equal(loaded["signal"]["zi"], state["signal"]["zi"])
    assert loaded["signal"]["count"] == 7 and loaded["signal"]["flag"] == "good"
    assert isinstance(loaded["model"]["layers"][0]["ssm"], torch.Tensor)
    assert torch.equal(loaded["model"]["layers"][0]["ssm"], state["model"]["layers"][0]["ssm"])
    assert loaded["history"] == [1, 2.5, None, True]
    assert loaded["scalar"] == 1.5


def test_save_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "state.npz"
    save_state(path, {"a": np.zeros(3)})
    save_state(path, {"a": np.ones(5)})
    assert load_state(path)["a"].shape == (5,)
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_bytes_round_trip_is_pickle_free():
    raw = state_to_bytes({"x": np.array(["a", "b"])})
    assert state_from_bytes(raw)["x"].tolist() == ["a", "b"]


def test_a_state_without_tensors_saves_and_loads_without_torch(tmp_path):
    probe = f"""
import sys
import numpy as np
from streamstage.state_io import load_state, save_state
save_state({str(tmp_path / "state.npz")!r}, {{"a": np.arange(3.0), "n": 2}})
state = load_state({str(tmp_path / "state.npz")!r})
assert state["a"].tolist() == [0.0, 1.0, 2.0] and state["n"] == 2
print("torch imported" if "torch" in sys.modules else "no torch")
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "no torch", result.stdout + result.stderr


def test_arrays_of_every_kind_keep_dtype_shape_and_values_and_are_writable():
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
        "mask": np.array([True, False, True]),
        "i64": np.array([-1, 2**40], dtype=np.int64),
        "zero_d": np.array(3.5),
        "empty": np.zeros((0, 4)),
        "text": np.array(["N1", "REM"]),
    }
    loaded = state_from_bytes(state_to_bytes({"arrays": arrays, "last": np.zeros(0)}))
    for name, array in arrays.items():
        got = loaded["arrays"][name]
        assert got.dtype == array.dtype and got.shape == array.shape, name
        np.testing.assert_array_equal(got, array)
        assert got.flags.writeable and got.flags.aligned, name
    assert loaded["last"].shape == (0,)


def test_a_state_saved_in_the_earlier_layout_still_loads():
    """Before, each array was an ``.npz`` member of its own: a night saved then resumes after an upgrade."""
    import io
    import json

    buffer = io.BytesIO()
    structure = {"zi": {"__array__": "a0"}, "ssm": {"__tensor__": "a1"}, "count": 7}
    np.savez(
        buffer,
        a0=np.arange(3.0),
        a1=np.ones((1, 2), np.float32),
        __structure__=np.array(json.dumps(structure)),
    )
    loaded = state_from_bytes(buffer.getvalue())
    assert loaded["zi"].tolist() == [0.0, 1.0, 2.0] and loaded["count"] == 7
    assert isinstance(loaded["ssm"], torch.Tensor) and loaded["ssm"].shape == (1, 2)
