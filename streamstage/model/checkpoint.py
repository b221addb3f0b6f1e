"""Model checkpoints: config, weights, feature recipe, normalisation, channels and training metadata in one
file that loads with ``torch.load(weights_only=True)`` (plain containers and tensors only, no pickled code).

``model_id`` is a hash of config and weights: a saved night records it, so resuming with another model is
refused instead of silently mixing two models' hidden states.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from streamstage.errors import ModelError
from streamstage.features import CAUSAL, RECIPE, NormalizerConfig
from streamstage.model.ensemble import EnsembleNet
from streamstage.model.raw_frontend import FrontEndConfig, RawFrontEnd
from streamstage.model.stager import StagerConfig, StagingNet
from streamstage.weights import BUNDLED_MODELS, DEFAULT_MODEL

FORMAT = "streamstage-model"
FORMAT_VERSION = 1


def build_net(config: StagerConfig) -> StagingNet | EnsembleNet:
    """The network a config describes: one :class:`StagingNet`, or an ensemble of ``n_members``."""
    return EnsembleNet(config) if config.n_members > 1 else StagingNet(config)


@dataclass
class StagingModel:
    """A loaded model: the network plus what the pipeline needs to feed it correctly.

    With a ``front_end`` it is a raw-signal model: the front end turns the filtered samples into each
    epoch's features (the recipe's ten, then its extras) and ``net`` stages them; without, the pipeline
    computes the recipe's features itself.
    """

    net: StagingNet | EnsembleNet
    normalizer: NormalizerConfig = field(default_factory=NormalizerConfig)
    training: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"
    front_end: RawFrontEnd | None = None

    @property
    def config(self) -> StagerConfig:
        return self.net.config

    @property
    def channels(self) -> tuple[str, ...]:
        return self.config.channels

    @cached_property
    def model_id(self) -> str:
        """Config, normalisation and weights, hashed once: a loaded model does not change, and every
        epoch's saved state needs it."""
        described = {"config": self.config.to_dict(), "normalizer": self.normalizer.to_dict()}
        weights = dict(self.net.state_dict())
        if self.front_end is not None:
            described["front_end"] = self.front_end.config.to_dict()
            weights.update({f"front_end.{k}": v for k, v in self.front_end.state_dict().items()})
        digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode())
        for name, tensor in sorted(weights.items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def streams(self) -> bool:
        """Whether it can stage a stream: causal network and normalisation, not an offline reference."""
        return self.normalizer.method == CAUSAL and not self.config.bidirectional

    @property
    def is_raw(self) -> bool:
        """Whether it reads samples (a front end) rather than the recipe's features."""
        return self.front_end is not None

    def n_parameters(self) -> int:
        front = 0 if self.front_end is None else sum(p.numel() for p in self.front_end.parameters())
        return front + sum(p.numel() for p in self.net.parameters())


def save_model(model: StagingModel, path: Path) -> None:
    """Write a checkpoint atomically (temp file + rename)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()},
        "recipe": RECIPE.to_dict(),
        "normalizer": model.normalizer.to_dict(),
        "training": json.loads(json.dumps(model.training)),
    }
    if model.front_end is not None:
        payload["front_end"] = {
            "config": model.front_end.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.front_end.state_dict().items()},
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def _read_payload(raw: bytes, source: str) -> dict[str, Any]:
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"{source} is not a readable streamstage model checkpoint ({error}).") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(
            f"{source} is not a streamstage model checkpoint; train one with `streamstage train`."
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{source} has checkpoint format {payload.get('format_version')}, this streamstage reads "
            f"{FORMAT_VERSION}; retrain it or use a matching streamstage version."
        )
    if payload.get("recipe") != RECIPE.to_dict():
        raise ModelError(f"{source} was trained on another feature recipe than this streamstage computes.")
    return payload


def _bundled(name: str) -> tuple[bytes, str]:
    resource = resources.files("streamstage.weights").joinpath(f"{name}.pt")
    if not resource.is_file():
        raise ModelError(f"the shipped {name} model is missing from this install; reinstall streamstage.")
    return resource.read_bytes(), f"the shipped {name} model"


def load_model(path: Path | str | None = None) -> StagingModel:
    """Load a checkpoint file, or a model shipped inside the package by its name (``default``, ``psg``,
    ``raw``);
    None is the default model. A file of that name in the working folder wins over the bundled model."""
    name = DEFAULT_MODEL if path is None else str(path)
    if name in BUNDLED_MODELS and not Path(name).is_file():
        raw, source = _bundled(name)
    else:
        path = Path(name)
        if not path.is_file():
            raise ModelError(
                f"model file {path} does not exist; pass --model with a checkpoint path or a shipped "
                f"model's name ({', '.join(BUNDLED_MODELS)})."
            )
        raw, source = path.read_bytes(), str(path)
    payload = _read_payload(raw, source)
    config = StagerConfig.from_dict(payload["config"])
    net = build_net(config)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ModelError(f"{source}: weights do not fit its own config ({error}).") from error
    net.eval()
    normalizer = NormalizerConfig.from_dict(payload["normalizer"])
    return StagingModel(
        net=net,
        normalizer=normalizer,
        training=dict(payload.get("training", {})),
        source=source,
        front_end=_front_end(payload.get("front_end"), source),
    )


def _front_end(record: dict[str, Any] | None, source: str) -> RawFrontEnd | None:
    """The raw front end a checkpoint carries, or None for a feature model."""
    if record is None:
        return None
    front_end = RawFrontEnd(FrontEndConfig.from_dict(record["config"]))
    try:
        front_end.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise ModelError(f"{source}: front-end weights do not fit its own config ({error}).") from error
    return front_end.eval()
