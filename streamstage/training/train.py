"""The training loop: random crops of whole nights, class-weighted loss, early stopping on validation kappa.

Features are normalised with the causal normaliser over each whole night *before* cropping, so a crop sees
exactly the inputs the live pipeline would produce at that point of the night. A crop starts the Mamba state
from zero at a random point of the night, which teaches the model to recover its context from any start
(a resumed night, a late connection).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from streamstage.features import NIGHT_ZSCORE, CausalNormalizer, NormalizerConfig, zscore_night
from streamstage.model.checkpoint import StagingModel
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.stats import confusion_matrix
from streamstage.training.data import IGNORE_LABEL, Night
from streamstage.training.metrics import StagingScores
from streamstage.training.predict import predict_nights


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreparedNight:
    inputs: np.ndarray
    labels: np.ndarray


def normalise_night(features: np.ndarray, normalizer: NormalizerConfig) -> np.ndarray:
    """Causally, as the live pipeline does epoch by epoch (or whole-night z-scores, the offline reference)."""
    if normalizer.method == NIGHT_ZSCORE:
        return zscore_night(features)
    return CausalNormalizer(features.shape[1], normalizer).transform_night(features)


def prepare_nights(nights: Sequence[Night], normalizer: NormalizerConfig) -> list[PreparedNight]:
    return [PreparedNight(normalise_night(n.features, normalizer), n.labels.astype(np.int64)) for n in nights]


def class_weights(nights: Sequence[PreparedNight], n_classes: int, power: float) -> torch.Tensor:
    """Inverse-frequency weights to a power (0.5: square root), normalised to mean 1; lifts N1."""
    labels = np.concatenate([n.labels for n in nights])
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _sample_batch(
    nights: Sequence[PreparedNight], config: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(n.labels) for n in nights], dtype=np.float64)
    chosen = rng.choice(len(nights), size=config.batch_size, p=lengths / lengths.sum())
    n_channels, n_features = nights[0].inputs.shape[1:]
    inputs = np.zeros((config.batch_size, config.crop_epochs, n_channels, n_features), dtype=np.float32)
    labels = np.full((config.batch_size, config.crop_epochs), IGNORE_LABEL, dtype=np.int64)
    for row, index in enumerate(chosen):
        night = nights[index]
        start = int(rng.integers(0, max(1, len(night.labels) - config.crop_epochs + 1)))
        crop = slice(start, start + config.crop_epochs)
        length = len(night.labels[crop])
        inputs[row, :length] = night.inputs[crop]
        labels[row, :length] = night.labels[crop]
    if config.feature_noise:
        inputs += rng.normal(0.0, config.feature_noise, inputs.shape).astype(np.float32)
    return torch.from_numpy(inputs), torch.from_numpy(labels)


def evaluate_prepared(net: StagingNet, nights: Sequence[PreparedNight]) -> StagingScores:
    predictions = predict_nights(net, [n.inputs for n in nights])
    truth = np.concatenate([n.labels for n in nights])
    predicted = np.concatenate([p.argmax(axis=-1) for p in predictions])
    return StagingScores(confusion_matrix(truth, predicted))


ProgressCallback = Callable[[int, int, dict[str, float]], None]


def train_model(
    train_nights: Sequence[Night],
    val_nights: Sequence[Night],
    stager_config: StagerConfig,
    config: TrainConfig | None = None,
    normalizer: NormalizerConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[StagingModel, list[dict[str, Any]]]:
    """Train on ``train_nights``, keep the weights with the best validation kappa (early stopping)."""
    normalizer = normalizer or NormalizerConfig()
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_set = prepare_nights(train_nights, normalizer)
    val_set = prepare_nights(val_nights, normalizer) if val_nights else []
    net = StagingNet(stager_config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.max_steps, pct_start=0.1
    )
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(train_set, len(stager_config.stages), config.class_weight_power),
        ignore_index=IGNORE_LABEL,
    )
    history: list[dict[str, Any]] = []
    best_kappa, best_state, stale = -np.inf, copy.deepcopy(net.state_dict()), 0
    started = time.perf_counter()
    running_loss = 0.0
    for step in range(1, config.max_steps + 1):
        net.train()
        inputs, labels = _sample_batch(train_set, config, rng)
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
        if val_set:
            net.eval()
            scores = evaluate_prepared(net, val_set)
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
        if val_set and stale >= config.patience:
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
