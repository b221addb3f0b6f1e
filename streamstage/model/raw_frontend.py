"""The raw-signal front end: the 100-Hz filtered samples of the signal path in, each epoch's features out.

Per sample stream (one channel of one night), in order:

1. a strided causal convolution over 4-s patches every 2 s (``spectral_conv``, kernel 400, stride 200: the
   downsampling), initialised to each 0.25-Hz bin's windowed, detrended cosine and sine
   (:mod:`.welch_filters`) and trainable; squared and summed in pairs: a patch's power spectrum, one token;
2. the tokens' relative log spectrum (gain-free) through Mamba layers (``backbone``, mamba-ssm names) to a
   correction of each band's log power and ``n_extra`` learned features: what band powers throw away
   (spindles, K-complexes, eye movements) has a way in;
3. a per-epoch readout: the median over the epoch's 14 patches per bin (``bin_log_gain`` applied), the
   trapezoid over each band's bins, then log and relative powers as
   :func:`~streamstage.features.epoch_features` computes them, with the Mamba path's mean over the epoch
   added to the logs and its extras appended.

The patches sit on the Welch recipe's grid (every 200 samples from the stream's start, the first one half
before it, on zeros), so a fresh front end, whose correction head is zero, gives the recipe's features to
float rounding: the deterministic distillation target, met by construction and measured on held-out EEG.

``forward`` runs whole sequences from an empty history (training); ``init_state`` / ``step`` continue over
any chunking with a state of fixed size: the last 399 samples, the epoch's patch spectra so far, the Mamba
path's sum over them and the Mamba caches. The tokens go through the Mamba in fixed groups of
``mamba_group_tokens`` on the patch grid (5: every 10 s), one call a group instead of one a patch (the
per-call cost dominates a 16-wide model), independent of chunking and of peeks. ``peek`` reads the epoch
in progress without moving the state (the provisional stage).
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
from streamstage.model.welch_filters import (
    band_weights,
    median_bias,
    periodogram_kernels,
    recipe_bins,
    segments_per_epoch,
)

REL_EPS = 1e-6
"""Added to every bin's share of a patch's power before its log, so a flat signal reads as uniform."""
PATCH = RECIPE.nperseg
HOP = RECIPE.nperseg - RECIPE.noverlap


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything needed to rebuild a :class:`RawFrontEnd`; stored in its checkpoint."""

    d_model: int = 16
    n_layers: int = 2
    d_state: int = 8
    n_extra: int = 4
    epoch_samples: int = 3000
    mamba_group_tokens: int = 5

    def __post_init__(self) -> None:
        if self.n_extra < 0:
            raise ConfigError(f"n_extra must be >= 0, got {self.n_extra}.")
        segments_per_epoch(self.epoch_samples)  # raises unless the epoch is whole hops
        if self.mamba_group_tokens < 1 or self.tokens_per_epoch % self.mamba_group_tokens:
            raise ConfigError(
                f"mamba_group_tokens={self.mamba_group_tokens} must divide the epoch's "
                f"{self.tokens_per_epoch} patches."
            )

    @property
    def tokens_per_epoch(self) -> int:
        """Patches ending in an epoch, the first straddling its start."""
        return self.epoch_samples // HOP

    @property
    def patches_per_epoch(self) -> int:
        """Patches wholly inside an epoch: the ones its median reads."""
        return segments_per_epoch(self.epoch_samples)

    @property
    def n_outputs(self) -> int:
        return N_FEATURES + self.n_extra

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FrontEndConfig:
        return cls(**{f.name: int(record[f.name]) for f in fields(cls) if f.name in record})


_TENSORS = ("history", "tokens", "path_sum")


