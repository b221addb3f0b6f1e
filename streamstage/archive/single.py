"""``stage`` with one recording: its night folder is ``--out`` itself, as it always was."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from streamstage.archive.night import StagingOptions, choose_channels, read_labels, worker_model, write_night


def stage_single(path: Path, out: Path | None, options: StagingOptions, console: Console) -> int:
    """Stage ``path`` into ``out`` (default: a new dated folder under ./nights), saying what it did."""
    from streamstage.model.choice import model_choice
    from streamstage.output import HYPNOGRAM_FILE, default_night_folder

    model = worker_model(options.model)
    labels = read_labels(path, options.stream)
    console.print(model_choice(options.model, model, labels), soft_wrap=True)
    channels = choose_channels(path, labels, options, model.channels, console.print)
    night = write_night(path, out or default_night_folder(), channels, options, model)
    console.print(
        f"staged {len(night.epochs)} epochs of {path.name} ({', '.join(night.source.channel_labels)}) "
        f"-> {night.folder / HYPNOGRAM_FILE}"
    )
    return 0
