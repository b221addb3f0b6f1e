"""Shared fixtures. LSL in tests is loopback-only: LSLAPICFG points at the copied loopback config
before pylsl is imported anywhere, so no discovery packet leaves 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads, as the CLI does: threads contend

from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).resolve().parent
LOOPBACK_CFG = TESTS_DIR / "lsl_loopback.cfg"
os.environ["LSLAPICFG"] = str(LOOPBACK_CFG)

# The test tensors are tiny: a second intra-op thread only adds contention on a shared 2-core machine.
torch.set_num_threads(1)

SHARED_DATA = TESTS_DIR.parent.parent / "shared" / "data"


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained one-layer feature model (seed 1): what staging tests need when accuracy is not tested."""
    from tests.nights import tiny_model as build

    return build(seed=1)


@pytest.fixture
def shared_data() -> Path:
    """The real data beside the checkout; tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED_DATA
