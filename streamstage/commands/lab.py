"""``streamstage lab``: stage many beds' LSL streams in one process, a night folder per bed."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from streamstage.commands.model_option import add_model_argument
from streamstage.errors import ConfigError
from streamstage.lsl.options import add_lookup_arguments, add_scope_argument, positive_seconds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="stage many beds' LSL streams in one process, a night folder per bed",
        description="Stage N live EEG streams in one process: beds whose epochs are due together step "
        "through one batched model call; each bed gets its own night folder (OUT/BED), channel, alarm and "
        "hooks; a bed that loses its stream or fails never holds up the others. See docs/lab.md.",
    )
    parser.add_argument("beds_file", nargs="?", type=Path, metavar="BEDS.toml", help="the lab file")
    parser.add_argument(
        "--bed",
        action="append",
        default=[],
        metavar="NAME=STREAM",
        help="a bed staging the LSL stream named STREAM (repeatable; added to the file's beds)",
    )
    parser.add_argument("--out", type=Path, help="lab folder, a night folder per bed (default: the file's)")
    parser.add_argument(
        "--resume", action="store_true", help="continue every bed's night saved in the lab folder"
    )
    add_model_argument(parser)
    parser.add_argument(
        "--step",
        choices=("together", "alone"),
        help="together: beds due together share one batched model call (default); alone: each bed "
        "steps its own model (exactly the numbers of `run`)",
    )
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        metavar="MS",
        help="how long the first bed due waits for the others (default 50)",
    )
    lookup = parser.add_argument_group("LSL input")
    add_lookup_arguments(lookup)
    add_scope_argument(lookup)
    ending = parser.add_argument_group("display and ending")
    ending.add_argument("--no-dashboard", action="store_true", help="plain lines, one per bed's epoch")
    ending.add_argument("--no-outlets", action="store_true", help="do not publish stages back to LSL")
    ending.add_argument("--no-raw", action="store_true", help="do not keep each bed's raw signal")
    ending.add_argument("--no-report", action="store_true", help="skip the beds' morning reports")
    ending.add_argument(
        "--exit-after-lost",
        type=positive_seconds,
        metavar="S",
        help="a bed ends when its stream has been gone S seconds (and fails if not found at the start)",
    )
    ending.add_argument("--max-epochs", type=int, metavar="N", help="each bed ends after N epochs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from streamstage.lab import LabPlan, bed_from_option, read_lab_file, run_lab
    from streamstage.lab.stepper import DEFAULT_WINDOW_S
    from streamstage.lsl.scope import configure_lsl
    from streamstage.model.checkpoint import load_model
    from streamstage.night import StreamQuery

    torch.set_num_threads(1)
    query = StreamQuery(resolve_timeout_s=args.resolve_timeout, lost_after_s=args.lost_after)
    lab = read_lab_file(args.beds_file, query) if args.beds_file is not None else None
    beds = (*(lab.beds if lab else ()), *(bed_from_option(text, query) for text in args.bed))
    out = args.out or (lab.out if lab else None)
    if out is None:
        if args.resume:
            raise ConfigError(
                "--resume continues a lab: give its folder with --out (or lab.out in the file)."
            )
        out = Path("nights") / f"lab-{datetime.now():%Y-%m-%d_%H%M}"
    window_ms = args.batch_window_ms
    window_s = window_ms / 1000.0 if window_ms is not None else (lab and lab.batch_window_s)
    console = Console(stderr=True)
    console.print(configure_lsl(args.lsl_scope))
    plan = LabPlan(
        out=out,
        resume=args.resume,
        step=args.step or (lab and lab.step) or "together",
        batch_window_s=DEFAULT_WINDOW_S if window_s is None else window_s,
        model_asked=None if args.model is None else str(args.model),
        outlets=not args.no_outlets,
        keep_raw=not args.no_raw,
        exit_after_lost_s=args.exit_after_lost,
        max_epochs=args.max_epochs,
        display="lines" if args.no_dashboard else "dashboard",
        report=not args.no_report,
    )
    result = run_lab(beds, load_model(args.model), plan, say=lambda line: console.print(line, soft_wrap=True))
    failed = [bed for bed in result.beds if bed.status.startswith("failed")]
    for bed in result.beds:
        console.print(f"{bed.name}: {bed.status}, {bed.epochs} epochs staged, night folder {bed.folder}")
    if result.batched_calls:
        mean = result.bed_steps / result.batched_calls
        console.print(
            f"{result.bed_steps} bed epochs in {result.batched_calls} model calls ({mean:.1f} a call)"
        )
    return 1 if failed and len(failed) == len(result.beds) else 0
