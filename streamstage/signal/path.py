"""The streaming signal path: raw µV chunks in, filtered 30-s epochs at the model rate out.

Order: NaN hold + missing mask -> causal band-pass at the input rate -> resample to the model rate ->
epoch buffer. Quality measures run on the raw input alongside and are attached to each epoch when it is
emitted. Every stage is chunk-invariant and restorable, so a live stream, a file replay and a resumed
night all produce the same epochs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamstage.errors import ChannelError, ConfigError, ResumeError, StreamstageError
from streamstage.signal._state import check_matches, restored_value
from streamstage.signal.bandpass import Bandpass, missing_mask
from streamstage.signal.epochs import EpochBuffer, EpochSamples
from streamstage.signal.quality import EpochQuality, QualityThresholds, worst_quality
from streamstage.signal.quality_meter import QualityMeter
from streamstage.signal.resample import Resampler
from streamstage.signal.trace import TraceRing

MIN_SFREQ_HZ = 50.0
MAX_SFREQ_HZ = 1000.0
STATE_VERSION = 1


@dataclass(frozen=True)
class SignalConfig:
    """Settings of the signal path; the defaults match the features the model was trained on."""

    model_sfreq: float = 100.0
    epoch_s: float = 30.0
    l_freq_hz: float = 0.5
    h_freq_hz: float = 30.0
    filter_order: int = 4
    resampler_half_width: int = 16
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    trace_s: float = 10.0

    def __post_init__(self) -> None:
        epoch_len = self.epoch_s * self.model_sfreq
        if epoch_len <= 0 or epoch_len != round(epoch_len):
            raise ConfigError(
                f"epoch_s={self.epoch_s} at model_sfreq={self.model_sfreq} Hz is not a whole number of "
                "samples; choose values whose product is a positive integer."
            )
        if self.filter_order < 1 or self.resampler_half_width < 2 or self.trace_s <= 0:
            raise ConfigError(
                "filter_order must be >= 1, resampler_half_width >= 2 and trace_s > 0; fix the settings."
            )

    @property
    def epoch_len(self) -> int:
        return round(self.epoch_s * self.model_sfreq)


@dataclass(frozen=True, eq=False)
class Epoch:
    """One filtered epoch at the model rate.

    ``data_uv`` and ``missing`` are ``(n_channels, epoch_len)``; ``missing`` marks samples the hold
    invented. ``quality`` is the worst channel's (see :func:`~streamstage.signal.quality.worst_quality`);
    ``channel_quality`` has every channel's.
    """

    index: int
    start_s: float
    data_uv: np.ndarray
    missing: np.ndarray
    quality: EpochQuality
    channel_quality: tuple[EpochQuality, ...]


class SignalPath:
    """Feed raw ``(n_samples, n_channels)`` µV chunks (after derivation) with :meth:`push`; get epochs.

    ``clip_range_uv`` is the channels' physical range if known (e.g. from an EDF header). Epochs come out
    ``delay_s`` after their end (the resampler's look-ahead); nothing is kept beyond one epoch and the trace.
    A restored state brings back its own ``start_time_s``, so a resumed night keeps its timeline.
    """

    def __init__(
        self,
        sfreq_in: float,
        n_channels: int,
        config: SignalConfig | None = None,
        start_time_s: float = 0.0,
        clip_range_uv: tuple[float, float] | None = None,
    ) -> None:
        if not MIN_SFREQ_HZ <= sfreq_in <= MAX_SFREQ_HZ:
            raise StreamstageError(
                f"sampling rate {sfreq_in} Hz is outside the supported {MIN_SFREQ_HZ:g}-{MAX_SFREQ_HZ:g} Hz; "
                "resample the source or check its declared rate."
            )
        if n_channels < 1:
            raise ChannelError("the signal path needs at least one channel; select a channel to stage.")
        self.config = config or SignalConfig()
        self.sfreq_in = float(sfreq_in)
        self.n_channels = n_channels
        self.start_time_s = start_time_s
        self.clip_range_uv = (
            None if clip_range_uv is None else (float(clip_range_uv[0]), float(clip_range_uv[1]))
        )
        cfg = self.config
        self._bandpass = Bandpass(sfreq_in, n_channels, cfg.l_freq_hz, cfg.h_freq_hz, cfg.filter_order)
        self._resampler = Resampler(sfreq_in, cfg.model_sfreq, n_channels, cfg.resampler_half_width)
        self._quality = QualityMeter(
            sfreq_in,
            cfg.epoch_len * self._resampler.ratio,
            n_channels,
            cfg.quality,
            None if self.clip_range_uv is None else [self.clip_range_uv] * n_channels,
        )
        self._epochs = EpochBuffer(n_channels, cfg.epoch_len)
        self._trace = TraceRing(round(cfg.trace_s * cfg.model_sfreq))
        self._pending: deque[list[EpochQuality]] = deque()
        self._n_samples_in = 0

    @property
    def n_samples_in(self) -> int:
        return self._n_samples_in

    @property
    def delay_s(self) -> float:
        """How long after an epoch's last input sample the epoch is emitted (resampler look-ahead)."""
        return 0.0 if self._resampler.passthrough else self._resampler.half_width_in / self.sfreq_in

    @property
    def trace_uv(self) -> np.ndarray:
        """The last ``trace_s`` seconds of filtered channel-0 samples at the model rate, oldest first."""
        return self._trace.values

    def push(self, chunk_uv: np.ndarray, missing: np.ndarray | None = None) -> list[Epoch]:
        """Process one chunk; returns the epochs it completed (usually none, sometimes one)."""
        return self.push_resampled(chunk_uv, missing)[1]

    def push_resampled(
        self, chunk_uv: np.ndarray, missing: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[Epoch]]:
        """:meth:`push` that also returns the chunk's filtered samples at the model rate ``(n, n_channels)``,
        exactly what the epoch buffer received: for a model that reads the samples as they come."""
        samples, mask = self._checked(chunk_uv, missing)
        if not len(samples):
            return np.zeros((0, self.n_channels)), []
        self._pending.extend(self._quality.push(samples, mask))
        filtered, mask = self._bandpass.push(samples, mask)
        resampled, resampled_missing = self._resampler.push(filtered, mask)
        self._trace.push(resampled[:, 0])
        self._n_samples_in += len(samples)
        return resampled, [self._epoch(c) for c in self._epochs.push(resampled, resampled_missing)]

    def _epoch(self, complete: EpochSamples) -> Epoch:
        channel_quality = tuple(self._pending.popleft())
        return Epoch(
            index=complete.index,
            start_s=self.start_time_s + complete.index * self.config.epoch_s,
            data_uv=complete.data,
            missing=complete.missing,
            quality=worst_quality(channel_quality),
            channel_quality=channel_quality,
        )

    def _checked(self, chunk_uv: np.ndarray, missing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        samples = np.asarray(chunk_uv, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != self.n_channels:
            raise ChannelError(
                f"a chunk of shape {samples.shape} does not fit this signal path of {self.n_channels} "
                f"channel(s); push arrays of shape (n_samples, {self.n_channels})."
            )
        if missing is not None and np.shape(missing) != samples.shape:
            raise ChannelError(
                f"the missing mask has shape {np.shape(missing)} but the chunk {samples.shape}; "
                "pass one flag per sample."
            )
        return samples, missing_mask(samples, missing)

    def _settings(self) -> str:
        return repr((self.sfreq_in, self.n_channels, self.config, self.clip_range_uv))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: numpy arrays, scalars, strings, lists, dicts."""
        return {
            "version": STATE_VERSION,
            "settings": self._settings(),
            "n_samples_in": self._n_samples_in,
            "start_time_s": self.start_time_s,
            "bandpass": self._bandpass.state_dict(),
            "resampler": self._resampler.state_dict(),
            "quality": self._quality.state_dict(),
            "pending": [[quality.to_dict() for quality in epoch] for epoch in self._pending],
            "epochs": self._epochs.state_dict(),
            "trace": self._trace.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_matches(state, "version", STATE_VERSION)
        check_matches(state, "settings", self._settings())
        try:
            pending = deque([[EpochQuality.from_dict(q) for q in epoch] for epoch in state["pending"]])
            parts = [state[key] for key in ("bandpass", "resampler", "quality", "epochs", "trace")]
        except (KeyError, TypeError) as error:
            raise ResumeError(f"saved signal state is damaged ({error}); start a new night.") from error
        for part, saved in zip(
            (self._bandpass, self._resampler, self._quality, self._epochs, self._trace), parts, strict=True
        ):
            part.load_state_dict(saved)
        self._pending = pending
        self._n_samples_in = restored_value(state, "n_samples_in", int)
        self.start_time_s = restored_value(state, "start_time_s", float)
