"""``streamstage stage``: offline staging of a recorded EDF or XDF through the live pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from streamstage.io.xdf import StreamChoice


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stage",
        help="stage a recorded EDF file offline (same pipeline as live)",
        description="Stage a recording through the same streaming pipeline used live and write its "
        "hypnogram (CSV with per-stage probabilities).",
    )
    parser.add_argument("file", type=Path, help="EDF, EDF+, BDF or XDF recording")
    parser.add_argument(
        "--channel",
        nargs="+",
        help="channel(s) or derivation(s), e.g. Fpz-Cz or AF7-TP9 (default: the model's, else the nearest "
        "frontal channel, as `run` chooses)",
    )
    parser.add_argument("--reference", help="reference channel subtracted from --channel, e.g. TP9")
    parser.add_argument(
        "--model", help="a shipped model by name (default, psg) or a checkpoint file (default: default)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: a new dated folder under ./nights)")
    add_xdf_stream_arguments(parser)
    parser.set_defaults(handler=run)


def add_xdf_stream_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """--name, --type, --source-id (after ``prefix``): which stream of an XDF file is the EEG, as `run`
    picks a live one; read back as ``args.xdf_name``, ``args.xdf_type``, ``args.xdf_source_id``."""
    group = parser.add_argument_group("XDF files (which stream is the EEG; default: type EEG)")
    for field in ("name", "type", "source-id"):
        words = field.replace("-", " ")
        group.add_argument(f"--{prefix}{field}", dest="xdf_" + field.replace("-", "_"), help=f"its {words}")


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at the top: `streamstage --help` must not wait for torch
    from rich.console import Console

    from streamstage.io.xdf import StreamChoice
    from streamstage.model.checkpoint import load_model
    from streamstage.model.choice import model_choice
    from streamstage.offline import RecordingSource, stage_recording
    from streamstage.output import NightWriter, default_night_folder

    torch.set_num_threads(1)  # one epoch's work is tiny: a second thread only adds contention
    console = Console(stderr=True)
    model = load_model(args.model)
    stream = StreamChoice(args.xdf_name, args.xdf_type, args.xdf_source_id)
    labels = _labels(args.file, stream)
    console.print(model_choice(args.model, model, labels), soft_wrap=True)
    channels = args.channel or _default_channels(args.file, labels, model.channels, console)
    source = RecordingSource.open(args.file, channels, args.reference, stream)
    out = args.out or default_night_folder()
    with NightWriter(out) as writer:
        writer.write_event(
            "stage_file",
            file=str(args.file),
            channels=list(source.channel_labels),
            sfreq=source.sfreq,
            model=model.source,
            model_id=model.model_id,
        )
        staged = stage_recording(source, model)
        for epoch in staged:
            writer.write_epoch(epoch)
    console.print(
        f"staged {len(staged)} epochs of {args.file.name} ({', '.join(source.channel_labels)}) "
        f"-> {writer.hypnogram_path}"
    )
    return 0


def _labels(path: Path, stream: StreamChoice) -> list[str]:
    from streamstage.io.edf import EdfRecording
    from streamstage.io.xdf import XdfRecording, is_xdf

    return XdfRecording.open(path, stream).labels if is_xdf(path) else EdfRecording.open(path).labels


def _default_channels(
    path: Path, labels: list[str], model_channels: tuple[str, ...], console: Console
) -> list[str]:
    """The channel ``run`` would stage on a stream with this file's labels, said when it is a fallback."""
    from streamstage.live.channels import pick_montage

    chosen = list(pick_montage(labels, model_channels).labels)
    if chosen != list(model_channels):
        console.print(f"{path.name} has no {', '.join(model_channels)}: staging {', '.join(chosen)} instead")
    return chosen
