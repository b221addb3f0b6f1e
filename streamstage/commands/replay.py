"""``streamstage replay``: publish a recording as a live LSL EEG stream, to try the live path without a
headband or to re-run a night through it (with its hypnogram as ground-truth markers)."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from streamstage.commands.stage import add_xdf_stream_arguments
from streamstage.errors import HypnogramError
from streamstage.io.hypnogram import Hypnogram, read_hypnogram
from streamstage.io.xdf import StreamChoice, XdfRecording, is_xdf
from streamstage.lsl.options import add_scope_argument
from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.scope import configure_lsl
from streamstage.lsl.sources import ArraySource, EdfSource, SampleSource


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="publish an EDF recording as a live LSL stream",
        description="Publish an EDF/BDF recording (or an XDF file's EEG stream) as an LSL stream of type "
        "EEG (float32, µV, channel labels and units in the stream description), paced against the LSL "
        "clock. Each sample is stamped t0 + i/sfreq, so `streamstage run` on the stream stages the same "
        "samples as the file. With --hypnogram (or the stage markers an XDF file holds) the stages go out "
        "on a second stream, NAME-stages (type Markers).",
    )
    parser.add_argument("file", type=Path, help="EDF, BDF or XDF recording")
    parser.add_argument(
        "--speed",
        type=replay_speed,
        default=1.0,
        help="1 = real time (default), 60 = an hour a minute, max (or 0) = as fast as possible; a consumer "
        "that falls more than 6 minutes of recording behind loses samples",
    )
    parser.add_argument("--loop", action="store_true", help="start over at the end, until Ctrl-C")
    parser.add_argument(
        "--channels",
        type=lambda text: [label.strip() for label in text.split(",") if label.strip()],
        help="comma-separated channel labels (default: the voltage channels at the first one's rate)",
    )
    parser.add_argument("--name", default="streamstage-replay", help="LSL stream name")
    parser.add_argument("--hypnogram", type=Path, help="also publish these stages, one marker per epoch")
    parser.add_argument(
        "--no-wait", action="store_true", help="start at once instead of waiting for a consumer to connect"
    )
    add_scope_argument(parser)
    add_xdf_stream_arguments(parser, prefix="xdf-")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    scope = configure_lsl(args.lsl_scope)
    source, duration_s, recorded = _open(args)
    hypnogram = read_hypnogram(args.hypnogram) if args.hypnogram else recorded
    replay = ReplayThread(
        source,
        args.speed,
        name=args.name,
        loop=args.loop,
        hypnogram=hypnogram,
        wait_for_consumer_s=0.0 if args.no_wait else math.inf,
    )
    pace = "as fast as possible" if args.speed == 0 else f"at {args.speed:g}x real time"
    print(
        f"replaying {args.file.name}: {len(source.labels)} channel(s) ({', '.join(source.labels)}) at "
        f"{source.sfreq_hz:g} Hz, {duration_s / 3600:.2f} h, {pace}, as LSL stream {args.name!r} "
        f"(source id {source.source_id}; {scope})"
        + (f", stages on {args.name}-stages" if hypnogram is not None else "")
    )
    if not args.no_wait:
        print("waiting for a consumer (e.g. `streamstage run`) to connect; Ctrl-C to quit")
    started = time.monotonic()
    replay.start()
    try:
        while not replay.done.wait(0.5):
            pass
        replay.join()  # the outlet lingers a moment so the consumer gets the last samples
    except KeyboardInterrupt:
        replay.stop()
        replay.join()
        raise
    hours = replay.samples_sent / source.sfreq_hz / 3600
    print(f"done: {replay.samples_sent} samples ({hours:.2f} h) in {time.monotonic() - started:.0f} s")
    return 0


def _open(args: argparse.Namespace) -> tuple[SampleSource, float, Hypnogram | None]:
    """The source to publish, its duration, and the stages an XDF file recorded alongside (if any)."""
    if not is_xdf(args.file):
        source = EdfSource(args.file, args.channels)
        return source, source.duration_s, None
    recording = XdfRecording.open(args.file, StreamChoice(args.xdf_name, args.xdf_type, args.xdf_source_id))
    labels = args.channels or recording.labels
    source_id = f"streamstage-replay-{recording.source_id or recording.stream_name}"
    source = ArraySource(recording.samples_uv(labels), recording.sfreq_hz, labels, source_id)
    try:
        hypnogram: Hypnogram | None = recording.hypnogram()
    except HypnogramError:
        hypnogram = None
    return source, recording.duration_s, hypnogram


def replay_speed(text: str) -> float:
    """An argparse type: a replay speed factor, or max (0) for as fast as possible."""
    if text.strip().lower() in ("max", "0"):
        return 0.0
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a speed; give a factor like 1 or 60, or max"
        ) from None
    if not speed > 0:
        raise argparse.ArgumentTypeError(f"speed {text} must be above 0 (or max)")
    return speed
