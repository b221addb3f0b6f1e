"""The training loop: random crops of whole nights, class-weighted loss, early stopping on validation kappa.

With probability ``fresh_start_prob`` a crop is what the live pipeline sees after streamstage is started
at some point of a night: the causal normaliser and the Mamba state both start fresh at the crop's first
epoch, and the crop starts at the night's beginning with probability ``night_start_prob``, else anywhere
(a stream joined mid-sleep). Otherwise the normaliser runs from the night's start and only the Mamba state
starts at the crop (the first recipe: a settled reference, any start), which keeps long nights in view.
A fresh start is recognisable to the model (its first input's log part is exactly zero), so one network
learns both. Augmentations for transfer (:mod:`streamstage.training.augment`) edit the raw features of a
crop before it is normalised, so the model learns what another lab's montage and amplifier look like
*after* normalisation.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from streamstage.features import NIGHT_ZSCORE, CausalNormalizer, NormalizerConfig, zscore_night
from streamstage.model.checkpoint import StagingModel
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.training.anchor import fit_anchor
from streamstage.training.augment import TransferAugmentation, augment_crop
from streamstage.training.data import IGNORE_LABEL, FeatureNight
from streamstage.training.predict import score_nights


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    crop_epochs: int = 256
    batch_size: int = 12
    max_steps: int = 600
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    eval_every: int = 50
    patience: int = 5
    feature_noise: float = 0.05
    class_weight_power: float = 0.5
    fresh_start_prob: float = 0.5
    night_start_prob: float = 0.35
    augmentation: TransferAugmentation = field(default_factory=TransferAugmentation)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["augmentation"] = self.augmentation.to_dict()
        return record


def class_weights(nights: Sequence[FeatureNight], n_classes: int, power: float) -> torch.Tensor:
    """Inverse-frequency weights to a power (0.5: square root), normalised to mean 1; lifts N1."""
    labels = np.concatenate([n.labels for n in nights])
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _normalised_rows(
    segments: Sequence[tuple[np.ndarray, np.ndarray]], normalizer: NormalizerConfig
) -> list[np.ndarray]:
    """Each ``(features, good)`` segment normalised from its first epoch, all stepped as one batch."""
    if normalizer.method == NIGHT_ZSCORE:
        return [zscore_night(features) for features, _ in segments]
    longest = max(len(features) for features, _ in segments)
    n_channels, n_features = segments[0][0].shape[1:]
    padded = np.zeros((len(segments), longest, n_channels, n_features), dtype=np.float32)
    good = np.zeros((len(segments), longest), dtype=bool)
    for row, (features, flags) in enumerate(segments):
        padded[row, : len(features)] = features
        good[row, : len(features)] = flags
    batched = CausalNormalizer(n_channels, normalizer, batch_size=len(segments))
    out = np.stack([batched.push_batch(padded[:, t], good[:, t]) for t in range(longest)], axis=1)
    return [out[row, : len(features)] for row, (features, _) in enumerate(segments)]


def _sample_batch(
    nights: Sequence[FeatureNight],
    config: TrainConfig,
    normalizer: NormalizerConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(n.labels) for n in nights], dtype=np.float64)
    chosen = rng.choice(len(nights), size=config.batch_size, p=lengths / lengths.sum())
    segments, crops = [], []
    for index in chosen:
        night = nights[index]
        last_start = max(1, len(night) - config.crop_epochs + 1)
        fresh = rng.random() < config.fresh_start_prob
        at_night_start = fresh and rng.random() < config.night_start_prob
        start = 0 if at_night_start else int(rng.integers(0, last_start))
        crop = slice(start, start + config.crop_epochs)
        origin = start if fresh else 0
        features, good = augment_crop(
            night.features[origin : crop.stop], night.good[origin : crop.stop], config.augmentation, rng
        )
        segments.append((features, good))
        crops.append((night, crop, start - origin))
    normalised = _normalised_rows(segments, normalizer)
    n_channels, n_features = nights[0].features.shape[1:]
    inputs = np.zeros((config.batch_size, config.crop_epochs, n_channels, n_features), dtype=np.float32)
    labels = np.full((config.batch_size, config.crop_epochs), IGNORE_LABEL, dtype=np.int64)
    for row, ((night, crop, offset), rows) in enumerate(zip(crops, normalised, strict=True)):
        length = len(night.labels[crop])
        inputs[row, :length] = rows[offset : offset + length]
        labels[row, :length] = night.labels[crop]
    if config.feature_noise:
        inputs += rng.normal(0.0, config.feature_noise, inputs.shape).astype(np.float32)
    return torch.from_numpy(inputs), torch.from_numpy(labels)


ProgressCallback = Callable[[int, int, dict[str, float]], None]


def train_model(
    train_nights: Sequence[FeatureNight],
    val_nights: Sequence[FeatureNight],
    stager_config: StagerConfig,
    config: TrainConfig | None = None,
    normalizer: NormalizerConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[StagingModel, list[dict[str, Any]]]:
    """Train on ``train_nights``, keep the weights with the best validation kappa (early stopping)."""
    normalizer = fit_anchor(train_nights, normalizer or NormalizerConfig())
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = StagingNet(stager_config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.max_steps, pct_start=0.1
    )
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(train_nights, len(stager_config.stages), config.class_weight_power),
        ignore_index=IGNORE_LABEL,
    )
    history: list[dict[str, Any]] = []
    best_kappa, best_state, stale = -np.inf, copy.deepcopy(net.state_dict()), 0
    started = time.perf_counter()
    running_loss = 0.0
    for step in range(1, config.max_steps + 1):
        net.train()
        inputs, labels = _sample_batch(train_nights, config, normalizer, rng)
        logits = net(inputs)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running_loss += float(loss.detach())
        if step % config.eval_every and step != config.max_steps:
            continue
        record: dict[str, Any] = {
            "step": step,
            "train_loss": round(running_loss / config.eval_every, 4),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        running_loss = 0.0
        if val_nights:
            net.eval()
            scores = score_nights(StagingModel(net=net, normalizer=normalizer), val_nights)
            record.update(val_accuracy=round(scores.accuracy, 4), val_kappa=round(scores.kappa, 4))
            if scores.kappa > best_kappa:
                best_kappa, best_state, stale = scores.kappa, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
        else:
            best_state = copy.deepcopy(net.state_dict())
        history.append(record)
        if on_progress:
            on_progress(step, config.max_steps, record)
        if val_nights and stale >= config.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    metadata = {
        "train_config": config.to_dict(),
        "n_train_nights": len(train_nights),
        "n_val_nights": len(val_nights),
        "train_subjects": sorted({n.subject for n in train_nights}),
        "val_subjects": sorted({n.subject for n in val_nights}),
        "best_val_kappa": None if best_kappa == -np.inf else round(float(best_kappa), 4),
        "history": history,
    }
    return StagingModel(net=net, normalizer=normalizer, training=metadata), history


def train_ensemble(
    train_nights: Sequence[FeatureNight],
    val_nights: Sequence[FeatureNight],
    stager_config: StagerConfig,
    config: TrainConfig,
    n_members: int,
    normalizer: NormalizerConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> StagingModel:
    """``n_members`` networks of one recipe with seeds ``config.seed, config.seed + 1, ...`` on the same
    nights, averaged into one :class:`EnsembleNet` (a single network for ``n_members == 1``)."""
    members = [
        train_model(
            train_nights,
            val_nights,
            stager_config,
            replace(config, seed=config.seed + offset),
            normalizer,
            on_progress,
        )[0]
        for offset in range(n_members)
    ]
    if n_members == 1:
        return members[0]
    model = StagingModel(net=EnsembleNet.of([m.net for m in members]), normalizer=members[0].normalizer)
    ensemble_kappa = score_nights(model, val_nights).kappa if val_nights else None
    model.training = {
        **{k: v for k, v in members[0].training.items() if k not in ("best_val_kappa", "history")},
        "n_members": n_members,
        "member_seeds": [config.seed + offset for offset in range(n_members)],
        "members": [
            {"best_val_kappa": m.training["best_val_kappa"], "history": m.training["history"]}
            for m in members
        ],
        "best_val_kappa": None if ensemble_kappa is None else round(float(ensemble_kappa), 4),
    }
    return model
