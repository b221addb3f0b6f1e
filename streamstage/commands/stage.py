"""``streamstage stage``: offline staging of recorded EDF or XDF files through the live pipeline, one file
or a whole archive in parallel."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from streamstage.commands.model_option import add_model_argument
from streamstage.config import channel_list


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stage",
        help="stage a recorded EDF file offline (same pipeline as live)",
        description="Stage recordings through the same streaming pipeline used live and write each one's "
        "hypnogram (CSV with per-stage probabilities). One file is staged into --out itself. Several "
        "files, a folder (searched recursively) or a glob are an archive: staged in parallel, each into "
        "its own folder under --out, named after the file, with summary.csv beside them. A file counts as "
        "finished when its folder holds done.json (written last) whose recorded size and modification "
        "time still match the file's; a second run skips finished files and stages changed ones again.",
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="RECORDING",
        help="EDF, EDF+, BDF or XDF recordings, folders of them or globs (quote globs: 'archive/**/*.edf')",
    )
    parser.add_argument(
        "--channel",
        help="channel or derivation to stage, e.g. Fpz-Cz or AF7-TP9 (default: the model's, else the "
        "nearest frontal channel, as `run` chooses); comma-separated for a multi-channel model",
    )
    parser.add_argument("--reference", help="reference channel subtracted from --channel, e.g. TP9")
    add_model_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder: the night folder of one file, or the folder holding an archive's night folders "
        "(default: a new dated folder under ./nights; pass the same --out again to resume an archive)",
    )
    archive = parser.add_argument_group("archives (several files, a folder or a glob)")
    archive.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="local worker processes (default: the number of CPUs, %(default)s here)",
    )
    archive.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="stage on the Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786) instead of a local pool; "
        "needs `pip install 'streamstage[dask]'`, streamstage on every worker and the files and --out at "
        "the same paths there",
    )
    archive.add_argument("--force", action="store_true", help="stage finished files again")
    add_xdf_stream_arguments(parser)
    parser.set_defaults(handler=run)


def add_xdf_stream_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """--name, --type, --source-id (after ``prefix``): which stream of an XDF file is the EEG, as `run`
    picks a live one; read back as ``args.xdf_name``, ``args.xdf_type``, ``args.xdf_source_id``."""
    group = parser.add_argument_group("XDF files (which stream is the EEG; default: type EEG)")
    for field in ("name", "type", "source-id"):
        words = field.replace("-", " ")
        group.add_argument(f"--{prefix}{field}", dest="xdf_" + field.replace("-", "_"), help=f"its {words}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from streamstage.archive import StagingOptions, stage_files
    from streamstage.io.xdf import StreamChoice

    options = StagingOptions(
        channels=channel_list(args.channel) if args.channel else None,
        reference=args.reference,
        stream=StreamChoice(args.xdf_name, args.xdf_type, args.xdf_source_id),
        model=args.model,
    )
    return stage_files(
        args.files,
        args.out,
        options,
        Console(stderr=True),
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
    )
