"""Where training and evaluation nights come from: ``--features DIR`` (the Sleep-EDF feature set) or
``--edf DIR`` (EDF + hypnogram pairs, EDF+ recordings scored in their own annotations, and XDF files with
the stage markers recorded alongside or a ``NAME-hypnogram.*`` beside them, featurised by the live signal
path)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from streamstage.errors import InputFileError
from streamstage.io.edf import EdfRecording
from streamstage.io.hypnogram import read_hypnogram
from streamstage.io.sleepedf import RecordingPair, find_edf_pairs
from streamstage.io.xdf import XDF_SUFFIX, XdfRecording, is_xdf
from streamstage.model.checkpoint import StagingModel
from streamstage.offline import RecordingSource, recording_features, stage_recording
from streamstage.records import StagedEpoch
from streamstage.training.data import IGNORE_LABEL, FeatureNight, load_feature_nights

STAGE_ANNOTATION = "Sleep stage "
"""How an EDF+ recording scored in its own annotations names its stages."""
WAKE_MARGIN_EPOCHS = 60
"""Wake kept before the first and after the last sleep epoch (30 min), as in the feature set."""


def crop_to_sleep(labels: np.ndarray, margin: int = WAKE_MARGIN_EPOCHS) -> slice:
    """The span from ``margin`` epochs before the first sleep epoch to ``margin`` after the last."""
    sleep = np.flatnonzero((labels > 0) & (labels <= 4))
    if not len(sleep):
        return slice(0, len(labels))
    return slice(max(0, sleep[0] - margin), min(len(labels), sleep[-1] + margin + 1))


def _labels_for(pair: RecordingPair, n_epochs: int) -> np.ndarray:
    path = pair.hypnogram_path
    hypnogram = XdfRecording.open(path).hypnogram() if is_xdf(path) else read_hypnogram(path)
    stages = hypnogram.aligned_to(n_epochs, on_mismatch="fit").stages
    return np.where(stages >= 0, stages, IGNORE_LABEL).astype(np.int64)


def _night_name(pair: RecordingPair) -> tuple[str, int]:
    if pair.subject is None:
        return pair.psg_path.stem, 1
    return f"{pair.subject:02d}", int(pair.night or 1)


def _xdf_pairs(folder: Path) -> list[RecordingPair]:
    """Each XDF file with its ``NAME-hypnogram.*`` where there is one, else with its own stage markers."""
    pairs = []
    for path in sorted(Path(folder).glob(f"*{XDF_SUFFIX}")):
        beside = sorted(path.parent.glob(f"{path.stem}-hypnogram.*"))
        pairs.append(RecordingPair(None, None, path, beside[0] if beside else path))
    return pairs


def edf_pairs(folder: Path) -> list[RecordingPair]:
    """The labelled recordings of ``folder``: EDF + hypnogram pairs, XDF files, then each EDF+ recording that
    scores itself with "Sleep stage" annotations (paired with itself). Training and evaluation read these."""
    pairs = find_edf_pairs(folder) + _xdf_pairs(folder)
    used = {p for pair in pairs for p in (pair.psg_path, pair.hypnogram_path)}
    candidates = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() == ".edf" and p not in used)
    pairs += [RecordingPair(None, None, path, path) for path in candidates if _self_scored(path)]
    if not pairs:
        raise InputFileError(
            f"no labelled recordings in {folder}: expected EDF + hypnogram pairs (SC4001E0-PSG.edf + "
            "SC4001EC-Hypnogram.edf, NAME.edf + NAME-hypnogram.*), NAME.xdf, or EDF+ files with "
            "'Sleep stage' annotations."
        )
    return pairs


def _self_scored(path: Path) -> bool:
    """Whether an EDF+ recording (signals, not a hypnogram file) carries its own stage annotations."""
    if path.stem.lower().endswith("-hypnogram") or path.stem.lower().startswith("hypnogram_"):
        return False
    recording = EdfRecording.open(path)
    return bool(recording.labels) and any(t.startswith(STAGE_ANNOTATION) for _, _, t in recording.annotations)


def load_edf_nights(folder: Path, channels: list[str], console: Console | None = None) -> list[FeatureNight]:
    """Training nights from EDF + hypnogram pairs: features and quality flags from the live signal path,
    cropped to the sleep period with 30 min of wake either side, as the feature set is."""
    nights = []
    for pair in edf_pairs(folder):
        if console:
            console.print(f"featurising {pair.psg_path.name} ...")
        features, good = recording_features(RecordingSource.open(pair.psg_path, channels))
        labels = _labels_for(pair, len(features))
        subject, night = _night_name(pair)
        nights.append(FeatureNight(subject, night, features, labels, good).crop(crop_to_sleep(labels)))
    return nights


@dataclass(frozen=True)
class StagedRecording:
    """A recording staged exactly as ``streamstage stage`` stages it, with its expert labels."""

    pair: RecordingPair
    staged: list[StagedEpoch]
    labels: np.ndarray

    @property
    def scored_span(self) -> slice:
        """The sleep period with 30 min of wake either side: the convention the feature set follows."""
        return crop_to_sleep(self.labels)


def stage_edf_pairs(
    folder: Path, model: StagingModel, channels: list[str], console: Console | None = None
) -> list[StagedRecording]:
    """Every recording of ``folder`` through :func:`stage_recording`: the code of ``streamstage stage``."""
    recordings = []
    for pair in edf_pairs(folder):
        if console:
            console.print(f"staging {pair.psg_path.name} ...")
        staged = stage_recording(RecordingSource.open(pair.psg_path, channels), model)
        recordings.append(StagedRecording(pair, staged, _labels_for(pair, len(staged))))
    return recordings


def load_nights_of(args: argparse.Namespace, channels: list[str], console: Console) -> list[FeatureNight]:
    """The nights of ``--features`` or ``--edf`` through ``channels``."""
    if args.features:
        return load_feature_nights(args.features, channels)
    return load_edf_nights(args.edf, channels, console)


def load_nights_from_args(args: argparse.Namespace, console: Console) -> tuple[list[FeatureNight], list[str]]:
    channels = list(args.channels or ["Fpz-Cz"])
    return load_nights_of(args, channels, console), channels
