"""The soak at toy sizes: one row per interval, every epoch counted, a verdict that flags growth."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from benchmarks.report import soak_table
from benchmarks.soak import LATENCY_TOLERANCE, RSS_TOLERANCE_MB, flatness, soak
from streamstage.errors import ConfigError
from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet


@pytest.fixture(scope="module")
def model() -> StagingModel:
    torch.manual_seed(0)
    return StagingModel(net=StagingNet(StagerConfig(d_model=16, n_layers=2)).eval(), source="tiny test net")


def _row(hours: float, rss_mb: float, median_ms: float, cpu_ms: float = 2.0) -> dict:
    latency = {"median_ms": median_ms, "p99_ms": 2 * median_ms}
    return {
        "hours": hours,
        "epochs": 120,
        "rss_mb": rss_mb,
        "latency_ms": latency,
        "cpu_ms_per_epoch": cpu_ms,
    }


def test_soak_rows_cover_the_stream(model: StagingModel) -> None:
    seen: list[dict] = []
    result = soak(model, 0.1, sfreq_hz=100.0, interval_h=0.025, chunk_s=2.0, on_interval=seen.append)
    rows = result["intervals"]
    assert rows == seen
    assert [row["hours"] for row in rows] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert sum(row["epochs"] for row in rows) == result["epochs"] >= 10
    assert sum(row["stream_s"] for row in rows) == pytest.approx(360.0)
    for row in rows:
        assert row["rss_mb"] > 10 and row["pipeline_s"] > 0 and row["x_realtime"] > 0
        assert row["cpu_ms_per_epoch"] > 0
        if row["epochs"]:
            assert 0 < row["latency_ms"]["median_ms"] <= row["latency_ms"]["p99_ms"]
    assert {"memory_flat", "latency_flat", "rss_slope_mb_per_h"} <= set(result["flatness"])
    json.dumps(result)
    table = soak_table(result)
    assert len(table.rows) == 4 and "memory" in table.caption


def test_soak_derives_one_channel_from_the_muse_montage(model: StagingModel) -> None:
    result = soak(model, 0.025, sfreq_hz=100.0, montage="muse", interval_h=0.025)
    assert result["channel"] == "AF7-TP9" and result["epochs"] >= 2


def test_soak_refuses_an_unknown_montage(model: StagingModel) -> None:
    with pytest.raises(ConfigError, match="montage"):
        soak(model, 0.025, montage="10-20")


def test_flatness_accepts_a_flat_run() -> None:
    rows = [_row(hour, 300.0 + 0.1 * (hour % 2), 3.0) for hour in range(1, 9)]
    verdict = flatness(rows)
    assert verdict["memory_flat"] and verdict["latency_flat"] and verdict["cpu_flat"]
    assert verdict["latency_ratio"] == pytest.approx(1.0)
    assert abs(verdict["rss_slope_mb_per_h"]) < 0.05


def test_flatness_flags_growing_memory_and_latency() -> None:
    rows = [_row(hour, 300.0 + 2.0 * hour, 3.0 * hour, cpu_ms=2.0 * hour) for hour in range(1, 9)]
    verdict = flatness(rows)
    assert verdict["rss_growth_mb"] == pytest.approx(14.0)
    assert verdict["rss_growth_mb"] > RSS_TOLERANCE_MB
    assert verdict["rss_slope_mb_per_h"] == pytest.approx(2.0)
    assert not verdict["memory_flat"]
    assert verdict["latency_ratio"] > LATENCY_TOLERANCE and not verdict["latency_flat"]
    assert verdict["cpu_ratio"] == pytest.approx(15 / 3) and not verdict["cpu_flat"]


def test_flatness_tells_a_busier_machine_from_more_work() -> None:
    rows = [_row(hour, 300.0, 2.0 if hour < 5 else 3.0, cpu_ms=1.5) for hour in range(1, 9)]
    verdict = flatness(rows)
    assert not verdict["latency_flat"] and verdict["cpu_flat"]


def test_soak_tool_writes_its_json(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "soak_tool", Path(__file__).parents[1] / "tools" / "soak.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    threads = str(torch.get_num_threads())
    assert tool.main(["--hours", "0.05", "--sfreq", "100", "--threads", threads, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "soak-0.05h.json").read_text())
    assert result["hours"] == 0.05 and result["intervals"] and "machine" in result
