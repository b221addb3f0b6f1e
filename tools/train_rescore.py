"""Train the bidirectional morning re-score model (``streamstage/weights/rescore.pt``).

It sees the whole night at once, so it cannot stage live; it re-stages a saved raw night in the morning.
Trained on the Sleep-EDF feature set's Fpz-Cz channel, a tenth of the subjects held out for early stopping,
and scored on them.

    nice -n 10 python tools/train_rescore.py --features ../shared/data/sleep-edf-features \
        --out streamstage/weights/rescore.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from streamstage.model.checkpoint import save_model
from streamstage.model.stager import StagerConfig
from streamstage.training.data import load_feature_nights
from streamstage.training.predict import score_nights
from streamstage.training.protocols import split_validation
from streamstage.training.train import TrainConfig, train_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    nights = load_feature_nights(args.features, ["Fpz-Cz"])
    train, val = split_validation(nights, 0.1, args.seed)
    model, _ = train_model(
        train,
        val,
        StagerConfig(channels=("Fpz-Cz",), bidirectional=True),
        TrainConfig(seed=args.seed, max_steps=args.max_steps),
        on_progress=lambda step, total, record: print(step, total, json.dumps(record), flush=True),
    )
    scores = score_nights(model, val)
    model.training["held_out"] = {
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "kappa": round(scores.kappa, 4),
    }
    save_model(model, args.out)
    print(json.dumps(model.training["held_out"]), f"wrote {args.out}")


if __name__ == "__main__":
    main()
