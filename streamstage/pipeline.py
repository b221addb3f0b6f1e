"""The one staging pipeline: raw samples in, :class:`~streamstage.records.StagedEpoch` out.

Live LSL, EDF replay, offline staging of a file and evaluation all feed this same object, so what is
measured offline is what runs at night. Per epoch the work is constant: one Welch PSD, one normaliser
update and one Mamba step; the state (filter, resampler, epoch buffer, normaliser mean, SSM state and conv
cache) has a fixed size however long the night.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from streamstage.epoch_stager import EpochStager
from streamstage.errors import ResumeError
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel
from streamstage.records import UNKNOWN, StagedEpoch
from streamstage.signal.path import Epoch, SignalConfig, SignalPath


class StagingPipeline:
    """Signal path + features + model for one stream of ``n_channels`` derived channels (in µV)."""

    def __init__(
        self,
        model: StagingModel,
        sfreq_in: float,
        start_time_s: float = 0.0,
        signal_config: SignalConfig | None = None,
        clip_range_uv: tuple[float, float] | None = None,
    ) -> None:
        self.model = model
        self.signal = SignalPath(
            sfreq_in,
            len(model.channels),
            config=signal_config or SignalConfig(),
            start_time_s=start_time_s,
            clip_range_uv=clip_range_uv,
        )
        self.stager = EpochStager(model)
        self.n_epochs = 0

    @property
    def sfreq_in(self) -> float:
        return self.signal.sfreq_in

    def push(self, chunk_uv: np.ndarray, missing: np.ndarray | None = None) -> list[StagedEpoch]:
        """Feed samples ``(n_samples, n_channels)`` in µV; returns the epochs this chunk completed."""
        return [self._stage(epoch) for epoch in self.signal.push(chunk_uv, missing)]

    def finish(self) -> list[StagedEpoch]:
        """At the end of a recording, release the epoch still held back by the resampler's look-ahead.

        The look-ahead is filled with held (missing-marked) samples, so an epoch that ended exactly with the
        recording is staged rather than lost; a partial epoch stays unstaged.
        """
        n_pad = int(np.ceil(self.signal.delay_s * self.sfreq_in)) + 1
        padding = np.full((n_pad, self.signal.n_channels), np.nan)
        return self.push(padding, np.ones_like(padding, dtype=bool))

    def _stage(self, epoch: Epoch) -> StagedEpoch:
        started = time.perf_counter()
        probs = self.stager.push(epoch_features(epoch.data_uv), update_normalizer=epoch.quality.ok)
        self.n_epochs += 1
        stage = UNKNOWN if epoch.quality.flag == "missing" else int(np.argmax(probs))  # no data, no stage
        return StagedEpoch(
            index=epoch.index,
            start_s=epoch.start_s,
            stage=stage,
            probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
            quality=epoch.quality.flag,
            latency_s=time.perf_counter() - started,
            duration_s=self.signal.config.epoch_s,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model.model_id,
            "signal": self.signal.state_dict(),
            "stager": self.stager.state_dict(),
            "n_epochs": self.n_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a saved state; one saved with another model is refused (its hidden state is foreign)."""
        if state.get("model_id") != self.model.model_id:
            raise ResumeError(
                "the saved night was staged with another model; resume it with the same --model "
                f"(saved model id {state.get('model_id')}, this one {self.model.model_id})."
            )
        self.signal.load_state_dict(state["signal"])
        self.stager.load_state_dict(state["stager"])
        self.n_epochs = int(state["n_epochs"])
