"""What the raw model costs beside the feature model, on one thread.

Per stream and batch size (1, 16, 128 streams stepped together):

- per sample: the raw front end stepped over 1-s chunks (100 samples at the model rate), per sample of each
  stream; per epoch: that over a whole epoch plus the epoch network's step (normaliser + ensemble); the
  feature model's per-epoch cost is the recipe's Welch features plus the same step;
- real-time factor: a synthetic 256-Hz night through the whole pipeline (signal path, model, provisional
  stages every 5 s) in 60-s chunks (``stage``), 1-s and 0.1-s ones (the live loop polls every 0.1 s),
  night length over the fastest of ``--runs`` wall times, one stream;
- state bytes: what a stream carries (front end + epoch network for the raw model).

    python benchmarks/raw_cost.py                 # writes docs/results/raw_model_bench.json
    python benchmarks/raw_cost.py --hours 0.5     # a shorter night for the real-time rows
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from streamstage.epoch_stager import EpochStager
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel, load_model
from streamstage.pipeline import StagingPipeline
from streamstage.sim import SyntheticEEG, synthetic_hypnogram

BATCHES = (1, 16, 128)
EPOCH = 3000
CHUNK = 100
INPUT_SFREQ = 256.0
OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "raw_model_bench.json"


def _best_of(runs: int, work) -> float:
    """The fastest of ``runs`` timings of ``work()``, in seconds: the least disturbed by other load."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def epoch_costs(raw: StagingModel, feature: StagingModel, batch: int, runs: int) -> dict[str, float]:
    rng = np.random.default_rng(batch)
    samples = rng.normal(0.0, 30.0, (batch, 2 * EPOCH)).astype(np.float32)
    front_end = raw.front_end
    assert front_end is not None

    def front_end_epoch() -> None:
        state = front_end.init_state(batch)
        for start in range(0, 2 * EPOCH, CHUNK):
            _, state = front_end.step(torch.from_numpy(samples[:, start : start + CHUNK]), state)

    front_s = _best_of(runs, front_end_epoch) / 2  # per epoch, for the whole batch
    raw_stager, feature_stager = EpochStager(raw, batch_size=batch), EpochStager(feature, batch_size=batch)
    raw_inputs = np.zeros((batch, 1, raw.config.n_features), dtype=np.float32)
    features = epoch_features(samples[:, :EPOCH].astype(np.float64))[:, None]
    raw_inputs[..., :10] = features
    raw_step_s = _best_of(runs, lambda: [raw_stager.push_batch(raw_inputs) for _ in range(20)]) / 20
    welch_s = _best_of(runs, lambda: epoch_features(samples[:, :EPOCH].astype(np.float64)))
    feature_step_s = _best_of(runs, lambda: [feature_stager.push_batch(features) for _ in range(20)]) / 20
    per_stream = 1e6 / batch
    return {
        "batch": batch,
        "raw_front_end_us_per_sample": round(front_s * per_stream / EPOCH, 3),
        "raw_front_end_us_per_epoch": round(front_s * per_stream, 1),
        "epoch_network_us_per_epoch": round(raw_step_s * per_stream, 1),
        "raw_us_per_epoch": round((front_s + raw_step_s) * per_stream, 1),
        "feature_welch_us_per_epoch": round(welch_s * per_stream, 1),
        "feature_us_per_epoch": round((welch_s + feature_step_s) * per_stream, 1),
    }


def real_time(model: StagingModel, night: np.ndarray, chunk_s: float, runs: int) -> dict[str, float]:
    chunk = round(chunk_s * INPUT_SFREQ)

    def stage_night() -> None:
        pipeline = StagingPipeline(model, INPUT_SFREQ)
        for start in range(0, len(night), chunk):
            pipeline.push(night[start : start + chunk])
            pipeline.take_provisional()

    wall_s = _best_of(runs, stage_night)
    return {
        "chunk_s": chunk_s,
        "wall_s": round(wall_s, 2),
        "real_time_factor": round(len(night) / INPUT_SFREQ / wall_s),
    }


def state_bytes(model: StagingModel) -> int:
    pipeline = StagingPipeline(model, INPUT_SFREQ)
    epoch_state = pipeline.stager.state.nbytes + pipeline.stager.normalizer._mean.nbytes
    return epoch_state + (0 if pipeline.raw is None else pipeline.raw.nbytes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=2.0, help="night length for the real-time rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw, feature = load_model("raw"), load_model("default")
    console = Console(width=140)
    costs = [epoch_costs(raw, feature, batch, args.runs) for batch in BATCHES]
    night = SyntheticEEG(synthetic_hypnogram(args.hours, seed=1), INPUT_SFREQ, seed=1).generate()[0]
    night = night[:, None].astype(np.float64)
    live = {
        name: [real_time(model, night, chunk_s, args.runs) for chunk_s in (60.0, 1.0, 0.1)]
        for name, model in (("raw", raw), ("feature", feature))
    }
    record = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "models": {"raw": raw.source, "feature": feature.source},
        "per_epoch_and_sample": costs,
        "real_time": {"night_h": args.hours, "input_sfreq_hz": INPUT_SFREQ, **live},
        "state_bytes": {"raw": state_bytes(raw), "feature": state_bytes(feature)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    table = Table(title="raw vs feature model, one thread (µs per stream)")
    for column in (
        "batch",
        "raw per sample",
        "raw front end / epoch",
        "epoch net / epoch",
        "raw / epoch",
        "feature / epoch",
    ):
        table.add_column(column, justify="right")
    for c in costs:
        table.add_row(
            str(c["batch"]),
            f"{c['raw_front_end_us_per_sample']:.2f}",
            f"{c['raw_front_end_us_per_epoch']:.0f}",
            f"{c['epoch_network_us_per_epoch']:.0f}",
            f"{c['raw_us_per_epoch']:.0f}",
            f"{c['feature_us_per_epoch']:.0f}",
        )
    console.print(table)
    for name, rows in live.items():
        console.print(
            name, ", ".join(f"{r['chunk_s']:g}-s chunks {r['real_time_factor']}x real time" for r in rows)
        )
    console.print(f"state bytes {record['state_bytes']}; wrote {args.out}")


if __name__ == "__main__":
    main()
