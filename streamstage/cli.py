"""The ``streamstage`` command line.

Each subcommand lives in its own module under :mod:`streamstage.commands` and exposes ``register`` (adds its
parser) and ``run`` (does the work, returns an exit code). This module only wires them together and turns
expected failures (:class:`~streamstage.errors.StreamstageError`) into one clear line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streamstage import __version__
from streamstage.errors import StreamstageError

COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "run",
    "streams",
    "replay",
    "stage",
    "report",
    "train",
    "evaluate",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamstage",
        description="Real-time sleep staging from a live EEG stream (LSL) with a streaming Mamba model.",
    )
    parser.add_argument("--version", action="version", version=f"streamstage {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"streamstage.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except StreamstageError as error:
        print(f"streamstage: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamstage: interrupted", file=sys.stderr)
        return 130
