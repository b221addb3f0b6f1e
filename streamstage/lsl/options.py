"""Command-line options every command that talks LSL shares, so they read the same everywhere."""

from __future__ import annotations

import argparse

from streamstage.lsl.scope import SCOPES


def positive_seconds(text: str) -> float:
    """An argparse type: a duration in seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} s: give a duration above 0")
    return value


def add_scope_argument(parser: argparse.ArgumentParser) -> None:
    """``--lsl-scope``: pass its value to :func:`streamstage.lsl.scope.configure_lsl`."""
    parser.add_argument(
        "--lsl-scope",
        choices=SCOPES,
        default=None,
        help="how far to look for LSL streams: this computer (machine, the default), the local network "
        "(link) or the whole site; an LSL config file named by LSLAPICFG takes precedence",
    )


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """``--name``/``--type``/``--source-id``/``--resolve-timeout``/``--lost-after`` and ``--lsl-scope``.

    Pass them to :meth:`streamstage.lsl.inlet.LslInlet.open` as ``name=args.name, type=args.type,
    source_id=args.source_id, timeout_s=args.resolve_timeout, lost_after_s=args.lost_after``.
    """
    group = parser.add_argument_group("LSL input (default: the one stream of type EEG)")
    group.add_argument("--name", help="name of the LSL stream to read")
    group.add_argument("--type", help="type of the LSL stream to read (default EEG when no name is given)")
    group.add_argument("--source-id", help="source id of the LSL stream (the most robust choice)")
    add_lookup_arguments(group)
    add_scope_argument(parser)


def add_lookup_arguments(group: argparse._ActionsContainer) -> None:
    """``--resolve-timeout`` and ``--lost-after``: how long to look for a stream, and when it is lost.

    Pass them as ``timeout_s=args.resolve_timeout, lost_after_s=args.lost_after``.
    """
    group.add_argument(
        "--resolve-timeout",
        type=positive_seconds,
        default=10.0,
        metavar="S",
        help="seconds to look for the stream (default 10)",
    )
    group.add_argument(
        "--lost-after",
        type=positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds without data before the signal counts as lost (default 5)",
    )
