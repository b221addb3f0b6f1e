"""``streamstage streams``: list the LSL streams this computer can see, to pick one for ``run``."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.options import add_scope_argument, positive_seconds
from streamstage.lsl.resolve import list_streams
from streamstage.lsl.scope import configure_lsl

COLUMNS = ("name", "type", "channels", "rate", "source id", "host")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "streams",
        help="list the LSL streams visible from here",
        description="List the LSL streams visible from this computer: name, type, channel count, rate, "
        "source id and host. Pick one for `streamstage run` with --name, --type or --source-id.",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=2.0, metavar="S", help="seconds to listen (default 2)"
    )
    add_scope_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    scope = configure_lsl(args.lsl_scope)
    layouts = list_streams(args.timeout)
    if not layouts:
        print(
            f"no LSL stream seen within {args.timeout:g} s ({scope}); is the headband's bridge running? "
            "Streams on another computer need --lsl-scope link or site.",
            file=sys.stderr,
        )
        return 0
    rows = [_row(layout) for layout in layouts]
    if sys.stdout.isatty():
        table = Table(title=f"LSL streams ({scope})")
        for column in COLUMNS:
            table.add_column(column, justify="right" if column in ("channels", "rate") else "left")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # names are data, not Rich markup
        Console().print(table)
    else:
        print("\t".join(COLUMNS))
        for row in rows:
            print("\t".join(row))
    return 0


def _row(layout: StreamLayout) -> tuple[str, ...]:
    rate = f"{layout.sfreq_hz:g} Hz" if layout.sfreq_hz > 0 else "irregular"
    return (layout.name, layout.type, str(layout.n_channels), rate, layout.source_id, layout.hostname)
