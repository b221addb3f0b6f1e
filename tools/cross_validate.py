"""Subject-wise cross-validation of the staging model on the Sleep-EDF feature set.

Protocols: ``sedf20`` (subjects 00-19, 20-fold = leave-one-subject-out) and ``sedf78`` (all shared subjects,
10-fold). Every held-out night is staged through the streaming model epoch by epoch; pooled metrics go to
a JSON file and a table. ``--bidirectional`` trains the offline reference instead of the causal model.

    python tools/cross_validate.py --features ../shared/data/sleep-edf-features --protocol sedf20
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from streamstage import STAGES
from streamstage.features import CAUSAL, NIGHT_ZSCORE, NormalizerConfig
from streamstage.model.stager import StagerConfig
from streamstage.training.augment import NO_AUGMENTATION
from streamstage.training.data import load_feature_nights
from streamstage.training.metrics import StagingScores
from streamstage.training.protocols import SEDF20_SUBJECTS, cross_validate
from streamstage.training.train import TrainConfig

PROTOCOL_FOLDS = {"sedf20": 20, "sedf78": 10}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--protocol", choices=sorted(PROTOCOL_FOLDS), default="sedf20")
    parser.add_argument("--folds", type=int, help="override the protocol's number of folds")
    parser.add_argument("--channels", nargs="+", default=["Fpz-Cz"])
    parser.add_argument("--bidirectional", action="store_true", help="offline reference: sees the future")
    parser.add_argument(
        "--night-zscore", action="store_true", help="offline reference: whole-night z-scored features"
    )
    parser.add_argument("--max-steps", type=int, default=TrainConfig.max_steps)
    parser.add_argument("--d-model", type=int, default=StagerConfig.d_model)
    parser.add_argument("--layers", type=int, default=StagerConfig.n_layers)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recipe",
        choices=("transfer", "first"),
        default="transfer",
        help="transfer: the shipped recipe (cold-start crops, augmentations); first: the first recipe "
        "(normaliser settled from the night start, no augmentation)",
    )
    parser.add_argument(
        "--extra-montage",
        action="append",
        default=[],
        help="also train the single-channel model on this derivation of the training nights (e.g. Pz-Oz)",
    )
    parser.add_argument("--plain-reference", action="store_true", help="no stage anchor on the reference")
    parser.add_argument("--members", type=int, default=1, help="ensemble members per fold (seeds)")
    parser.add_argument("--joins-per-night", type=int, default=3, help="mid-night joins scored per night")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    console = Console()
    nights = load_feature_nights(args.features, args.channels)
    if args.protocol == "sedf20":
        nights = [n for n in nights if n.subject in SEDF20_SUBJECTS]
    n_folds = args.folds or PROTOCOL_FOLDS[args.protocol]
    stager_config = StagerConfig(
        channels=tuple(args.channels),
        d_model=args.d_model,
        n_layers=args.layers,
        bidirectional=args.bidirectional,
    )
    train_config = TrainConfig(seed=args.seed, max_steps=args.max_steps)
    if args.recipe == "first":
        train_config = replace(train_config, fresh_start_prob=0.0, augmentation=NO_AUGMENTATION)
    started = time.perf_counter()

    done: list[dict] = []

    def show(fold: int, total: int, record: dict) -> None:
        """Print the fold, and keep what is done so far on disk: a long run cut short still counts."""
        console.print(
            f"fold {fold + 1}/{total} subjects {','.join(record['test_subjects'])}: "
            f"acc {record['accuracy']:.3f} mf1 {record['macro_f1']:.3f} kappa {record['kappa']:.3f} "
            f"({time.perf_counter() - started:.0f} s)",
            soft_wrap=True,
        )
        done.append(record)
        pooled = StagingScores(np.sum([np.array(r["confusion"]) for r in done], axis=0)).to_dict()
        partial = {"partial": f"{len(done)} of {total} folds", "pooled_so_far": pooled, "folds": done}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(partial, indent=1))

    normalizer = NormalizerConfig(
        method=NIGHT_ZSCORE if args.night_zscore else CAUSAL,
        anchored=not (args.plain_reference or args.night_zscore or args.recipe == "first"),
    )
    extra = [n for channel in args.extra_montage for n in load_feature_nights(args.features, [channel])]
    extra = [n for n in extra if n.subject in {night.subject for night in nights}]
    result = cross_validate(
        nights,
        n_folds,
        stager_config,
        train_config,
        normalizer,
        n_members=args.members,
        joins_per_night=args.joins_per_night,
        extra_montages=extra,
        on_fold=show,
    )
    result.update(
        protocol=args.protocol,
        recipe=args.recipe,
        members=args.members,
        extra_montages=args.extra_montage,
        channels=args.channels,
        causal=not (args.bidirectional or args.night_zscore),
        normalization=normalizer.to_dict(),
        n_nights=len(nights),
        n_subjects=len({n.subject for n in nights}),
        stager_config=stager_config.to_dict(),
        train_config=train_config.to_dict(),
        elapsed_s=round(time.perf_counter() - started, 1),
        machine={"platform": platform.platform(), "torch": torch.__version__},
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    pooled = result["pooled"]
    table = Table(
        title=f"{args.protocol} {n_folds}-fold, "
        + ("bidirectional" if args.bidirectional else "causal")
        + (", whole-night z-score" if args.night_zscore else "")
    )
    for column in ("Acc", "MF1", "kappa", *(f"F1 {s}" for s in STAGES)):
        table.add_column(column, justify="right")
    table.add_row(
        f"{pooled['accuracy']:.3f}",
        f"{pooled['macro_f1']:.3f}",
        f"{pooled['kappa']:.3f}",
        *(f"{pooled['per_stage_f1'][s]:.3f}" for s in STAGES),
    )
    console.print(table)
    if "joins" in result:
        joins = Table(title="joined mid-night (cold start) vs the same epochs staged from the night start")
        for column in (
            "minutes since join",
            "epochs",
            "acc joined",
            "acc whole night",
            "κ joined",
            "κ whole",
        ):
            joins.add_column(column, justify="right")
        for label, row in result["joins"].items():
            joins.add_row(
                label,
                str(row["epochs"]),
                f"{row['joined_accuracy']:.3f}",
                f"{row['whole_night_accuracy']:.3f}",
                f"{row['joined_kappa']:.3f}",
                f"{row['whole_night_kappa']:.3f}",
            )
        console.print(joins)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
