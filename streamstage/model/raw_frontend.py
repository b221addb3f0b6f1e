"""The raw-signal front end: the 100-Hz filtered samples of the signal path in, each epoch's features out.

Per sample stream (one channel of one night), in order:

1. a causal FIR filterbank of 1-Hz sub-bands (``filterbank``), initialised to reproduce the Welch recipe
   (:mod:`.welch_filters`) and trainable;
2. its squared output averaged over ``token_samples`` samples: the downsampling (25: four tokens a second);
3. the tokens' relative log spectrum (gain-free) through Mamba layers (``backbone``, mamba-ssm names) to a
   correction of each band's log power and ``n_extra`` learned features: what band powers throw away
   (spindles, K-complexes, eye movements) has a way in;
4. a per-epoch readout: the recipe's 4-s half-overlapping segments formed from the epoch's tokens
   (hamming² weights), their median per sub-band, gained (``subband_log_gain``) and summed per band, then
   log and relative powers as :func:`~streamstage.features.epoch_features` computes them, with the Mamba
   path's mean over the epoch added to the logs and its extras appended.

``forward`` runs whole sequences from an empty history (training); ``init_state`` / ``step`` continue over
any chunking with a state of fixed size: the filter history, the token in progress, the epoch's tokens so
far, the Mamba path's sum over them and the Mamba caches. ``peek`` reads the epoch in progress without
moving the state (the provisional stage). A fresh correction head is zero, so the distillation starts from
the filterbank's own reproduction of the recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamstage.errors import ConfigError, ModelError, ResumeError
from streamstage.features import LOG_EPS, N_BANDS, N_FEATURES, RECIPE
from streamstage.model.stack import MambaStack, StackState
from streamstage.model.welch_filters import matched_filterbank, segment_token_weights, subband_layout

REL_EPS_UV2 = 1e-3
"""Added to every sub-band's token power before the relative spectrum, so a flat signal reads as uniform."""


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything needed to rebuild a :class:`RawFrontEnd`; stored in its checkpoint."""

    n_taps: int = 201
    token_samples: int = 25
    bins_per_subband: int = 4
    d_model: int = 16
    n_layers: int = 2
    d_state: int = 8
    n_extra: int = 4
    epoch_samples: int = 3000

    def __post_init__(self) -> None:
        if self.epoch_samples % self.token_samples:
            raise ConfigError(
                f"token_samples={self.token_samples} must divide epoch_samples={self.epoch_samples}."
            )
        if self.n_extra < 0:
            raise ConfigError(f"n_extra must be >= 0, got {self.n_extra}.")

    @property
    def tokens_per_epoch(self) -> int:
        return self.epoch_samples // self.token_samples

    @property
    def n_outputs(self) -> int:
        return N_FEATURES + self.n_extra

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FrontEndConfig:
        return cls(**{f.name: int(record[f.name]) for f in fields(cls) if f.name in record})


_TENSORS = ("history", "patch_sum", "tokens", "path_sum")


@dataclass(frozen=True)
class FrontEndState:
    """What the front end carries between chunks for ``batch`` sample streams; fixed size.

    ``history`` (batch, n_taps - 1): the last inputs of the filterbank; ``patch_sum`` (batch, n_subbands):
    the squared outputs of the token in progress; ``tokens`` (batch, n_subbands, tokens_per_epoch): the
    epoch's token powers so far (zeros beyond); ``path_sum`` (batch, 5 + n_extra): the Mamba path's
    outputs summed over them; ``mamba``: its caches; ``phase``: samples into the epoch in progress.
    """

    history: Tensor
    patch_sum: Tensor
    tokens: Tensor
    path_sum: Tensor
    mamba: StackState
    phase: int

    @property
    def batch_size(self) -> int:
        return self.history.shape[0]

    @property
    def nbytes(self) -> int:
        own = sum(getattr(self, name).numel() * getattr(self, name).element_size() for name in _TENSORS)
        return own + self.mamba.nbytes

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {name: getattr(self, name) for name in _TENSORS}
        record["phase"] = self.phase
        record["mamba"] = self.mamba.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FrontEndState:
        try:
            tensors = {name: torch.as_tensor(record[name], dtype=torch.float32) for name in _TENSORS}
            return cls(**tensors, mamba=StackState.from_dict(record["mamba"]), phase=int(record["phase"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ResumeError(
                f"the saved raw front-end state is damaged ({error}); start a new night."
            ) from error


class RawFrontEnd(nn.Module):
    """Filtered samples ``(streams, n_samples)`` at the model rate -> features ``(streams, n_epochs, 10 +
    n_extra)``, the first ten in :data:`~streamstage.features.FEATURE_NAMES` order."""

    def __init__(self, config: FrontEndConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or FrontEndConfig()
        layout = subband_layout(config.bins_per_subband)
        n_sub = layout.n_subbands
        self.filterbank = nn.Conv1d(1, n_sub, config.n_taps, bias=False)
        self.subband_log_gain = nn.Parameter(torch.zeros(n_sub))
        self.embed = nn.Linear(n_sub, config.d_model)
        self.backbone = MambaStack(config.d_model, config.n_layers, d_state=config.d_state)
        self.correction = nn.Linear(config.d_model, N_BANDS)
        self.extra = nn.Linear(config.d_model, config.n_extra) if config.n_extra else None
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        band_sum = F.one_hot(torch.from_numpy(layout.band), N_BANDS).float()
        self.register_buffer("band_sum", band_sum, persistent=False)
        weights = torch.from_numpy(segment_token_weights(config.token_samples)).float()
        self.register_buffer("segment_weights", weights, persistent=False)
        self.segment_hop = (RECIPE.nperseg - RECIPE.noverlap) // config.token_samples

    @classmethod
    def matched(cls, config: FrontEndConfig | None = None) -> RawFrontEnd:
        """A fresh front end whose filterbank reproduces the Welch recipe (the distillation's start)."""
        front_end = cls(config)
        taps = matched_filterbank(subband_layout(front_end.config.bins_per_subband), front_end.config.n_taps)
        with torch.no_grad():
            # conv1d correlates: flip so that output[t] = sum_j taps[j] x[t - j]
            front_end.filterbank.weight.copy_(torch.from_numpy(taps[:, ::-1].copy()).float().unsqueeze(1))
        return front_end

    @property
    def n_subbands(self) -> int:
        return self.filterbank.out_channels

    @property
    def n_outputs(self) -> int:
        return self.config.n_outputs

    def forward(self, samples: Tensor) -> Tensor:
        """``(streams, n_samples)`` from an empty history -> ``(streams, n_samples // epoch, n_outputs)``;
        a trailing partial epoch gives nothing."""
        self._check(samples)
        cfg = self.config
        streams, n_samples = samples.shape
        power = self._filtered_power(F.pad(samples, (cfg.n_taps - 1, 0)))
        n_tokens = n_samples // cfg.token_samples
        tokens = power[..., : n_tokens * cfg.token_samples]
        tokens = tokens.reshape(streams, self.n_subbands, n_tokens, cfg.token_samples).mean(-1)
        path = self._path_outputs(self.backbone(self._path_inputs(tokens)))
        n_epochs, per_epoch = n_samples // cfg.epoch_samples, cfg.tokens_per_epoch
        by_epoch = tokens[..., : n_epochs * per_epoch].reshape(streams, self.n_subbands, n_epochs, per_epoch)
        path_mean = path[:, : n_epochs * per_epoch].reshape(streams, n_epochs, per_epoch, -1).mean(2)
        return self._readout(by_epoch.transpose(1, 2), path_mean)

    def init_state(self, batch: int = 1) -> FrontEndState:
        weight = self.filterbank.weight
        zeros = {"device": weight.device, "dtype": torch.float32}
        return FrontEndState(
            history=torch.zeros(batch, self.config.n_taps - 1, **zeros),
            patch_sum=torch.zeros(batch, self.n_subbands, **zeros),
            tokens=torch.zeros(batch, self.n_subbands, self.config.tokens_per_epoch, **zeros),
            path_sum=torch.zeros(batch, N_BANDS + self.config.n_extra, **zeros),
            mamba=self.backbone.init_state(batch),
            phase=0,
        )

    @torch.no_grad()
    def step(self, samples: Tensor, state: FrontEndState) -> tuple[Tensor, FrontEndState]:
        """Continue after ``state`` with ``(streams, n)`` new samples, any n >= 0: features of the epochs
        they complete ``(streams, k, n_outputs)`` and the next state (``state`` itself is not modified).
        Any chunking gives :meth:`forward`'s features to float rounding."""
        self._check(samples)
        cfg = self.config
        if not samples.shape[-1]:
            return samples.new_zeros(len(samples), 0, self.n_outputs), state
        seq = torch.cat([state.history, samples.to(state.history.dtype)], dim=-1)
        history = seq[:, seq.shape[-1] - (cfg.n_taps - 1) :].clone()
        tokens, patch_sum = self._tokens(self._filtered_power(seq), state)
        mamba, path = state.mamba, state.path_sum.new_zeros(len(samples), 0, state.path_sum.shape[-1])
        if tokens.shape[-1]:
            hidden, mamba = self.backbone.step(self._path_inputs(tokens), mamba)
            path = self._path_outputs(hidden)
        buffer, path_sum = state.tokens.clone(), state.path_sum.clone()
        filled, done, outputs = state.phase // cfg.token_samples, 0, []
        while done < tokens.shape[-1]:
            take = min(tokens.shape[-1] - done, cfg.tokens_per_epoch - filled)
            buffer[..., filled : filled + take] = tokens[..., done : done + take]
            path_sum += path[:, done : done + take].sum(1)
            filled, done = filled + take, done + take
            if filled == cfg.tokens_per_epoch:
                outputs.append(self._readout(buffer, path_sum / cfg.tokens_per_epoch))
                buffer.zero_()
                path_sum.zero_()
                filled = 0
        features = torch.stack(outputs, 1) if outputs else samples.new_zeros(len(samples), 0, self.n_outputs)
        phase = (state.phase + samples.shape[-1]) % cfg.epoch_samples
        return features, FrontEndState(history, patch_sum, buffer, path_sum, mamba, phase)

    @torch.no_grad()
    def peek(self, state: FrontEndState) -> Tensor | None:
        """Features of the epoch in progress from its tokens so far ``(streams, n_outputs)``, or None before
        its first 4-s segment is complete; the state is not moved."""
        filled = state.phase // self.config.token_samples
        if filled < len(self.segment_weights):
            return None
        return self._readout(state.tokens[..., :filled], state.path_sum / filled)

    def load_state(self, record: Mapping[str, Any]) -> FrontEndState:
        """A saved :meth:`FrontEndState.to_dict`, checked against this front end (ResumeError if foreign)."""
        loaded = FrontEndState.from_dict(record)
        expected = self.init_state(loaded.batch_size)
        if any(getattr(loaded, n).shape != getattr(expected, n).shape for n in _TENSORS) or not (
            0 <= loaded.phase < self.config.epoch_samples
        ):
            raise ResumeError(
                "the saved raw front-end state was made by another front end; resume with the model of "
                "that night or start without --resume."
            )
        mamba = self.backbone.load_state(loaded.mamba.to_dict())
        return FrontEndState(
            loaded.history, loaded.patch_sum, loaded.tokens, loaded.path_sum, mamba, loaded.phase
        )

    def _check(self, samples: Tensor) -> None:
        if samples.ndim != 2:
            raise ModelError(
                f"the raw front end takes samples (streams, n_samples), got {tuple(samples.shape)}."
            )

    def _filtered_power(self, seq: Tensor) -> Tensor:
        """Squared filterbank output of each full window: (streams, L) -> (streams, F, L - K + 1)."""
        weight = self.filterbank.weight
        return F.conv1d(seq.to(weight.dtype).unsqueeze(1), weight).square()

    def _tokens(self, power: Tensor, state: FrontEndState) -> tuple[Tensor, Tensor]:
        """The tokens ``power`` (streams, F, n) completes after the state's token in progress, and the
        squared outputs of the next token in progress."""
        size = self.config.token_samples
        need = size - state.phase % size
        if power.shape[-1] < need:
            return power.new_zeros(*power.shape[:2], 0), state.patch_sum + power.sum(-1)
        head = state.patch_sum + power[..., :need].sum(-1)
        rest = power[..., need:]
        whole = rest.shape[-1] // size * size
        body = rest[..., :whole].reshape(*rest.shape[:2], -1, size).sum(-1)
        tokens = torch.cat([head.unsqueeze(-1), body], dim=-1) / size
        return tokens, rest[..., whole:].sum(-1)

    def _path_inputs(self, tokens: Tensor) -> Tensor:
        """Tokens (streams, F, n) -> Mamba inputs (streams, n, d_model) from their relative log spectrum."""
        total = tokens.sum(1, keepdim=True) + REL_EPS_UV2 * self.n_subbands
        return self.embed(torch.log((tokens + REL_EPS_UV2) / total).transpose(1, 2))

    def _path_outputs(self, hidden: Tensor) -> Tensor:
        if self.extra is None:
            return self.correction(hidden)
        return torch.cat([self.correction(hidden), self.extra(hidden)], dim=-1)

    def _readout(self, tokens: Tensor, path_mean: Tensor) -> Tensor:
        """An epoch's tokens ``(..., F, n_tokens)`` and path mean ``(..., 5 + n_extra)`` -> features."""
        size = len(self.segment_weights)
        segments = tokens.unfold(-1, size, self.segment_hop) @ self.segment_weights  # (..., F, n_segments)
        ordered = segments.sort(dim=-1).values
        middle = (ordered.shape[-1] - 1) / 2
        median = (ordered[..., int(middle)] + ordered[..., int(middle + 0.5)]) / 2
        powers = (median * self.subband_log_gain.exp()) @ self.band_sum
        logs = torch.log(powers + LOG_EPS) + path_mean[..., :N_BANDS]
        relative = torch.softmax(logs, dim=-1)
        return torch.cat([logs, relative, path_mean[..., N_BANDS:]], dim=-1)
