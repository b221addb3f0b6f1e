"""Helpers the tests share: the CLI as a subprocess, a loopback replay, a night folder read back, a tiny
model. (Fixtures built from them are in conftest.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.sources import ArraySource
from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet


def tiny_model(n_layers: int = 1, seed: int | None = None, source: str = "tiny test net") -> StagingModel:
    """An untrained feature model with d_model 16: fast, and the same each time when ``seed`` is given."""
    if seed is not None:
        torch.manual_seed(seed)
    return StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=n_layers)).eval(), source=source)


def streamstage_cli(*args: str, **kwargs) -> subprocess.Popen:
    """``python -m streamstage ARGS`` with pipes; a hung process prints every thread's stack on SIGABRT."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamstage", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"},
        **kwargs,
    )


def loopback_replay(
    data_uv: np.ndarray,
    sfreq: float,
    name: str,
    speed: float,
    labels: tuple[str, ...] = ("Fpz-Cz",),
    **options,
) -> ReplayThread:
    """Replay ``data_uv`` as a uniquely named stream on the loopback config, started."""
    source = ArraySource(data_uv, sfreq, list(labels), source_id=name)
    options = {"wait_for_consumer_s": 30.0, "linger_s": 0.5, **options}
    return ReplayThread(source, speed, name=name, **options).start()


def hypnogram_rows(folder: Path) -> list[list[str]]:
    """The rows of a night folder's hypnogram.csv, header left out."""
    return [line.split(",") for line in (folder / "hypnogram.csv").read_text().splitlines()[1:]]


def night_events(folder: Path, name: str | None = None) -> list[dict]:
    """The night's events.jsonl records (only those called ``name`` when given)."""
    lines = (folder / "events.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line]
    return records if name is None else [r for r in records if r.get("event") == name]
