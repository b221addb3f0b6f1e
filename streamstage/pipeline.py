"""The one staging pipeline: raw samples in, :class:`~streamstage.records.StagedEpoch` out.

Live LSL, EDF replay, offline staging of a file and evaluation all feed this same object, so what is
measured offline is what runs at night. Per epoch the work is constant: one Welch PSD (a feature model) or
the front end stepped over the epoch's samples as they come (a raw model), one normaliser update and one
Mamba step; the state (filter, resampler, epoch buffer, front end, normaliser mean, SSM state and conv
cache) has a fixed size however long the night. A raw model also gives a provisional stage of the epoch in
progress every ``provisional_every_s`` seconds (:meth:`StagingPipeline.take_provisional`, after a push), a
peek that leaves the committed state as it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from streamstage.epoch_stager import EpochStager
from streamstage.errors import ResumeError
from streamstage.features import epoch_features
from streamstage.model.checkpoint import StagingModel
from streamstage.model.raw_model import RawFeatureStream
from streamstage.records import UNKNOWN, ProvisionalStage, StagedEpoch
from streamstage.signal.clipping import with_source_clipping
from streamstage.signal.path import Epoch, SignalConfig, SignalPath

PROVISIONAL_EVERY_S = 5.0
"""Default spacing of a raw model's provisional stages within the epoch in progress."""


class EpochModel(Protocol):
    """What the pipeline asks of the model, once per epoch: what :class:`EpochStager` does for one stream."""

    def push(self, features: np.ndarray, update_normalizer: bool = True) -> np.ndarray:
        """One epoch's features ``(n_channels, n_features)`` -> stage probabilities ``(5,)``."""
        ...

    def peek(self, features: np.ndarray) -> np.ndarray:
        """The probabilities ``features`` would get as the next epoch, with nothing moved (a provisional
        stage of the epoch in progress)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class StagingPipeline:
    """Signal path + features (or the raw front end) + model for one stream of derived channels (in µV).

    ``provisional_every_s`` (a raw model only; None: never) spaces the provisional stages.
    """

    def __init__(
        self,
        model: StagingModel,
        sfreq_in: float,
        start_time_s: float = 0.0,
        signal_config: SignalConfig | None = None,
        source_clipped: Callable[[int], bool] | None = None,
        provisional_every_s: float | None = PROVISIONAL_EVERY_S,
        stager: EpochModel | None = None,
    ) -> None:
        self.model = model
        self.signal = SignalPath(
            sfreq_in, len(model.channels), config=signal_config or SignalConfig(), start_time_s=start_time_s
        )
        self.source_clipped = source_clipped
        """Whether epoch ``i`` had a clipped source channel (the intake's verdict, known before the epoch
        is staged, so a clipped epoch never moves the normaliser)."""
        self.stager: EpochModel = stager or EpochStager(model)
        """The model step: this stream's own, or its seat in a batch of streams stepped together (a lab)."""
        self.n_epochs = 0
        channels = len(model.channels)
        self.raw = None if model.front_end is None else RawFeatureStream(model.front_end, channels)
        every = provisional_every_s if self.raw is not None else None
        self._provisional_every = None if not every else round(every * self.signal.config.model_sfreq)
        self._provisional_mark = 0
        self._peek_due = False

    @property
    def sfreq_in(self) -> float:
        return self.signal.sfreq_in

    def push(self, chunk_uv: np.ndarray, missing: np.ndarray | None = None) -> list[StagedEpoch]:
        """Feed samples ``(n_samples, n_channels)`` in µV; returns the epochs this chunk completed."""
        if self.raw is None:
            return [self._stage(e, epoch_features(e.data_uv)) for e in self.signal.push(chunk_uv, missing)]
        resampled, epochs = self.signal.push_resampled(chunk_uv, missing)
        features = self.raw.push(resampled)
        staged = [self._stage(epoch, f) for epoch, f in zip(epochs, features, strict=True)]
        self._note_provisional(bool(epochs))
        return staged

    def take_provisional(self) -> list[ProvisionalStage]:
        """The provisional stage of the epoch in progress if another ``provisional_every_s`` of it has
        passed since the last call (always empty for a feature model).

        Taken right after each :meth:`push`, as a live night does, it gives one every few seconds; the peek
        is computed here, so staging that never asks (a file, an evaluation) pays nothing for it.
        """
        if not self._peek_due or self.raw is None:
            return []
        self._peek_due = False
        features = self.raw.peek()
        if features is None:
            return []
        probs = self.stager.peek(features)
        epoch_s = self.signal.config.epoch_s
        peek = ProvisionalStage(
            index=self.n_epochs,
            start_s=self.signal.start_time_s + self.n_epochs * epoch_s,
            elapsed_s=self.raw.phase / self.signal.config.model_sfreq,
            stage=int(np.argmax(probs)),
            probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
        )
        return [peek]

    def _note_provisional(self, epoch_ended: bool) -> None:
        """A peek is due when the epoch in progress has passed another ``provisional_every_s``."""
        if self._provisional_every is None or self.raw is None:
            return
        if epoch_ended:
            self._provisional_mark = 0
            self._peek_due = False  # the peek was of an epoch that is final now
        mark = self.raw.phase // self._provisional_every
        if mark > self._provisional_mark:
            self._provisional_mark = mark
            self._peek_due = True

    def finish(self) -> list[StagedEpoch]:
        """At the end of a recording, release the epoch still held back by the resampler's look-ahead.

        The look-ahead is filled with held (missing-marked) samples, so an epoch that ended exactly with the
        recording is staged rather than lost; a partial epoch stays unstaged.
        """
        n_pad = int(np.ceil(self.signal.delay_s * self.sfreq_in)) + 1
        padding = np.full((n_pad, self.signal.n_channels), np.nan)
        return self.push(padding, np.ones_like(padding, dtype=bool))

    def _stage(self, epoch: Epoch, features: np.ndarray) -> StagedEpoch:
        started = time.perf_counter()
        if self.source_clipped is not None:
            epoch = with_source_clipping(epoch, self.source_clipped(epoch.index))
        flag = epoch.quality.flag
        probs = self.stager.push(features, update_normalizer=flag == "good")
        self.n_epochs += 1
        stage = UNKNOWN if flag == "missing" else int(np.argmax(probs))  # no data, no stage
        return StagedEpoch(
            index=epoch.index,
            start_s=epoch.start_s,
            stage=stage,
            probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
            quality=flag,
            latency_s=time.perf_counter() - started,
            duration_s=self.signal.config.epoch_s,
        )

    def state_dict(self) -> dict[str, Any]:
        state = {
            "model_id": self.model.model_id,
            "signal": self.signal.state_dict(),
            "stager": self.stager.state_dict(),
            "n_epochs": self.n_epochs,
        }
        if self.raw is not None:
            state["raw"] = self.raw.state_dict()
            state["provisional_mark"] = self._provisional_mark
        return state

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
        if self.raw is not None:
            self.raw.load_state_dict(state["raw"])
            self._provisional_mark = int(state["provisional_mark"])
