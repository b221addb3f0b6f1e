"""Where training and evaluation nights come from: ``--features DIR`` (the Sleep-EDF feature set) or
``--edf DIR`` (EDF + hypnogram pairs, featurised by the live signal path)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console

from streamstage.errors import InputFileError
from streamstage.io.hypnogram import read_hypnogram
from streamstage.io.sleepedf import find_edf_pairs
from streamstage.offline import RecordingSource, recording_features
from streamstage.training.data import IGNORE_LABEL, Night, load_feature_nights

WAKE_MARGIN_EPOCHS = 60
"""Wake kept before the first and after the last sleep epoch (30 min), as in the feature set."""


def add_night_source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", type=Path, help="folder of SS__N.npz feature files (Sleep-EDF layout)")
    source.add_argument("--edf", type=Path, help="folder of EDF recordings with their hypnograms")
    parser.add_argument(
        "--channels", nargs="+", help="channels or derivations to use (default: Fpz-Cz, or the model's)"
    )


def crop_to_sleep(labels: np.ndarray, margin: int = WAKE_MARGIN_EPOCHS) -> slice:
    """The span from ``margin`` epochs before the first sleep epoch to ``margin`` after the last."""
    sleep = np.flatnonzero((labels > 0) & (labels <= 4))
    if not len(sleep):
        return slice(0, len(labels))
    return slice(max(0, sleep[0] - margin), min(len(labels), sleep[-1] + margin + 1))


def load_edf_nights(folder: Path, channels: list[str], console: Console | None = None) -> list[Night]:
    pairs = find_edf_pairs(folder)
    if not pairs:
        raise InputFileError(
            f"no EDF recordings with hypnograms found in {folder}; expected Sleep-EDF style pairs "
            "(SC4001E0-PSG.edf + SC4001EC-Hypnogram.edf) or NAME.edf + NAME-hypnogram.*."
        )
    nights = []
    for pair in pairs:
        if console:
            console.print(f"featurising {pair.psg_path.name} ...")
        features, _ = recording_features(RecordingSource.open(pair.psg_path, channels))
        stages = read_hypnogram(pair.hypnogram_path).aligned_to(len(features), on_mismatch="fit").stages
        labels = np.where(stages >= 0, stages, IGNORE_LABEL).astype(np.int64)
        span = crop_to_sleep(labels)
        nights.append(Night(f"{pair.subject:02d}", pair.night, features[span], labels[span]))
    return nights


def load_nights_from_args(args: argparse.Namespace, console: Console) -> tuple[list[Night], list[str]]:
    channels = list(args.channels or ["Fpz-Cz"])
    if args.features:
        return load_feature_nights(args.features, channels), channels
    return load_edf_nights(args.edf, channels, console), channels
