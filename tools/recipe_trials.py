"""Compare training recipes for transfer on Sleep-EDF alone, so no cross-lab recording is tuned on.

Every recipe trains on the same training subjects (Fpz-Cz) and is scored on held-out subjects three ways:
in-domain (Fpz-Cz, cold start at the night's start), montage shifts (the same nights' Pz-Oz, a derivation
the model never saw unless the recipe mixes montages, and the horizontal EOG, which no recipe trains on, as
a harsh stand-in for another lab's electrodes) and mid-night joins (cold start at random points of sleep,
by minutes since the join). Run several seeds per recipe: single runs move by +-0.1 kappa.

    python tools/recipe_trials.py --features ../shared/data/sleep-edf-features --recipe fresh_aug --seed 0 \\
        --out docs/results/recipe_trials.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from streamstage.features import NormalizerConfig
from streamstage.model.stager import StagerConfig
from streamstage.training.augment import NO_AUGMENTATION, TransferAugmentation
from streamstage.training.data import FeatureNight, load_feature_nights, subjects_of
from streamstage.training.joins import join_scores, random_joins
from streamstage.training.predict import score_nights
from streamstage.training.protocols import split_validation
from streamstage.training.train import TrainConfig, train_model

RECIPES: dict[str, dict] = {
    "first": {"fresh_start_prob": 0.0, "augmentation": NO_AUGMENTATION},
    "first_aug": {"fresh_start_prob": 0.0, "augmentation": TransferAugmentation()},
    "fresh": {"fresh_start_prob": 1.0, "augmentation": NO_AUGMENTATION},
    "fresh_aug": {"fresh_start_prob": 1.0, "augmentation": TransferAugmentation()},
    "fresh_aug_mix": {"fresh_start_prob": 1.0, "augmentation": TransferAugmentation()},
    "half": {"fresh_start_prob": 0.5, "augmentation": NO_AUGMENTATION},
    "half_aug": {"fresh_start_prob": 0.5, "augmentation": TransferAugmentation()},
    "first_anchor": {"fresh_start_prob": 0.0, "augmentation": NO_AUGMENTATION},
    "half_anchor": {"fresh_start_prob": 0.5, "augmentation": NO_AUGMENTATION},
    "half_aug_anchor": {"fresh_start_prob": 0.5, "augmentation": TransferAugmentation()},
}
ANCHORED = {"first_anchor", "half_anchor", "half_aug_anchor"}
"""Recipes whose normaliser reference is anchored by the stage prior (fitted on the training nights)."""
MIXED_MONTAGES = {"fresh_aug_mix"}
"""Recipes that train one channel on both EEG derivations of each training night (Fpz-Cz and Pz-Oz), as
separate nights of the same subject: two montages teach the model what does not depend on one."""
N_TEST_SUBJECTS = 16


def held_out(nights: list[FeatureNight], split_seed: int) -> tuple[list[FeatureNight], list[FeatureNight]]:
    order = np.random.default_rng(split_seed).permutation(subjects_of(nights))
    test = set(order[:N_TEST_SUBJECTS].tolist())
    return [n for n in nights if n.subject not in test], [n for n in nights if n.subject in test]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=1234)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    fpz = load_feature_nights(args.features, ["Fpz-Cz"])
    pz = {n.name: n for n in load_feature_nights(args.features, ["Pz-Oz"])}
    eog = {n.name: n for n in load_feature_nights(args.features, ["EOG"])}
    train_pool, test = held_out(fpz, args.split_seed)
    train, val = split_validation(train_pool, 0.1, seed=args.seed)
    if args.recipe in MIXED_MONTAGES:
        train = train + [pz[n.name] for n in train]
    config = dataclasses.replace(
        TrainConfig(seed=args.seed, max_steps=args.max_steps), **RECIPES[args.recipe]
    )
    normalizer = NormalizerConfig(anchored=args.recipe in ANCHORED)
    model, history = train_model(train, val, StagerConfig(), config, normalizer)
    joins = random_joins(test, per_night=3, seed=args.split_seed)
    record = {
        "recipe": args.recipe,
        "seed": args.seed,
        "steps": history[-1]["step"],
        "in_domain": score_nights(model, test).to_dict(),
        "montage_shift": score_nights(model, [pz[n.name] for n in test]).to_dict(),
        "eog_shift": score_nights(model, [eog[n.name] for n in test]).to_dict(),
        "joins": join_scores(model, test, joins).to_dict(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    for key in ("in_domain", "montage_shift", "eog_shift"):
        record[key] = {k: record[key][k] for k in ("accuracy", "macro_f1", "kappa")}
    with args.out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
