"""``--model``, read the same by every command that stages."""

from __future__ import annotations

import argparse

from streamstage.weights import BUNDLED_MODELS, DEFAULT_MODEL


def add_model_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--model NAME|FILE``: a shipped model (every name listed) or a checkpoint; ``load_model`` takes it."""
    parser.add_argument(
        "--model",
        help=f"a shipped model by name ({', '.join(BUNDLED_MODELS)}) or a checkpoint file "
        f"(default: {DEFAULT_MODEL})",
    )
