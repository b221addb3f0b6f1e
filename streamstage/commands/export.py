"""``streamstage export DIR --format edf+|csv|txt``: the night's hypnogram for scorers and their tools."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a night's hypnogram as EDF+ annotations, CSV or one code per line",
        description="Write the hypnogram of the night in DIR (the morning re-score where DIR holds one, "
        "else the live one; --live for the live one) with its epoch length and start time: as EDF+ "
        "annotations (Sleep stage W/N1/N2/N3/R/?, and the night's events), a CSV or one AASM code per line.",
    )
    parser.add_argument("night_dir", metavar="DIR", type=Path, help="the night's output folder")
    parser.add_argument("--format", dest="fmt", choices=("edf+", "csv", "txt"), default="edf+")
    parser.add_argument("--live", action="store_true", help="the live hypnogram even where a re-score exists")
    parser.add_argument("--out", type=Path, help="the file to write (default: DIR/export.edf|csv|txt)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streamstage.output import HYPNOGRAM_FILE
    from streamstage.report.export import FORMATS, export_hypnogram
    from streamstage.report.night import read_night
    from streamstage.report.rescore import read_rescored

    night = read_night(args.night_dir / HYPNOGRAM_FILE)
    rescored = None if args.live else read_rescored(args.night_dir, night)
    stages = night.stages if rescored is None else rescored
    path = args.out or args.night_dir / f"export{FORMATS[args.fmt]}"
    export_hypnogram(args.night_dir, night, stages, args.fmt, path)
    which = "live" if rescored is None else "re-scored"
    print(f"wrote {path} ({which} hypnogram, {night.n_epochs} epochs of {night.epoch_s:g} s)")
    return 0
