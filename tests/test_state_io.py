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
