"""Fit the :class:`~streamstage.features.StageAnchor` of a model on its training nights (labels needed).

Both parts come from the training nights alone, so cross-validation fits them per fold: the expected
``log - reference`` of each stage on settled nights (plain running mean, after its first hour), and a
linear discriminant on the logs of the relative powers (class means, one pooled covariance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from streamstage import STAGES
from streamstage.errors import InputFileError
from streamstage.features import N_BANDS, CausalNormalizer, NormalizerConfig, StageAnchor, relative_logs
from streamstage.training.data import FeatureNight

SETTLED_AFTER_EPOCHS = 120
"""Epochs of a night before its plain running mean counts as settled (the normaliser's first hour); a
night shorter than twice that contributes its second half."""
COVARIANCE_RIDGE = 1e-3


def fit_anchor(nights: Sequence[FeatureNight], normalizer: NormalizerConfig) -> NormalizerConfig:
    """``normalizer`` with its anchor fitted on ``nights`` (unchanged unless it is ``anchored``)."""
    if not normalizer.anchored:
        return normalizer
    plain = replace(normalizer, anchored=False, anchor=None)
    offsets, rel_logs, labels = [], [], []
    for night in nights:
        normalised = CausalNormalizer(night.features.shape[1], plain).transform_night(
            night.features, night.good
        )
        keep = (night.labels >= 0) & night.good
        keep[: min(SETTLED_AFTER_EPOCHS, len(night) // 2)] = False  # short nights: their second half
        offsets.append(normalised[keep, :, :N_BANDS])
        rel_logs.append(relative_logs(night.features[keep]))
        labels.append(night.labels[keep])
    offset, rel_log, label = np.concatenate(offsets), np.concatenate(rel_logs), np.concatenate(labels)
    if not len(label):
        raise InputFileError(
            "the training nights have no labelled good-quality epochs to fit the reference on."
        )
    n_stages, n_channels = len(STAGES), offset.shape[1]
    stage_offsets = np.zeros((n_channels, n_stages, N_BANDS))
    weights = np.zeros((n_channels, N_BANDS, n_stages))
    bias = np.zeros((n_channels, n_stages))
    prior = np.bincount(label, minlength=n_stages) / len(label)
    for channel in range(n_channels):
        x = rel_log[:, channel]
        means = np.stack(
            [x[label == s].mean(axis=0) if (label == s).any() else x.mean(0) for s in range(n_stages)]
        )
        centred = x - means[label]
        covariance = centred.T @ centred / len(x) + COVARIANCE_RIDGE * np.eye(N_BANDS)
        precision_means = np.linalg.solve(covariance, means.T)  # (5, n_stages)
        weights[channel] = precision_means
        bias[channel] = -0.5 * np.einsum("sf,fs->s", means, precision_means) + np.log(prior + 1e-12)
        for s in range(n_stages):
            stage_offsets[channel, s] = (
                offset[label == s, channel].mean(axis=0) if (label == s).any() else 0.0
            )
    return replace(normalizer, anchor=StageAnchor(stage_offsets, weights, bias))
