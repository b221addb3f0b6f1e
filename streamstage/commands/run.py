"""``streamstage run``: stage a live LSL EEG stream, all night, with the dashboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console

from streamstage.commands.model_option import add_model_argument
from streamstage.config import add_arguments as add_config_arguments
from streamstage.config import resolve_settings
from streamstage.errors import ConfigError
from streamstage.hooks import build_hook
from streamstage.lsl.options import add_stream_arguments, positive_seconds
from streamstage.lsl.scope import configure_lsl
from streamstage.model.checkpoint import load_model
from streamstage.night import NightPlan, StreamQuery, run_night


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="stage a live LSL EEG stream in real time",
        description="Stage a live EEG stream (any LSL source: Muse via muselsl, OpenBCI GUI, `streamstage "
        "replay`) epoch by epoch. Every epoch is flushed to DIR/hypnogram.csv; DIR/state.npz lets "
        "`--resume DIR` continue the night after a crash.",
    )
    add_stream_arguments(parser)
    group = parser.add_argument_group("staging")
    group.add_argument(
        "--channel",
        help="channel or derivation to stage, e.g. Fpz-Cz, AF7-TP9 or AF7 (default: the model's, "
        "else the nearest frontal channel); comma-separated for a multi-channel model",
    )
    group.add_argument("--reference", help="reference subtracted from --channel, e.g. TP9")
    add_model_argument(group)
    group.add_argument("--out", type=Path, help="night folder (default: a new dated folder under ./nights)")
    group.add_argument("--resume", type=Path, metavar="DIR", help="continue the night saved in DIR")
    group.add_argument(
        "--rebuild-state",
        action="store_true",
        help="with --resume: continue a night whose state.npz is damaged or missing (the rows stay, the "
        "model starts afresh, the time since the last row is marked missing)",
    )
    group.add_argument(
        "--accept-new-source",
        action="store_true",
        help="continue the night on a stream other than the one it started on (after a reconnect or with "
        "--resume); the staged channel and rate must still be the same",
    )
    group.add_argument("--truth-stream", metavar="NAME", help="Markers stream with ground-truth stages")
    display = parser.add_argument_group("display and ending")
    display.add_argument("--no-dashboard", action="store_true", help="one plain log line per epoch")
    display.add_argument("--no-outlets", action="store_true", help="do not publish stages back to LSL")
    display.add_argument("--no-report", action="store_true", help="skip the morning report at the end")
    display.add_argument(
        "--no-raw",
        action="store_true",
        help="do not keep the raw signal (DIR/raw.bdf, BDF+, and its annotations)",
    )
    display.add_argument(
        "--exit-after-lost",
        type=positive_seconds,
        metavar="S",
        help="end the night when the stream has been gone S seconds (e.g. a finished replay)",
    )
    display.add_argument("--max-epochs", type=int, metavar="N", help="end after N epochs")
    add_config_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # one epoch's work is tiny: a second thread only adds contention
    settings = resolve_settings(vars(args))
    for spec in settings.hooks:
        build_hook(spec)  # a misspelt hook command is found now, not after the stream
    console = Console(stderr=True)
    console.print(configure_lsl(args.lsl_scope))
    stream = settings.stream
    plan = NightPlan(
        out=args.resume if args.resume is not None else stream.out,
        model_asked=None if args.model is None else str(args.model),
        resume=args.resume is not None,
        rebuild_state=args.rebuild_state,
        channels=stream.channel,
        reference=stream.reference,
        settings=settings,
        accept_new_source=args.accept_new_source,
        outlets=not args.no_outlets,
        keep_raw=not args.no_raw,
        truth_stream=args.truth_stream,
        exit_after_lost_s=args.exit_after_lost,
        max_epochs=args.max_epochs,
        display="lines" if args.no_dashboard else "dashboard",
        report=not args.no_report,
    )
    query = StreamQuery(stream.name, stream.type, args.source_id, args.resolve_timeout, args.lost_after)
    if args.rebuild_state and args.resume is None:
        raise ConfigError("--rebuild-state continues a night: give it with --resume DIR.")
    result = run_night(
        query, load_model(args.model), plan, say=lambda line: console.print(line, soft_wrap=True)
    )
    if result.stopped:
        console.print("stopped by Ctrl-C: everything staged is on disk.")
    if result.report is not None:
        print(result.report.summary, file=sys.stdout)
        if result.report.note:
            console.print(result.report.note)
    if (result.folder / "hypnogram.csv").is_file():
        console.print(
            f"night folder: {result.folder} (hypnogram.csv, events.jsonl, state.npz, raw.bdf, summary.txt, "
            "report.png)"
        )
    return 0
