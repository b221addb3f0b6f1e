"""Nights for training and evaluation: per-epoch features with expert labels.

Two sources give the same :class:`FeatureNight`: the Sleep-EDF feature set (``SS__N.npz``, features already
computed by the training recipe) and EDF + hypnogram pairs, whose features come from the same stream intake
and signal path used live (:func:`streamstage.training.sources.load_edf_nights`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamstage.errors import InputFileError

FEATURE_SET_CHANNELS: tuple[str, ...] = ("Fpz-Cz", "Pz-Oz", "EOG")
IGNORE_LABEL = -100
_NIGHT_FILE = re.compile(r"^(?P<subject>\d+)__(?P<night>\d+)\.npz$")


@dataclass(frozen=True)
class FeatureNight:
    """One recording: raw (un-normalised) features ``(n_epochs, n_channels, 10)`` and labels ``(n_epochs,)``
    with 0..4 for W, N1, N2, N3, REM and -100 for epochs to ignore; ``good`` holds each epoch's quality
    (False: the live pipeline would not let it move the normaliser), all good when not given."""

    subject: str
    night: int
    features: np.ndarray
    labels: np.ndarray
    good: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.good is None:
            object.__setattr__(self, "good", np.ones(len(self.labels), dtype=bool))
        if not len(self.features) == len(self.labels) == len(self.good):
            raise ValueError(
                f"night {self.name}: {len(self.features)} feature rows, {len(self.labels)} labels and "
                f"{len(self.good)} quality flags; they must match"
            )

    def crop(self, span: slice) -> FeatureNight:
        """The epochs of ``span`` only (features, labels and quality flags together)."""
        return FeatureNight(self.subject, self.night, self.features[span], self.labels[span], self.good[span])

    @property
    def name(self) -> str:
        return f"{self.subject}__{self.night}"

    def __len__(self) -> int:
        return len(self.labels)


FEATURE_SET_ALIASES: dict[str, str] = {"eog horizontal": "eog"}
"""The live label of a feature-set channel, so a model trained on it is named as it is staged."""


def channel_indices(wanted: Sequence[str]) -> list[int]:
    """Indices of ``wanted`` among the feature set's channels (``EOG`` or ``EOG horizontal``: its
    horizontal EOG)."""
    lowered = [c.lower() for c in FEATURE_SET_CHANNELS]
    indices = []
    for name in wanted:
        key = FEATURE_SET_ALIASES.get(name.lower(), name.lower())
        if key not in lowered:
            raise InputFileError(
                f"the feature set has no channel {name!r}; choose from {', '.join(FEATURE_SET_CHANNELS)}."
            )
        indices.append(lowered.index(key))
    return indices


def load_feature_nights(folder: Path, channels: Sequence[str] = ("Fpz-Cz",)) -> list[FeatureNight]:
    """Load every ``SS__N.npz`` night of a Sleep-EDF feature folder, keeping ``channels``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(
            f"feature folder {folder} does not exist; pass the folder holding SS__N.npz files."
        )
    keep = channel_indices(channels)
    nights = []
    for path in sorted(folder.glob("*.npz")):
        match = _NIGHT_FILE.match(path.name)
        if not match:
            continue
        try:
            with np.load(path) as data:
                features = np.asarray(data["features"], dtype=np.float32)[:, keep, :]
                labels = np.asarray(data["labels"], dtype=np.int64)
        except (OSError, KeyError, ValueError) as error:
            raise InputFileError(
                f"{path} is not a feature file with 'features' and 'labels' arrays ({error})."
            ) from error
        nights.append(FeatureNight(match["subject"], int(match["night"]), features, labels))
    if not nights:
        raise InputFileError(f"no SS__N.npz feature files found in {folder}.")
    return nights


def subjects_of(nights: Sequence[FeatureNight]) -> list[str]:
    return sorted({n.subject for n in nights})


def subject_folds(subjects: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Split subjects (never nights or epochs) into ``n_folds`` disjoint, shuffled groups."""
    order = np.random.default_rng(seed).permutation(sorted(subjects))
    return [sorted(str(s) for s in order[i::n_folds]) for i in range(n_folds)]
