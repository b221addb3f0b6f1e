"""``streamstage report DIR``: the morning report (``summary.txt``, ``report.png``) of a night's folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write summary.txt and report.png for a night's output folder",
        description="Read DIR/hypnogram.csv (also one still being written, or cut short by a crash) and "
        "write the night's sleep statistics to DIR/summary.txt and its hypnogram and stage probabilities "
        "to DIR/report.png (needs matplotlib: pip install 'streamstage[report]').",
    )
    parser.add_argument("night_dir", metavar="DIR", type=Path, help="the night's output folder")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    parser.add_argument(
        "--rescore",
        nargs="?",
        const="model",
        choices=("model", "yasa"),
        help="re-stage the saved raw night (DIR/raw.bdf) offline first, with the bundled bidirectional "
        "model (default) or YASA (pip install 'streamstage[yasa]'), into DIR/rescored.csv; the report "
        "then shows both hypnograms, their agreement, and the re-score's statistics",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from streamstage.report import write_report  # here: the parser is built without it

    report = write_report(args.night_dir, args.rescore)
    if not args.quiet:
        print(report.summary)
    written = [report.summary_path] + ([report.figure_path] if report.figure_path else [])
    print("wrote " + ", ".join(str(path) for path in written))
    if report.note:
        print(f"streamstage: {report.note}", file=sys.stderr)
    return 0