@dataclass(frozen=True)
class FrontEndState:
    """What the front end carries between chunks for ``batch`` sample streams; fixed size.

    ``history`` (batch, 399): the last samples (zeros before the stream's start); ``tokens`` (batch,
    n_bins, 15): the power spectra of the patches ending in the epoch so far, in order (the first straddles
    its start; zeros beyond); ``path_sum`` (batch,
    5 + n_extra): the Mamba path's outputs summed over them; ``mamba``: its caches; ``phase``: samples into
    the epoch in progress.
    """

    history: Tensor
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
        n_bins = len(recipe_bins())
        self.spectral_conv = nn.Conv1d(1, 2 * n_bins, PATCH, stride=HOP, bias=False)
        with torch.no_grad():
            self.spectral_conv.weight.copy_(torch.from_numpy(periodogram_kernels()).float().unsqueeze(1))
        self.bin_log_gain = nn.Parameter(torch.zeros(n_bins))
        self.embed = nn.Linear(n_bins, config.d_model)
        self.backbone = MambaStack(config.d_model, config.n_layers, d_state=config.d_state)
        self.correction = nn.Linear(config.d_model, N_BANDS)
        self.extra = nn.Linear(config.d_model, config.n_extra) if config.n_extra else None
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        self.register_buffer("band_weights", torch.from_numpy(band_weights()).float(), persistent=False)

    @property
    def n_bins(self) -> int:
        return self.bin_log_gain.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.config.n_outputs

    def forward(self, samples: Tensor) -> Tensor:
        """``(streams, n_samples)`` from an empty history -> ``(streams, n_samples // epoch, n_outputs)``;
        a trailing partial epoch gives nothing."""
        self._check(samples)
        n_samples = samples.shape[-1]
        spectra = self._spectra(F.pad(samples, (PATCH - HOP, 0)))  # (streams, n_bins, n_patches)
        path = self._path_outputs(self.backbone(self._path_inputs(spectra)))
        n_epochs, per_epoch = n_samples // self.config.epoch_samples, self.config.epoch_samples // HOP
        # patch p ends at sample HOP (p + 1); epoch e reads those ending in [e epoch + PATCH, (e + 1) epoch]
        inside = torch.arange(n_epochs)[:, None] * per_epoch + torch.arange(1, per_epoch)[None, :]
        by_epoch = spectra[..., inside].transpose(1, 2)  # (streams, n_epochs, n_bins, 14)
        return self._readout(by_epoch, path[:, inside].mean(2))

    def init_state(self, batch: int = 1) -> FrontEndState:
        zeros = {"device": self.bin_log_gain.device, "dtype": torch.float32}
        return FrontEndState(
            history=torch.zeros(batch, PATCH - 1, **zeros),
            tokens=torch.zeros(batch, self.n_bins, self.config.tokens_per_epoch, **zeros),
            path_sum=torch.zeros(batch, N_BANDS + self.config.n_extra, **zeros),
            mamba=self.backbone.init_state(batch),
            phase=0,
        )

    @torch.no_grad()
    def step(self, samples: Tensor, state: FrontEndState) -> tuple[Tensor, FrontEndState]:
        """Continue after ``state`` with ``(streams, n)`` new samples, any n >= 0: features of the epochs
        they complete ``(streams, k, n_outputs)`` and the next state (``state`` itself is not modified).
        Any chunking gives the same features, bit for bit, and :meth:`forward`'s to float rounding."""
        self._check(samples)
        n_new = samples.shape[-1]
        seq = torch.cat([state.history, samples.to(state.history.dtype)], dim=-1)
        history = seq[:, seq.shape[-1] - (PATCH - 1) :].clone()
        phase = (state.phase + n_new) % self.config.epoch_samples
        first_end = HOP - state.phase % HOP  # new samples up to the next patch's last one
        if n_new < first_end:  # no patch completes (most live chunks): only the history moves
            empty = seq.new_zeros(len(seq), 0, self.n_outputs)
            return empty, FrontEndState(history, state.tokens, state.path_sum, state.mamba, phase)
        spectra = self._patch_spectra(seq[:, first_end - 1 :])
        tokens, path_sum, mamba, outputs = state.tokens.clone(), state.path_sum.clone(), state.mamba, []
        group = self.config.mamba_group_tokens
        end = state.phase + first_end  # epoch position of each new patch's end, in turn
        for patch in range(spectra.shape[-1]):
            slot = end // HOP - 1
            tokens[..., slot] = spectra[..., patch]
            if (slot + 1) % group == 0:
                path, mamba = self._group_path(tokens, slot + 1 - group, slot + 1, mamba)
                path_sum += path
            if end == self.config.epoch_samples:
                outputs.append(self._readout(tokens[..., 1:], path_sum / self.config.patches_per_epoch))
                tokens.zero_()
                path_sum.zero_()
                end = 0
            end += HOP
        features = torch.stack(outputs, 1) if outputs else seq.new_zeros(len(seq), 0, self.n_outputs)
        return features, FrontEndState(history, tokens, path_sum, mamba, phase)

    @torch.no_grad()
    def peek(self, state: FrontEndState) -> Tensor | None:
        """Features of the epoch in progress from its patches so far ``(streams, n_outputs)``, or None
        before one lies wholly inside it (its first 4 s); the state is not moved."""
        received = state.phase // HOP
        if received < 2:  # no patch wholly inside the epoch yet
            return None
        done = received // self.config.mamba_group_tokens * self.config.mamba_group_tokens
        path_sum = state.path_sum
        if done < received:  # the group in progress, through a copy of the caches
            path_sum = path_sum + self._group_path(state.tokens, done, received, state.mamba)[0]
        return self._readout(state.tokens[..., 1:received], path_sum / (received - 1))

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
        return FrontEndState(loaded.history, loaded.tokens, loaded.path_sum, mamba, loaded.phase)

    def _check(self, samples: Tensor) -> None:
        if samples.ndim != 2:
            raise ModelError(
                f"the raw front end takes samples (streams, n_samples), got {tuple(samples.shape)}."
            )

    def _spectra(self, seq: Tensor) -> Tensor:
        """Power spectra ``(streams, n_bins, n_patches)`` of the whole patches of ``seq`` (streams, L) from
        its first sample on, every ``HOP``."""
        weight = self.spectral_conv.weight
        if seq.shape[-1] < PATCH:
            return seq.new_zeros(len(seq), self.n_bins, 0)
        parts = F.conv1d(seq.to(weight.dtype).unsqueeze(1), weight, stride=HOP).square()
        return parts[:, : self.n_bins] + parts[:, self.n_bins :]

    def _patch_spectra(self, seq: Tensor) -> Tensor:
        """:meth:`_spectra`, one patch at a time: each patch's arithmetic is then the same whatever chunk
        brought it, so stepping is bitwise chunk-invariant (a convolution over several patches, or a
        product with a strided window, rounds differently from one over a single contiguous patch)."""
        weight = self.spectral_conv.weight[:, 0].T  # (PATCH, 2 n_bins)
        windows = seq.to(weight.dtype).unfold(-1, PATCH, HOP)  # (streams, n_patches, PATCH)
        parts = torch.stack(
            [windows[:, p].contiguous() @ weight for p in range(windows.shape[1])], -1
        ).square()
        return parts[:, : self.n_bins] + parts[:, self.n_bins :]

    def _group_path(
        self, tokens: Tensor, first: int, stop: int, mamba: StackState
    ) -> tuple[Tensor, StackState]:
        """Epoch slots ``first:stop`` through the Mamba after ``mamba``: the path outputs of those inside the
        epoch (slot 0 straddles its start), summed, and the caches after them."""
        hidden, mamba = self.backbone.step(self._path_inputs(tokens[..., first:stop]), mamba)
        return self._path_outputs(hidden)[:, max(0, 1 - first) :].sum(1), mamba

    def _path_inputs(self, spectra: Tensor) -> Tensor:
        """Spectra (streams, n_bins, n) -> Mamba inputs (streams, n, d_model) from their relative log
        spectrum."""
        share = spectra / (spectra.sum(1, keepdim=True) + REL_EPS)
        return self.embed(torch.log(share + REL_EPS).transpose(1, 2))

    def _path_outputs(self, hidden: Tensor) -> Tensor:
        if self.extra is None:
            return self.correction(hidden)
        return torch.cat([self.correction(hidden), self.extra(hidden)], dim=-1)

    def _readout(self, spectra: Tensor, path_mean: Tensor) -> Tensor:
        """An epoch's patch spectra ``(..., n_bins, n_patches)`` and path mean ``(..., 5 + n_extra)`` ->
        features: the recipe's median over patches per bin and trapezoid per band."""
        n_patches = spectra.shape[-1]
        ordered = spectra.sort(dim=-1).values
        median = (ordered[..., (n_patches - 1) // 2] + ordered[..., n_patches // 2]) / 2
        psd = median * (self.bin_log_gain.exp() / median_bias(n_patches))
        powers = psd @ self.band_weights
        correction = path_mean[..., :N_BANDS]
        logs = torch.log(powers + LOG_EPS) + correction
        corrected = powers * correction.exp()
        total = corrected.sum(-1, keepdim=True)
        # as epoch_features: no relative power of a flat epoch (nothing in any band)
        relative = torch.where(total > LOG_EPS, corrected / total.clamp_min(LOG_EPS), torch.zeros_like(total))
        return torch.cat([logs, relative, path_mean[..., N_BANDS:]], dim=-1)
