"""``streamstage run``: stage a live LSL EEG stream, all night, with the dashboard."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import torch
from rich.console import Console

from streamstage.config import add_arguments as add_config_arguments
from streamstage.config import resolve_settings
from streamstage.dashboard import Dashboard, DashboardState, EpochLogLine, use_live_dashboard
from streamstage.errors import ConfigError, ResumeError, StreamstageError
from streamstage.hooks import build_hook
from streamstage.io.raw_record import raw_parts
from streamstage.live.loop import LiveLoop, LoopOptions, TruthReader
from streamstage.live.raw_sink import RawSink, disk_mb_per_hour
from streamstage.live.session import IRREGULAR_GRID_HZ, NightSession, SessionOptions
from streamstage.lsl.inlet import LslInlet
from streamstage.lsl.options import add_stream_arguments, positive_seconds
from streamstage.lsl.outlets import StageOutlets
from streamstage.lsl.scope import configure_lsl
from streamstage.model.checkpoint import load_model
from streamstage.model.choice import model_choice
from streamstage.output import NightWriter, WrittenEpoch, default_night_folder
from streamstage.records import StagedEpoch
from streamstage.report import Report, write_report


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
    group.add_argument(
        "--model",
        type=Path,
        help="a shipped model by name (default, psg) or a checkpoint file (default: default)",
    )
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
    settings = resolve_settings(args)
    if args.rebuild_state and args.resume is None:
        raise ConfigError("--rebuild-state continues a night: give it with --resume DIR.")
    for spec in settings.hooks:
        build_hook(spec)  # a misspelt hook command is found now, not after the stream
    stream = settings.stream
    console = Console(stderr=True)
    console.print(configure_lsl(args.lsl_scope))
    model = load_model(args.model)
    folder = _night_folder(args.resume, stream.get("out"))
    writer = NightWriter(folder, resume=args.resume is not None)
    outlets = inlet = None
    try:
        saved = _saved_night(writer, args)
        console.print(f"looking for the stream ({_criteria(stream, args)}) ...")
        inlet = LslInlet.open(
            name=stream.get("name"),
            type=stream.get("type"),
            source_id=args.source_id,
            timeout_s=args.resolve_timeout,
            lost_after_s=args.lost_after,
            accept_new_source=args.accept_new_source,
        )
        channels = tuple(stream["channel"].split(",")) if stream.get("channel") else None
        outlets = None if args.no_outlets else StageOutlets(inlet.layout.source_id or inlet.layout.name)
        dashboard_state = DashboardState()
        options = SessionOptions(channels, stream.get("reference"), settings, args.accept_new_source)
        session = NightSession(
            model,
            inlet.layout,
            writer,
            options,
            sinks=(outlets,) if outlets else (),
            dashboard=dashboard_state,
            signal_sinks=() if args.no_raw else (RawSink(folder),),
        )
        inlet.refusal = session.refusal
        _continue(session, saved)
        console.print(model_choice(args.model, model, inlet.layout.labels), soft_wrap=True)
        console.print(
            f"staging {', '.join(session.montage.labels)} of '{inlet.layout.name}' "
            f"({inlet.layout.sfreq_hz:g} Hz) with {model.source}; night folder {folder}"
        )
        if not args.no_raw:
            rate_hz = inlet.layout.sfreq_hz or IRREGULAR_GRID_HZ
            per_hour = disk_mb_per_hour(session.montage, inlet.layout.labels, rate_hz)
            console.print(f"keeping the raw signal in {folder}: {per_hour:.1f} MB per hour (off: --no-raw)")
        truth = TruthReader.open(args.truth_stream, args.resolve_timeout) if args.truth_stream else None
        loop = LiveLoop(
            inlet,
            session,
            LoopOptions(args.exit_after_lost, args.max_epochs, replay_clock=settings.start_clock is not None),
            truth,
        )
        with _ctrl_c_ends(loop):
            _run_with_display(loop, session, dashboard_state, args.no_dashboard)
        if loop.stop.is_set():
            console.print("stopped by Ctrl-C: everything staged is on disk.")
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the night started
        console.print("interrupted: everything staged so far is on disk.")
    finally:
        writer.close()
        if outlets:
            outlets.close()
        if inlet:
            inlet.close()
    return _summarise(folder, console, write=not args.no_report)


def _saved_night(writer: NightWriter, args: argparse.Namespace) -> tuple[dict | None, WrittenEpoch | None]:
    """What a resumed night goes on from, read (and refused if damaged) before any stream is looked for."""
    if args.resume is None:
        return None, None
    last_row = writer.last_epoch()
    if not args.rebuild_state:
        return writer.load_state(), last_row
    if last_row is None:
        raise ResumeError(f"{writer.folder} holds no staged epoch to continue from; start a new night there.")
    return None, last_row


def _continue(session: NightSession, saved: tuple[dict | None, WrittenEpoch | None]) -> None:
    """Restore the saved state (no row written twice), or go on from the last row with a fresh model."""
    state, last_row = saved
    if state is not None:
        session.resume(state, last_row)
    elif last_row is not None:
        session.continue_from(last_row)


@contextmanager
def _ctrl_c_ends(loop: LiveLoop) -> Iterator[None]:
    """Ctrl-C asks the loop to end the night between two chunks, rather than raising wherever the
    interpreter happens to be (inside a library call, a destructor, a write); a second Ctrl-C interrupts."""

    def request_stop(signum: int, frame: object) -> None:
        loop.stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _night_folder(resume: Path | None, out: str | Path | None) -> Path:
    if resume is not None:
        return Path(resume)
    return Path(out) if out is not None else default_night_folder()


def _criteria(stream: dict, args: argparse.Namespace) -> str:
    given = {"name": stream.get("name"), "type": stream.get("type"), "source id": args.source_id}
    return ", ".join(f"{k} {v}" for k, v in given.items() if v) or "type EEG"


def _run_with_display(
    loop: LiveLoop, session: NightSession, state: DashboardState, no_dashboard: bool
) -> None:
    console = Console()
    if use_live_dashboard(console, no_dashboard):

        def clock() -> datetime:
            return (loop.options.replay_clock and session.wall_now()) or datetime.now().astimezone()

        with Dashboard(state, console=console, clock=clock) as ui:
            loop.on_refresh = ui.update
            loop.run()
        return
    line = EpochLogLine()

    def print_line(epoch: StagedEpoch) -> None:
        truth = session.dashboard.truth[-1] if session.dashboard.has_truth else None
        when = session.clock.wall(epoch.end_s) if session.clock else None
        print(line.format(epoch, truth=truth if truth is None or truth >= 0 else None, when=when), flush=True)

    loop.on_epoch = print_line
    loop.run()


def _summarise(folder: Path, console: Console, write: bool) -> int:
    if not (folder / "hypnogram.csv").is_file():
        return 0
    if write:
        report = _morning_report(folder, console)
        print(report.summary, file=sys.stdout)
        if report.note:
            console.print(report.note)
    console.print(
        f"night folder: {folder} (hypnogram.csv, events.jsonl, state.npz, raw.bdf, summary.txt, report.png)"
    )
    return 0


def _morning_report(folder: Path, console: Console) -> Report:
    """The report, with the night re-scored from its raw recording where there is one; a re-score that
    fails is said in one line and the live report is written all the same."""
    if not raw_parts(folder):
        return write_report(folder)
    try:
        return write_report(folder, rescore="model")
    except StreamstageError as error:
        console.print(f"no morning re-score: {error}")
        return write_report(folder)
