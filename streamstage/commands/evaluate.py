"""``streamstage evaluate``: score a model on labelled nights, staged epoch by epoch as live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from streamstage import STAGES
from streamstage.model.checkpoint import load_model
from streamstage.training.sources import add_night_source_arguments, load_nights_from_args
from streamstage.training.train import evaluate_prepared, prepare_nights


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, macro-F1, kappa, per-stage F1 and confusion matrix on labelled nights",
        description="Run each night through the streaming model epoch by epoch (exactly as live) and score "
        "it against the expert hypnogram.",
    )
    add_night_source_arguments(parser)
    parser.add_argument("--model", type=Path, help="checkpoint to evaluate (default: the shipped model)")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")
    parser.set_defaults(handler=run)


def scores_table(scores: dict, title: str) -> Table:
    table = Table(title=title)
    for column in ("epochs", "accuracy", "macro-F1", "kappa", *(f"F1 {s}" for s in STAGES)):
        table.add_column(column, justify="right")
    table.add_row(
        str(scores["n_epochs"]),
        f"{scores['accuracy']:.3f}",
        f"{scores['macro_f1']:.3f}",
        f"{scores['kappa']:.3f}",
        *(f"{scores['per_stage_f1'][s]:.3f}" for s in STAGES),
    )
    return table


def confusion_table(confusion: list[list[int]]) -> Table:
    table = Table(title="confusion (rows: expert, columns: model)")
    table.add_column("")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    for stage, row in zip(STAGES, confusion, strict=True):
        table.add_row(stage, *(str(v) for v in row))
    return table


def run(args: argparse.Namespace) -> int:
    console = Console()
    model = load_model(args.model)
    args.channels = list(model.channels) if not args.channels else args.channels
    nights, _ = load_nights_from_args(args, Console(stderr=True))
    scores = evaluate_prepared(model.net, prepare_nights(nights, model.normalizer)).to_dict()
    console.print(scores_table(scores, f"{model.source} on {len(nights)} nights"))
    console.print(confusion_table(scores["confusion"]))
    if args.json:
        record = {"model": model.source, "model_id": model.model_id, "n_nights": len(nights), **scores}
        args.json.write_text(json.dumps(record, indent=2))
        console.print(f"wrote {args.json}")
    return 0
