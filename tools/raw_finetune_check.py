"""End-to-end fine-tuning of the shipped raw model at full size, on synthetic labelled nights: does the loop
run, what does a step cost on one core, and does it move held-out synthetic nights the way it should?

Synthetic EEG is not sleep: a gain here says the mechanism works (gradients reach the front end, the extras
start to be read), not that the model stages real nights better. Beside it, the same fine-tuning of the
epoch network alone on the recipe features (front end frozen, extras withheld): what end to end adds.
The nights are written as EDF + hypnogram pairs and read back through ``labelled_nights`` and
``evaluate``'s scorer, as ``train --raw`` and ``evaluate --edf`` do.

    python tools/raw_finetune_check.py --out docs/results/raw_finetune_synthetic.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import edfio
import numpy as np
import torch
from rich.console import Console

from streamstage.model.checkpoint import StagingModel, load_model
from streamstage.sim import SyntheticEEG, synthetic_hypnogram
from streamstage.training.edf_pairs import labelled_nights
from streamstage.training.metrics import StagingScores, score
from streamstage.training.raw_finetune import FinetuneConfig, finetune
from streamstage.training.sources import stage_edf_pairs

SFREQ = 100.0
NIGHT_H = 2.0


def write_nights(folder: Path, seeds: range) -> None:
    folder.mkdir(parents=True)
    for seed in seeds:
        hypnogram = synthetic_hypnogram(NIGHT_H, seed=seed)
        values = SyntheticEEG(hypnogram, SFREQ, seed=seed).generate()[0].astype(np.float64)
        signal = edfio.EdfSignal(
            values, SFREQ, label="Fpz-Cz", physical_dimension="uV", physical_range=(-800, 800)
        )
        edfio.Edf([signal]).write(folder / f"night{seed}.edf")
        (folder / f"night{seed}-hypnogram.txt").write_text("\n".join(map(str, hypnogram)) + "\n")


def held_out_scores(model: StagingModel, folder: Path) -> dict[str, float]:
    pooled = np.zeros((5, 5), dtype=np.int64)
    for recording in stage_edf_pairs(folder, model, ["Fpz-Cz"]):
        predicted = np.array([epoch.stage for epoch in recording.staged], dtype=np.int64)
        pooled += score(recording.labels, predicted).confusion
    scores = StagingScores(pooled)
    return {"epochs": scores.n_epochs, "accuracy": round(scores.accuracy, 4), "kappa": round(scores.kappa, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--train-nights", type=int, default=6)
    parser.add_argument("--test-nights", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console(width=140)
    start = load_model("raw")
    with tempfile.TemporaryDirectory() as scratch:
        train_dir, test_dir = Path(scratch) / "train", Path(scratch) / "test"
        write_nights(train_dir, range(args.train_nights))
        write_nights(test_dir, range(100, 100 + args.test_nights))
        nights = labelled_nights(train_dir, ["Fpz-Cz"])
        before = held_out_scores(start, test_dir)
        started = time.perf_counter()
        tuned, history = finetune(start, nights, FinetuneConfig(steps=args.steps))
        seconds = time.perf_counter() - started
        after = held_out_scores(tuned, test_dir)
        baseline, baseline_history = finetune(
            start, nights, FinetuneConfig(steps=args.steps, train_front_end=False)
        )
        features_only = held_out_scores(baseline, test_dir)
    extras = [
        float(net.embed[0].weight.detach().reshape(64, 1, -1)[..., 10:].abs().mean())
        for net in getattr(tuned.net, "members", [tuned.net])
    ]
    record = {
        "note": "synthetic EEG: a mechanism check, not an accuracy figure",
        "train": {"nights": len(nights), "hours_each": NIGHT_H, "epochs": int(sum(len(n) for n in nights))},
        "config": FinetuneConfig(steps=args.steps).to_dict(),
        "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / args.steps, 3),
        "history": history,
        "held_out_synthetic": {
            "nights": args.test_nights,
            "before": before,
            "after": after,
            "epoch_network_only_on_the_recipe_features": features_only,
        },
        "epoch_network_only_history": baseline_history,
        "mean_abs_weight_on_the_extras_after": [round(v, 5) for v in extras],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    console.print(
        f"{args.steps} steps in {seconds:.0f} s; stage loss {history[0]['stage_loss']} -> "
        f"{history[-1]['stage_loss']}; held-out synthetic kappa {before['kappa']} -> {after['kappa']} "
        f"(epoch network only, recipe features: {features_only['kappa']}); "
        f"weight on the extras {extras}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
