"""The morning re-score: the night's saved raw signal staged again offline, by a model that sees it whole.

Live staging is causal: each epoch is staged when it ends, from the past only. In the morning the whole
night is there, so the bundled bidirectional model (``streamstage/weights/rescore.pt``, see MODEL_CARD.md)
stages the raw recording through the same signal path with the future in view; ``yasa`` uses YASA's
``SleepStaging`` instead where it is installed. The result, ``rescored.csv`` (epoch, start_s, stage, five
probabilities, on the live hypnogram's epoch grid), is what the report's statistics and ``export`` use.
Epochs the live night could not stage (too little data) stay unknown.
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from streamstage import STAGES
from streamstage.errors import InputFileError, ModelError
from streamstage.io.edf import EdfRecording
from streamstage.io.hypnogram import Hypnogram, read_hypnogram, write_hypnogram_csv
from streamstage.io.raw_record import raw_parts, read_layout
from streamstage.output import EVENTS_FILE, FILE_MODE
from streamstage.report.export import night_start
from streamstage.report.night import StagedNight
from streamstage.stats import UNKNOWN

RESCORED_FILE = "rescored.csv"
METHODS = ("model", "yasa")
RESCORE_MODEL = "rescore.pt"


def read_rescored(folder: Path, night: StagedNight) -> np.ndarray | None:
    """The re-scored stages on the night's epochs (unknown where it has none), or None without a re-score."""
    path = Path(folder) / RESCORED_FILE
    if not path.is_file():
        return None
    hypnogram = read_hypnogram(path, night.epoch_s)
    stages = np.full(night.n_epochs, UNKNOWN, dtype=np.int64)
    first = round(hypnogram.start_s / night.epoch_s)
    span = slice(max(first, 0), min(first + len(hypnogram), night.n_epochs))
    stages[span] = hypnogram.stages[span.start - first : span.stop - first]
    return stages


def read_rescored_probs(folder: Path, night: StagedNight) -> np.ndarray | None:
    """The re-score's probabilities ``(n_epochs, 5)`` on the night's epochs (NaN where it has none)."""
    path = Path(folder) / RESCORED_FILE
    if not path.is_file():
        return None
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, *range(3, 3 + len(STAGES))), ndmin=2)
    except ValueError as error:
        raise InputFileError(
            f"{path} is damaged ({error}); re-score with `streamstage report --rescore`."
        ) from None
    probs = np.full((night.n_epochs, len(STAGES)), np.nan)
    rows = table[(table[:, 0] >= 0) & (table[:, 0] < night.n_epochs)]
    probs[rows[:, 0].astype(int)] = rows[:, 1:]
    return probs


def rescore_night(folder: Path, night: StagedNight, method: str = "model") -> np.ndarray:
    """Re-stage every raw part of the night with ``method``, write ``rescored.csv``, return its stages."""
    parts = raw_parts(folder)
    if not parts:
        raise InputFileError(
            f"{folder} holds no raw recording (raw.bdf) to re-score; the night was run with --no-raw "
            "or before streamstage kept it."
        )
    probs = np.full((night.n_epochs, len(STAGES)), np.nan)
    start = night_start(night).replace(tzinfo=None)
    channel = _staged_channel(folder)
    for path in parts:
        part = _part_probs(path, channel, method)
        first = round((read_layout(path).start - start).total_seconds() / night.epoch_s)
        span = slice(max(first, 0), min(first + len(part), night.n_epochs))
        probs[span] = part[span.start - first : span.stop - first]
    stages = np.where(np.isfinite(probs).all(axis=1), np.nan_to_num(probs).argmax(axis=1), UNKNOWN)
    stages[night.stages == UNKNOWN] = UNKNOWN  # too little data live: no better in the morning
    path = Path(folder) / RESCORED_FILE
    write_hypnogram_csv(path, Hypnogram(stages, night.epoch_s), np.nan_to_num(probs))
    path.chmod(FILE_MODE)
    return stages


def _staged_channel(folder: Path) -> str | None:
    """The channel the live night staged (its first, for a multi-channel model), from events.jsonl."""
    path = Path(folder) / EVENTS_FILE
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") in ("night_started", "night_continued") and record.get("channels"):
            return str(record["channels"][0])
    return None


def _part_probs(path: Path, channel: str | None, method: str) -> np.ndarray:
    labels = EdfRecording.open(path).labels
    channel = channel if channel in labels else labels[-1]
    if method == "yasa":
        return _yasa_probs(path, channel)
    return _model_probs(path, channel)


def _model_probs(path: Path, channel: str) -> np.ndarray:
    """Whole-night probabilities of the bundled bidirectional model (needs PyTorch, imported here)."""
    from streamstage.model.checkpoint import load_model
    from streamstage.offline import RecordingSource, recording_features
    from streamstage.training.data import IGNORE_LABEL, FeatureNight
    from streamstage.training.predict import offline_reference_probs

    with resources.as_file(resources.files("streamstage.weights").joinpath(RESCORE_MODEL)) as weights:
        if not weights.is_file():
            raise ModelError("the re-score model is missing from this install; reinstall streamstage.")
        model = load_model(weights)
    features, good = recording_features(RecordingSource.open(path, [channel]))
    if not len(features):
        return np.empty((0, len(STAGES)))
    night = FeatureNight("night", 1, features, np.full(len(features), IGNORE_LABEL), good)
    return offline_reference_probs(model, [night])[0]


def _yasa_probs(path: Path, channel: str) -> np.ndarray:
    """YASA's ``SleepStaging`` probabilities, reordered to W, N1, N2, N3, REM."""
    try:
        import mne
        import yasa
    except ImportError as error:
        raise ModelError(
            f"--rescore yasa needs YASA ({error}); install it with pip install 'streamstage[yasa]', "
            "or re-score with the bundled model (--rescore)."
        ) from None
    recording = EdfRecording.open(path)
    info = mne.create_info([channel], recording.sfreq(channel), ch_types=["eeg"])
    raw = mne.io.RawArray(recording.read_uv(channel)[None] * 1e-6, info, verbose="error")
    with warnings.catch_warnings():  # its bundled classifiers were pickled by an older scikit-learn
        warnings.simplefilter("ignore")
        proba = yasa.SleepStaging(raw, eeg_name=channel).predict_proba()
    return proba[["W", "N1", "N2", "N3", "R"]].to_numpy(dtype=np.float64)
