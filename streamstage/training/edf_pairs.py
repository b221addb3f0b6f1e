"""Labelled raw nights for end-to-end fine-tuning: EDF + hypnogram pairs (Sleep-EDF layout, NAME.edf with
NAME-hypnogram.*, DREAMS naming, XDF with stage markers) and EDF+ recordings that carry their own
"Sleep stage" annotations, as the raw model reads them.

The samples come from the pipeline's own signal path (:func:`~streamstage.training.distill.recording_streams`
over :meth:`SignalPath.push_resampled`), so fine-tuning sees exactly what staging will; the labels are
aligned and cropped to the sleep period as :mod:`streamstage.training.sources` does for the feature model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from streamstage.training.distill import recording_streams
from streamstage.training.sources import _labels_for, crop_to_sleep, edf_pairs


@dataclass(frozen=True)
class LabelledNight:
    """One recording: filtered samples ``(n_channels, n_epochs * epoch_len)`` at the model rate, the recipe
    features ``(n_epochs, n_channels, 10)`` (the anchor fine-tuning keeps), expert labels ``(n_epochs,)``
    (0..4, -100 ignored) and quality flags ``(n_epochs,)``."""

    name: str
    samples: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    good: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def labelled_nights(
    folder: Path, channels: Sequence[str], epoch_len: int = 3000, console: Console | None = None
) -> list[LabelledNight]:
    """Every pair in ``folder`` through ``channels``, cropped to its sleep period with 30 min of wake
    either side."""
    nights = []
    for pair in edf_pairs(folder):
        if console:
            console.print(f"reading {pair.psg_path.name} ...")
        streams = recording_streams(pair.psg_path, channels)
        n_epochs = streams[0].n_epochs
        span = crop_to_sleep(labels := _labels_for(pair, n_epochs))
        samples = np.stack([s.samples for s in streams])[:, span.start * epoch_len : span.stop * epoch_len]
        features = np.stack([s.features for s in streams], axis=1)[span]
        nights.append(
            LabelledNight(pair.psg_path.stem, samples, features, labels[span], streams[0].good[span])
        )
    return nights
