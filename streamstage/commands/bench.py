"""``streamstage bench``: the benchmark harness of a source checkout.

The harness (``benchmarks/`` at the repository's root: a competitor Transformer, a YASA run, LSL replays)
is not part of the installed package. From a checkout (an editable install) this command runs it with the
harness's own options; from a wheel it says where the benchmarks live.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

HELP = "benchmark per-epoch cost, memory and throughput"
NOT_INSTALLED = (
    "the benchmarks are not part of the installed package: they live in the benchmarks/ folder of the "
    "streamstage source repository. From a checkout, run `python -m benchmarks` (or `streamstage bench` "
    "with the checkout installed by `pip install -e .`)."
)


def checkout_harness() -> ModuleType | None:
    """``benchmarks.cli`` of the source checkout this package runs from, or ``None`` (a wheel install)."""
    root = Path(__file__).resolve().parents[2]
    if not ((root / "pyproject.toml").is_file() and (root / "benchmarks" / "cli.py").is_file()):
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("benchmarks.cli")


def register(subparsers: argparse._SubParsersAction) -> None:
    harness = checkout_harness()
    description = harness.DESCRIPTION if harness else NOT_INSTALLED
    parser = subparsers.add_parser("bench", help=HELP, description=description)
    if harness is not None:
        harness.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    harness = checkout_harness()
    if harness is None:
        print(f"streamstage bench: {NOT_INSTALLED}", file=sys.stderr)
        return 1
    return int(harness.run(args))
