"""Command-line options naming where labelled nights come from, kept free of heavy imports so that
building the CLI's parser never loads torch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_night_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", type=Path, help="folder of SS__N.npz feature files (Sleep-EDF layout)")
    source.add_argument("--edf", type=Path, help="folder of EDF recordings with their hypnograms")
    parser.add_argument(
        "--channels", nargs="+", help="channels or derivations to use (default: Fpz-Cz, or the model's)"
    )
