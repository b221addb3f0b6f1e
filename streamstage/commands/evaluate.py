"""``streamstage evaluate``: score a model on labelled nights, staged epoch by epoch as live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from streamstage import STAGES
from streamstage.commands.model_option import add_model_argument
from streamstage.errors import ConfigError
from streamstage.training.arguments import add_night_source_arguments

if TYPE_CHECKING:
    from streamstage.model.checkpoint import StagingModel
    from streamstage.training.metrics import StagingScores


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, macro-F1, kappa, per-stage F1 and confusion matrix on labelled nights",
        description="Stage each night through the streaming model epoch by epoch and score it against the "
        "expert hypnogram. EDF recordings (--edf) go through the very code of `streamstage stage`, cold "
        "start at the recording's start; each is scored over its sleep period with 30 min of wake either "
        "side.",
    )
    add_night_source_arguments(parser)
    add_model_argument(parser)
    parser.add_argument("--json", type=Path, help="also write the scores (pooled and per night) as JSON")
    parser.add_argument(
        "--hypnograms",
        type=Path,
        help="with --edf: also write each recording's staged hypnogram here, as `streamstage stage` does",
    )
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


def _score_edf(args: argparse.Namespace, model: StagingModel, console: Console) -> tuple[dict, list[dict]]:
    """Each recording staged by the code of ``streamstage stage``, scored over its sleep period."""
    import numpy as np

    from streamstage.output import NightWriter
    from streamstage.training.metrics import StagingScores, score
    from streamstage.training.sources import stage_edf_pairs

    recordings = stage_edf_pairs(args.edf, model, args.channels, console)
    pooled = np.zeros((len(STAGES), len(STAGES)), dtype=np.int64)
    per_night = []
    for recording in recordings:
        span = recording.scored_span
        predicted = np.array([epoch.stage for epoch in recording.staged], dtype=np.int64)[span]
        scores = score(recording.labels[span], predicted)
        pooled += scores.confusion
        per_night.append({"recording": recording.pair.psg_path.name, **_summary(scores)})
        if args.hypnograms:
            with NightWriter(args.hypnograms / recording.pair.psg_path.stem) as writer:
                for epoch in recording.staged:
                    writer.write_epoch(epoch)
    return StagingScores(pooled).to_dict(), per_night


def _summary(scores: StagingScores) -> dict:
    return {k: v for k, v in scores.to_dict().items() if k in ("n_epochs", "accuracy", "macro_f1", "kappa")}


def run(args: argparse.Namespace) -> int:
    from streamstage.model.checkpoint import load_model
    from streamstage.training.predict import score_nights
    from streamstage.training.sources import load_nights_from_args

    console = Console()
    model = load_model(args.model)
    args.channels = list(model.channels) if not args.channels else args.channels
    if model.is_raw and not args.edf:
        raise ConfigError(
            f"{model.source} reads raw samples, not a feature set; evaluate it on recordings with --edf DIR."
        )
    if args.edf:
        scores, per_night = _score_edf(args, model, Console(stderr=True))
    else:
        nights, _ = load_nights_from_args(args, Console(stderr=True))
        scores = score_nights(model, nights).to_dict()
        per_night = [{"recording": night.name, **_summary(score_nights(model, [night]))} for night in nights]
    console.print(scores_table(scores, f"{model.source} on {len(per_night)} nights"))
    console.print(confusion_table(scores["confusion"]))
    if args.json:
        record = {
            "model": model.source,
            "model_id": model.model_id,
            "n_nights": len(per_night),
            **scores,
            "nights": per_night,
        }
        args.json.write_text(json.dumps(record, indent=2))
        console.print(f"wrote {args.json}")
    return 0
