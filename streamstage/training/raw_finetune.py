"""End-to-end fine-tuning of a raw model on labelled raw nights: front end, epoch Mamba and head together.

A batch is random crops of ``crop_epochs`` epochs of samples, staged from a cold start as the pipeline
stages a stream it joins there (front end, normaliser and Mamba all fresh at the crop's first sample). The
causal normaliser runs in NumPy, as live, and passes gradients straight through (its running mean moves by
``1 / count`` of an epoch's change at most). The loss is class-weighted cross-entropy on the expert labels
plus, weighted by ``anchor_weight``, the label-free distillation loss on the ten recipe features, which keeps
them what the epoch network was trained to read while the front end's extras learn what they throw away.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from streamstage.errors import ModelError
from streamstage.features import N_FEATURES, CausalNormalizer, NormalizerConfig
from streamstage.model.checkpoint import StagingModel
from streamstage.training.data import IGNORE_LABEL
from streamstage.training.distill import feature_loss, feature_scale
from streamstage.training.edf_pairs import LabelledNight
from streamstage.training.train import class_weights


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200
    batch_size: int = 4
    crop_epochs: int = 20
    learning_rate: float = 3e-4
    weight_decay: float = 1e-2
    anchor_weight: float = 1.0
    class_weight_power: float = 0.5
    train_front_end: bool = True
    """False: the front end frozen and its extra features withheld, so only the epoch network learns, from
    the recipe features alone: the feature-model baseline of the same fine-tuning."""
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def normalised(features: torch.Tensor, good: np.ndarray, config: NormalizerConfig) -> torch.Tensor:
    """``(batch, n_epochs, n_channels, n)`` through the live causal normaliser from each crop's first epoch;
    the values are the normaliser's, the gradient passes straight through."""
    raw = features.detach().numpy()
    normalizer = CausalNormalizer(raw.shape[2], config, batch_size=raw.shape[0])
    out = np.stack([normalizer.push_batch(raw[:, t], good[:, t]) for t in range(raw.shape[1])], axis=1)
    return features + torch.from_numpy(out - raw)


def _crops(
    nights: Sequence[LabelledNight], config: FinetuneConfig, epoch_len: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor]:
    usable = [n for n in nights if len(n) >= config.crop_epochs]
    lengths = np.array([len(n) for n in usable], dtype=np.float64)
    rows = rng.choice(len(usable), size=config.batch_size, p=lengths / lengths.sum())
    samples, labels, good, targets = [], [], [], []
    for row in rows:
        night = usable[row]
        first = int(rng.integers(0, len(night) - config.crop_epochs + 1))
        epochs = slice(first, first + config.crop_epochs)
        samples.append(night.samples[:, first * epoch_len : epochs.stop * epoch_len])
        labels.append(night.labels[epochs])
        good.append(night.good[epochs])
        targets.append(night.features[epochs])
    return (
        torch.from_numpy(np.stack(samples)),
        torch.from_numpy(np.stack(labels)),
        np.stack(good),
        torch.from_numpy(np.stack(targets)),
    )


ProgressCallback = Callable[[int, int, dict[str, float]], None]


def finetune(
    model: StagingModel,
    nights: Sequence[LabelledNight],
    config: FinetuneConfig = FinetuneConfig(),
    on_progress: ProgressCallback | None = None,
) -> tuple[StagingModel, list[dict[str, float]]]:
    """A copy of the raw ``model`` fine-tuned on ``nights``; returns it and the loss every 10 steps."""
    if model.front_end is None:
        raise ModelError(f"{model.source} is a feature model; fine-tune a raw model (--model raw).")
    if not any(len(n) >= config.crop_epochs for n in nights):
        raise ModelError(
            f"no night has {config.crop_epochs} scored epochs; pass a smaller --crop-epochs or longer nights."
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    front_end, net = copy.deepcopy(model.front_end), copy.deepcopy(model.net)
    front_end.requires_grad_(config.train_front_end)
    parameters = [p for p in (*front_end.parameters(), *net.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    weights = class_weights(nights, len(net.config.stages), config.class_weight_power)  # type: ignore[arg-type]
    stage_loss = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_LABEL)
    scale = feature_scale(np.concatenate([n.features for n in nights]))
    epoch_len = front_end.config.epoch_samples
    history: list[dict[str, float]] = []
    running, started = np.zeros(2), time.perf_counter()
    front_end.train()
    net.train()
    for step in range(1, config.steps + 1):
        samples, labels, good, targets = _crops(nights, config, epoch_len, rng)
        batch, n_channels = samples.shape[:2]
        features = front_end(samples.reshape(batch * n_channels, -1))
        features = features.reshape(batch, n_channels, config.crop_epochs, -1).transpose(1, 2)
        if not config.train_front_end:
            features = torch.cat(
                [features[..., :N_FEATURES], torch.zeros_like(features[..., N_FEATURES:])], -1
            )
        logits = net(normalised(features, good, model.normalizer))
        staging = stage_loss(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        anchor = feature_loss(features, targets, scale)
        loss = staging + config.anchor_weight * anchor
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        running += (float(staging.detach()), float(anchor.detach()))
        if step % 10 == 0 or step == config.steps:
            count = 10 if step % 10 == 0 else step % 10
            record = {
                "step": step,
                "stage_loss": round(running[0] / count, 4),
                "feature_loss": round(running[1] / count, 6),
                "elapsed_s": round(time.perf_counter() - started, 1),
            }
            history.append(record)
            running[:] = 0.0
            if on_progress:
                on_progress(step, config.steps, record)
    training = {
        **model.training,
        "finetune": {
            "from_model": model.source,
            "from_model_id": model.model_id,
            "config": config.to_dict(),
            "nights": [n.name for n in nights],
            "history": history,
        },
    }
    tuned = StagingModel(
        net=net.eval(), normalizer=model.normalizer, training=training, front_end=front_end.eval()
    )
    return tuned, history
