"""The ``streamstage`` command line.

Each subcommand lives in its own module under :mod:`streamstage.commands` and exposes ``register`` (adds its
parser) and ``run`` (does the work, returns an exit code). This module only wires them together and turns
expected failures (:class:`~streamstage.errors.StreamstageError`) into one clear line.

Only the module of the command being run is imported: several pull in PyTorch (about 2 s), which
``streamstage --help``, ``streams`` or ``report`` do not need. The top-level help lists the other commands
from :data:`COMMANDS` (a test checks it against each module's own help line).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# One staged epoch is a few small matrix products: OpenBLAS's own threads (which torch.set_num_threads does
# not govern) only contend, and on a loaded 2-core machine made a batch of 60 nights 7x slower. Set before
# NumPy is first imported; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from streamstage import __version__
from streamstage.errors import StreamstageError

COMMANDS: dict[str, str] = {
    "demo": "replay the bundled sample through LSL (this machine only) into the live stager",
    "run": "stage a live LSL EEG stream in real time",
    "lab": "stage many beds' LSL streams in one process, a night folder per bed",
    "streams": "list the LSL streams visible from here",
    "replay": "publish an EDF recording as a live LSL stream",
    "stage": "stage a recorded EDF file offline (same pipeline as live)",
    "report": "write summary.txt and report.png for a night's output folder",
    "export": "write a night's hypnogram as EDF+ annotations, CSV or one code per line",
    "train": "train a staging model (subject-wise validation split, early stopping)",
    "evaluate": "accuracy, macro-F1, kappa, per-stage F1 and confusion matrix on labelled nights",
    "bench": "benchmark per-epoch cost, memory and throughput",
    "datasets": "download public sleep datasets (Sleep-EDF Expanded) to train and evaluate on",
}
"""Command name -> its one-line help, in the order ``--help`` lists them."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with ``command`` (all commands when ``None``) registered by its own module, the
    others as placeholders that carry only their help line."""
    parser = argparse.ArgumentParser(
        prog="streamstage",
        description="Real-time sleep staging from a live EEG stream (LSL) with a streaming Mamba model.",
    )
    parser.add_argument("--version", action="version", version=f"streamstage {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"streamstage.commands.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_line)
    return parser


def _command_in(argv: Sequence[str]) -> str:
    """The subcommand argparse will pick: the first argument that is not an option ('' if none)."""
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in COMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
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
