"""``streamstage train``: train a staging model from a feature folder or from EDF + hypnogram pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streamstage.errors import ConfigError
from streamstage.training.arguments import add_night_source_arguments

DEFAULT_D_MODEL = 64
DEFAULT_LAYERS = 2
DEFAULT_MAX_STEPS = 600
DEFAULT_BATCH_SIZE = 12
DEFAULT_CROP_EPOCHS = 256
RAW_DEFAULTS = {"max_steps": 200, "batch_size": 4, "crop_epochs": 20}
"""--raw: a crop is raw samples (3000 an epoch per channel), so crops are shorter and batches smaller."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a staging model (subject-wise validation split, early stopping)",
        description="Train a staging model on a Sleep-EDF feature folder (--features) or on EDF + hypnogram "
        "pairs (--edf), whose features come from the same streaming path used live. With --raw, fine-tune "
        "a raw-signal model end to end (front end, epoch Mamba and head) on EDF + hypnogram pairs.",
    )
    add_night_source_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint file to write (e.g. my-model.pt)")
    parser.add_argument("--log", type=Path, help="JSON training log (default: beside --out)")
    parser.add_argument("--d-model", type=int, default=DEFAULT_D_MODEL)
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS)
    parser.add_argument(
        "--max-steps", type=int, help=f"default {DEFAULT_MAX_STEPS} ({RAW_DEFAULTS['max_steps']} with --raw)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"default {DEFAULT_BATCH_SIZE} ({RAW_DEFAULTS['batch_size']} with --raw)",
    )
    parser.add_argument(
        "--crop-epochs",
        type=int,
        help=f"default {DEFAULT_CROP_EPOCHS} ({RAW_DEFAULTS['crop_epochs']} with --raw)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="fine-tune a raw-signal model end to end on --edf recordings (the samples the pipeline's signal "
        "path gives it) instead of training a feature model",
    )
    parser.add_argument(
        "--model",
        help="with --raw: the raw model to fine-tune, a shipped name or a checkpoint (default: raw)",
    )
    parser.add_argument(
        "--no-augment",
        action="store_true",
        help="train without the transfer augmentations (spectral shape, drift, noise, artifacts)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of subjects for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--extra-montage",
        action="append",
        default=[],
        metavar="CHANNEL",
        help="also train the single-channel model on this derivation of the same training nights "
        "(e.g. Pz-Oz): several montages teach what does not depend on one (the shipped default uses Pz-Oz)",
    )
    parser.add_argument(
        "--plain-reference",
        action="store_true",
        help="normalise against a plain running mean, without the stage anchor fitted on the training nights",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="train this many seeds (--seed, --seed+1, ...) and ship them as one ensemble that averages "
        "their probabilities (the shipped models use 3)",
    )
    parser.set_defaults(handler=run)


def _fill_defaults(args: argparse.Namespace) -> None:
    feature_defaults = {
        "max_steps": DEFAULT_MAX_STEPS,
        "batch_size": DEFAULT_BATCH_SIZE,
        "crop_epochs": DEFAULT_CROP_EPOCHS,
    }
    for name, value in (RAW_DEFAULTS if args.raw else feature_defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _run_raw(args: argparse.Namespace, console: Console) -> int:
    """``--raw``: fine-tune a raw model end to end on the EDF + hypnogram pairs of ``--edf``."""
    from streamstage.model.checkpoint import load_model, save_model
    from streamstage.training.edf_pairs import labelled_nights
    from streamstage.training.raw_finetune import FinetuneConfig, finetune

    if not args.edf:
        raise ConfigError("train --raw fine-tunes on raw recordings; pass --edf DIR (EDF + hypnogram pairs).")
    start = load_model(args.model or "raw")
    channels = list(args.channels or start.channels)
    if len(channels) != len(start.channels):
        raise ConfigError(
            f"{start.source} stages {len(start.channels)} channel(s) ({', '.join(start.channels)}); "
            f"pass as many --channels, not {len(channels)}."
        )
    nights = labelled_nights(args.edf, channels, console=console)
    config = FinetuneConfig(
        steps=args.max_steps, batch_size=args.batch_size, crop_epochs=args.crop_epochs, seed=args.seed
    )
    console.print(
        f"fine-tuning {start.source} end to end on {len(nights)} nights, channels {', '.join(channels)}"
    )
    with _progress(console) as progress:
        task = progress.add_task("train", total=config.steps, status="")

        def on_progress(step: int, total: int, record: dict) -> None:
            status = f"stage loss {record['stage_loss']:.3f}  feature loss {record['feature_loss']:.4f}"
            progress.update(task, completed=step, status=status)

        model, history = finetune(start, nights, config, on_progress)
    model.training["source"] = str(args.edf)
    save_model(model, args.out)
    log_path = args.log or args.out.with_suffix(".log.json")
    log_path.write_text(json.dumps(model.training, indent=2))
    console.print(
        f"wrote {args.out} (stage loss {history[0]['stage_loss']:.3f} -> {history[-1]['stage_loss']:.3f}) "
        f"and {log_path}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from streamstage.features import NormalizerConfig
    from streamstage.model.checkpoint import save_model
    from streamstage.model.stager import StagerConfig
    from streamstage.training.augment import NO_AUGMENTATION, TransferAugmentation
    from streamstage.training.protocols import split_validation, with_montages
    from streamstage.training.sources import load_nights_from_args, load_nights_of
    from streamstage.training.train import TrainConfig, train_ensemble

    console = Console(stderr=True)
    _fill_defaults(args)
    if args.raw:
        return _run_raw(args, console)
    nights, channels = load_nights_from_args(args, console)
    train, val = split_validation(nights, args.val_fraction, seed=args.seed)
    if args.extra_montage:
        if len(channels) != 1:
            raise ConfigError("--extra-montage trains a single-channel model; pass one --channels.")
        extra = [n for montage in args.extra_montage for n in load_nights_of(args, [montage], console)]
        train = with_montages(train, extra)
    console.print(
        f"training on {len(train)} nights, validating on {len(val)} nights "
        f"({len({n.subject for n in val})} held-out subjects), channels {', '.join(channels)}"
        + (f" (also trained on {', '.join(args.extra_montage)})" if args.extra_montage else "")
    )
    stager_config = StagerConfig(channels=tuple(channels), d_model=args.d_model, n_layers=args.layers)
    train_config = TrainConfig(
        seed=args.seed,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        crop_epochs=args.crop_epochs,
        augmentation=NO_AUGMENTATION if args.no_augment else TransferAugmentation(),
    )
    with _progress(console) as progress:
        task = progress.add_task("train", total=train_config.max_steps, status="")
        member = {"index": 1, "last_step": 0}

        def on_progress(step: int, total: int, record: dict) -> None:
            if step < member["last_step"]:  # the next member started from step 1
                member["index"] += 1
            member["last_step"] = step
            status = f"member {member['index']}/{args.members}  loss {record['train_loss']:.3f}"
            if "val_kappa" in record:
                status += f"  val kappa {record['val_kappa']:.3f}"
            progress.update(task, completed=step, status=status)

        normalizer = NormalizerConfig(anchored=not args.plain_reference)
        model = train_ensemble(
            train, val, stager_config, train_config, args.members, normalizer, on_progress=on_progress
        )
    model.training["source"] = str(args.features or args.edf)
    save_model(model, args.out)
    log_path = args.log or args.out.with_suffix(".log.json")
    log_path.write_text(json.dumps(model.training, indent=2))
    best = model.training.get("best_val_kappa")
    console.print(f"wrote {args.out} (best validation kappa {best}) and {log_path}")
    return 0
