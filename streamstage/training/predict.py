"""Stage labelled nights for evaluation, through the very :class:`EpochStager` that stages live.

Nights are stepped together as one batch (the stager is batched: independent streams step together), so
evaluating many nights costs one step per epoch of the longest night. Padding sits at the end, never
updates the normaliser and the model is causal, so it never touches a real epoch's output.

Offline reference models (bidirectional, or whole-night z-scored inputs) cannot stream; they exist only to
measure what causality costs and see each whole night at once in :func:`offline_reference_probs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from streamstage.epoch_stager import EpochStager
from streamstage.features import NIGHT_ZSCORE, CausalNormalizer, zscore_night
from streamstage.model.checkpoint import StagingModel
from streamstage.stats import confusion_matrix
from streamstage.training.data import FeatureNight
from streamstage.training.metrics import StagingScores


def stage_feature_nights(
    model: StagingModel, nights: Sequence[FeatureNight], joins: Sequence[int] | None = None
) -> list[np.ndarray]:
    """Probabilities ``(n_epochs - join, 5)`` per night, staged epoch by epoch as live.

    ``joins`` gives, per night, the epoch at which the stream is joined (cold start: a fresh normaliser and
    model state there, as when streamstage is started mid-night); 0 by default.
    """
    if not nights:
        return []
    joins = list(joins) if joins is not None else [0] * len(nights)
    lengths = [len(night) - join for night, join in zip(nights, joins, strict=True)]
    n_channels, n_features = nights[0].features.shape[1:]
    features = np.zeros((len(nights), max(lengths), n_channels, n_features), dtype=np.float32)
    good = np.zeros((len(nights), max(lengths)), dtype=bool)
    for row, (night, join, length) in enumerate(zip(nights, joins, lengths, strict=True)):
        features[row, :length] = night.features[join:]
        good[row, :length] = night.good[join:]
    stager = EpochStager(model, batch_size=len(nights))
    probs = np.stack(
        [stager.push_batch(features[:, t], good[:, t]) for t in range(features.shape[1])], axis=1
    )
    return [probs[row, :length] for row, length in enumerate(lengths)]


@torch.no_grad()
def offline_reference_probs(model: StagingModel, nights: Sequence[FeatureNight]) -> list[np.ndarray]:
    """Whole nights at once through an offline reference model (it sees the future or the night's z-score)."""
    model.net.eval()
    probs = []
    for night in nights:
        if model.normalizer.method == NIGHT_ZSCORE:
            inputs = zscore_night(night.features)
        else:
            inputs = CausalNormalizer(night.features.shape[1], model.normalizer).transform_night(
                night.features, night.good
            )
        logits = model.net(torch.from_numpy(inputs).unsqueeze(0))[0]
        probs.append(torch.softmax(logits.double(), dim=-1).numpy())
    return probs


def night_probs(model: StagingModel, nights: Sequence[FeatureNight]) -> list[np.ndarray]:
    """Each night's probabilities: streamed as live, or whole-night for an offline reference model."""
    return stage_feature_nights(model, nights) if model.streams else offline_reference_probs(model, nights)


def score_nights(model: StagingModel, nights: Sequence[FeatureNight]) -> StagingScores:
    """Pooled scores of every labelled epoch of ``nights``."""
    predicted = np.concatenate([p.argmax(axis=-1) for p in night_probs(model, nights)])
    truth = np.concatenate([n.labels for n in nights])
    return StagingScores(confusion_matrix(truth, predicted))
