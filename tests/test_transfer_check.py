"""tools/transfer_check.py on a DREAMS-style folder the test writes: a one-column µV export and its 5-s
hypnogram, staged cold through the code of `streamstage stage` and scored on the covered windows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from streamstage.model.checkpoint import StagingModel, save_model
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.sim import SyntheticEEG

STAGES_30S = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4, 2, 0], dtype=np.int8)
DREAMS_CODE = {0: 5, 1: 3, 2: 2, 3: 1, 4: 4}  # W, N1, N2, N3 (S3), REM


@pytest.fixture(scope="module")
def transfer_check():
    spec = importlib.util.spec_from_file_location(
        "transfer_check", Path(__file__).parents[1] / "tools" / "transfer_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _dreams_folder(folder: Path, sfreq: float = 100.0) -> Path:
    eeg = SyntheticEEG(STAGES_30S, sfreq, seed=4).generate()[0]
    np.savetxt(folder / "excerpt9.txt", eeg, fmt="%.4f", header="[C3-A1]", comments="")
    codes = [DREAMS_CODE[int(s)] for s in STAGES_30S for _ in range(6)]
    codes[7] = 3  # one 5-s step of another stage: that 30-s window is not scored
    (folder / "Hypnogram_excerpt9.txt").write_text("[Hypnogram]\n" + "\n".join(map(str, codes)) + "\n")
    return folder


def test_transfer_check_scores_each_model_and_its_members(tmp_path, transfer_check, monkeypatch):
    nets = [StagingNet(StagerConfig(channels=("C3-A1",), d_model=16, n_layers=1)).eval() for _ in range(2)]
    save_model(StagingModel(net=EnsembleNet.of(nets)), tmp_path / "ens.pt")
    out = tmp_path / "transfer.json"
    argv = ["transfer_check", "--dreams", str(_dreams_folder(tmp_path)), "--model", str(tmp_path / "ens.pt")]
    monkeypatch.setattr(sys, "argv", [*argv, "--members", "--no-yasa", "--out", str(out)])
    transfer_check.main()
    record = json.loads(out.read_text())
    assert record["recordings"] == ["excerpt9 C3-A1"]
    assert [m["scorer"] for m in record["models"]] == [
        str(tmp_path / "ens.pt"),
        f"{tmp_path / 'ens.pt'} member 1",
        f"{tmp_path / 'ens.pt'} member 2",
    ]
    pooled = record["models"][0]["pooled"]
    assert pooled["windows"] == len(STAGES_30S) - 1  # the window with two stages is left out
    assert record["spread"]["n_models"] == 2
    assert "0-10 min" in record["models"][0]["by_minutes_since_start"]
