"""Benchmark sections at toy sizes: the JSON they produce has the right structure and sane values (never
timings: a shared CI machine makes any time bound flaky)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import cli as harness
from benchmarks.batching import bench_batching
from benchmarks.inputs import (
    CHANNEL,
    epoch_tokens,
    synthetic_epochs,
    synthetic_night,
    write_night_edf,
)
from benchmarks.lab_beds import bench_lab
from benchmarks.live_path import bench_live_path
from benchmarks.lsl_throughput import bench_lsl_replay
from benchmarks.mamba_step import bench_mamba_steps
from benchmarks.measure import at_marks, latency_summary, machine_info, rss_bytes
from benchmarks.report import bench_tables
from benchmarks.runner import BenchSizes, run_benchmarks
from benchmarks.startup import bench_startup
from benchmarks.throughput import bench_file_pipeline, profiled
from benchmarks.transformer_cost import bench_transformer
from benchmarks.yasa_peer import bench_yasa
from streamstage.commands import bench as bench_command
from streamstage.errors import ConfigError
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.stager import StagerConfig, StagingNet

MARKS = (3, 6, 12)
SFREQ_HZ = 100.0


@pytest.fixture(scope="module")
def model() -> StagingModel:
    torch.manual_seed(0)
    net = StagingNet(StagerConfig(d_model=16, n_layers=2)).eval()
    return StagingModel(net=net, source="tiny test net")


@pytest.fixture(scope="module")
def epochs() -> np.ndarray:
    return synthetic_epochs(5)


@pytest.fixture(scope="module")
def tokens(epochs: np.ndarray) -> np.ndarray:
    return epoch_tokens(epochs, max(MARKS))


@pytest.fixture(scope="module")
def night_edf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("night")
    return write_night_edf(folder / "night.edf", synthetic_night(4 / 60, SFREQ_HZ), SFREQ_HZ)


def _positive_summary(summary: dict[str, float], n: int) -> None:
    assert summary["n"] == n
    assert 0 < summary["median_ms"] <= summary["p99_ms"]


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([0.001, 0.002, 0.003])
    assert summary["median_ms"] == pytest.approx(2.0)
    assert summary["mean_ms"] == pytest.approx(2.0)
    assert 2.0 < summary["p99_ms"] <= 3.0
    assert np.isnan(latency_summary([])["median_ms"])


def test_at_marks_summarises_the_window_before_each_mark() -> None:
    seen: list[int] = []

    def step(index: int) -> dict[str, float]:
        seen.append(index)
        return {"step": (index + 1) / 1000}

    rows = at_marks(step, [6, 2], window=2, snapshot=lambda: {"seen": len(seen)})
    assert seen == list(range(6))
    assert [row["epochs"] for row in rows] == [2, 6]
    assert [row["seen"] for row in rows] == [2, 6]
    assert rows[1]["step_ms"]["median_ms"] == pytest.approx(5.5)  # epochs 5 and 6 only
    assert rows[0]["hours"] == pytest.approx(2 / 120)


def test_machine_info_and_memory_are_measured() -> None:
    info = machine_info()
    assert info["cpu"] and info["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert rss_bytes() > 10 * 1024 * 1024


def test_synthetic_epochs_and_tokens_have_the_model_shapes() -> None:
    raw = synthetic_epochs(5, n_channels=2)
    assert raw.shape == (5, 2, 3000)
    tokens = epoch_tokens(raw, 12)
    assert tokens.shape == (12, 2, 10) and tokens.dtype == np.float32
    assert np.all(np.isfinite(tokens))


def test_live_path_state_stays_the_same_size(model: StagingModel, epochs: np.ndarray) -> None:
    result = bench_live_path(model, epochs, MARKS, window=3)
    marks = result["marks"]
    assert [row["epochs"] for row in marks] == list(MARKS)
    for row in marks:
        for part in ("features_ms", "step_ms", "live_path_ms"):
            _positive_summary(row[part], 3)
        assert row["live_path_ms"]["median_ms"] >= row["step_ms"]["median_ms"]
        assert row["rss_mb"] > 10
    assert len({row["state_bytes"] for row in marks}) == 1
    assert marks[0]["state_bytes"] > 0
    assert result["n_parameters"] == model.n_parameters()


def test_transformer_baseline_matches_size_and_its_cache_grows(
    model: StagingModel, tokens: np.ndarray
) -> None:
    result = bench_transformer(model, tokens, MARKS, window=2, reattend_steps=2)
    assert (
        abs(result["transformer_parameters"] - result["mamba_parameters"]) <= 0.1 * result["mamba_parameters"]
    )
    assert result["d_model"] == model.config.d_model and result["n_layers"] == model.config.n_layers
    kv_bytes = [row["state_bytes"] for row in result["kv_cache"]]
    assert kv_bytes[0] > 0 and kv_bytes == [kv_bytes[0] * mark // MARKS[0] for mark in MARKS]
    history_bytes = [row["state_bytes"] for row in result["reattend"]]
    assert history_bytes == [mark * tokens[0].size * 4 for mark in MARKS]
    for row in result["kv_cache"]:
        _positive_summary(row["step_ms"], 2)
    for row in result["reattend"]:
        _positive_summary(row["step_ms"], 2)
        assert row["peak_rss_mb"] >= row["rss_mb"] * 0.99


def test_batching_state_grows_with_streams_only(model: StagingModel, tokens: np.ndarray) -> None:
    result = bench_batching(model.net, tokens, [4, 1], n_steps=3, warmup=1)
    one, four = result["rows"]
    assert (one["streams"], four["streams"]) == (1, 4)
    assert four["state_bytes"] == 4 * one["state_bytes"]
    for row in (one, four):
        _positive_summary(row["batch_ms"], 3)
        _positive_summary(row["fast_batch_ms"], 3)
        assert row["per_stream_median_ms"] == pytest.approx(row["batch_ms"]["median_ms"] / row["streams"])
        assert row["fast_per_stream_median_ms"] == pytest.approx(
            row["fast_batch_ms"]["median_ms"] / row["streams"]
        )


def test_lab_bench_steps_beds_together_and_stages_every_bed(model: StagingModel, epochs: np.ndarray) -> None:
    result = bench_lab(
        model, epoch_features(epochs), [3, 1], rounds=2, realtime_beds=[3, 2], realtime_rounds=2
    )
    assert [row["beds"] for row in result["batching"]] == [1, 3]
    for row in result["batching"]:
        for part in ("separate", "lab", "batched_call"):
            _positive_summary(row[f"{part}_round_ms"], 2)
        assert row["lab_per_bed_ms"] == pytest.approx(row["lab_round_ms"]["median_ms"] / row["beds"])
        assert 1 <= row["mean_batch"] <= row["beds"]
        assert row["largest_probability_difference"] < 1e-5  # the same numbers, batched or not
    assert [row["beds"] for row in result["realtime"]] == [2, 3]
    for row in result["realtime"]:
        assert row["epochs_staged"] == row["epochs_expected"] == 2 * row["beds"]
        _positive_summary(row["latency_ms"], 2 * row["beds"])
        assert row["worst_ms"] >= row["latency_ms"]["p99_ms"] and row["cpu_s_per_epoch_of_all_beds"] > 0
    meeting = [row["beds"] for row in result["realtime"] if row["meets_bound"]]
    assert result["largest_beds_meeting_bound"] == max(meeting, default=0)
    assert len(result["load_average_before"]) == 3
    titles = [table.title for table in bench_tables({"lab": result})]
    assert [title.split(":")[0] for title in titles] == [
        "A lab's beds due together",
        "Beds per core in real time",
    ]
    json.dumps(result)


@pytest.mark.parametrize("members", [1, 2])
def test_mamba_steps_fast_beside_reference(model: StagingModel, tokens: np.ndarray, members: int) -> None:
    net = model.net if members == 1 else EnsembleNet.of([model.net, model.net])
    result = bench_mamba_steps(net, tokens, MARKS, window=3)
    assert [row["epochs"] for row in result["marks"]] == list(MARKS)
    for row in result["marks"]:
        _positive_summary(row["reference_step_ms"], 3)
        _positive_summary(row["fast_step_ms"], 3)
        _positive_summary(row["network_fast_step_ms"], 3)
        assert row["state_bytes"] == net.init_state(1).nbytes
        assert row["network_state_bytes"] == model.net.init_state(1).nbytes
    assert result["n_members"] == members
    assert result["largest_probability_difference"] < 1e-5


def test_startup_rows_say_whether_torch_was_imported() -> None:
    (help_row, run_row) = bench_startup([("--help",), ("run", "--help")], repeats=1)
    assert help_row["command"] == "--help" and not help_row["imports_torch"]
    assert run_row["imports_torch"]
    assert help_row["seconds"] > 0


def test_file_pipeline_throughput_and_profile(model: StagingModel, night_edf: Path) -> None:
    result = bench_file_pipeline(model, night_edf, CHANNEL)
    assert result["hours"] == pytest.approx(4 / 60)
    assert 5 <= result["epochs"] <= 8
    assert result["seconds"] > 0 and result["x_realtime"] > 0
    assert result["meets_target"] == (result["x_realtime"] >= result["target_x_realtime"])
    profile = profiled(lambda: bench_file_pipeline(model, night_edf, CHANNEL), hours=4 / 60, top=5)
    assert len(profile["top"]) == 5
    own = [entry["own_s"] for entry in profile["top"]]
    assert own == sorted(own, reverse=True)
    assert all(0 <= entry["own_share"] <= 1 and entry["calls"] >= 1 for entry in profile["top"])


def test_lsl_replay_delivers_every_sample(model: StagingModel, night_edf: Path) -> None:
    result = bench_lsl_replay(model, night_edf, CHANNEL, f"bench-test-{uuid.uuid4().hex[:8]}", 30.0)
    assert result["samples_received"] == result["samples_expected"] == result["samples_sent"]
    assert result["slots_filled"] == 0 and result["samples_lost"] == 0
    assert result["epochs"] == bench_file_pipeline(model, night_edf, CHANNEL)["epochs"]
    assert result["x_realtime"] > 0


def test_yasa_row_is_skipped_with_a_setup_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yasa", None)  # import yasa now raises ImportError
    result = bench_yasa(np.zeros(3000, dtype=np.float32), SFREQ_HZ, CHANNEL)
    assert set(result) == {"skipped"}
    assert ".venv-bench" in result["skipped"] and "constraints.txt" in result["skipped"]


def test_run_benchmarks_compares_and_reports(model: StagingModel) -> None:
    sizes = BenchSizes(
        marks_h=(0.025, 0.05),
        window_epochs=2,
        reattend_steps=1,
        distinct_epochs=5,
        batch_sizes=(1, 2),
        batch_steps=2,
    )
    results = run_benchmarks(model, sizes, ["transformer", "live", "mamba", "batching"])
    assert {"machine", "model", "sizes", "live", "mamba", "transformer", "batching", "comparison"} <= set(
        results
    )
    assert [row["hours"] for row in results["comparison"]] == [0.025, 0.05]
    for row in results["comparison"]:
        assert row["kv_cache_time_ratio"] > 0 and row["reattend_time_ratio"] > 0
        assert row["mamba_reference_time_ratio"] > 0
        assert row["kv_cache_memory_ratio"] == row["kv_cache_bytes"] / row["mamba_state_bytes"]
    tables = bench_tables(results)
    assert [len(table.rows) for table in tables] == [2, 2, 2, 2]
    markdown = tables[2].to_markdown()
    assert markdown.startswith("**Mamba vs causal Transformer") and markdown.count("\n| ") == 3
    json.dumps(results)
    with pytest.raises(ConfigError, match="gpu"):
        run_benchmarks(model, sizes, ["live", "gpu"])


def test_archive_section_stages_every_night_on_a_pool_and_on_dask(model: StagingModel) -> None:
    pytest.importorskip("distributed")
    sizes = BenchSizes(archive_nights=2, archive_hours=0.05, archive_repeats=1, archive_workers=(1,))
    archive = run_benchmarks(model, sizes, ["archive"])["archive"]
    assert [(m["runner"], m["workers"], m["nights"]) for m in archive["measurements"]] == [
        ("process pool", 1, 2),
        ("dask", 1, 2),
    ]
    assert all(m["nights_per_min"] > 0 and m["cpu_s_per_night"] > 0 for m in archive["measurements"])
    (table,) = bench_tables({"archive": archive})
    assert len(table.rows) == 2 and "Scaling" in table.caption
    json.dumps(archive)


def test_harness_writes_json_and_markdown(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    harness.add_arguments(parser)
    threads = str(torch.get_num_threads())
    args = parser.parse_args(
        ["--quick", "--sections", "live,batching,lab", "--threads", threads, "--out", str(tmp_path)]
    )
    assert harness.run(args) == 0
    results = json.loads((tmp_path / "bench-quick.json").read_text())
    assert results["quick"] is True and {"live", "batching", "lab"} <= set(results)
    assert "transformer" not in results
    markdown = (tmp_path / "bench-quick.md").read_text()
    assert "Live path per epoch" in markdown and "Beds per core in real time" in markdown


def test_bench_command_runs_the_checkouts_harness() -> None:
    assert bench_command.checkout_harness() is harness
    parser = argparse.ArgumentParser()
    bench_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick"])
    assert args.handler is bench_command.run and args.quick


def test_bench_command_without_a_checkout_says_where_the_benchmarks_live(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed wheel holds no harness: the command says so in one line and fails."""
    monkeypatch.setattr(bench_command, "checkout_harness", lambda: None)
    parser = argparse.ArgumentParser()
    bench_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench"])
    assert bench_command.run(args) == 1
    assert "benchmarks/ folder" in capsys.readouterr().err
