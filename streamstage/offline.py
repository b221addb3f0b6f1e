"""A recorded EDF (or XDF) as a source for the pipeline: offline staging and features for training.

Only the channels a derivation needs are read, chunk by chunk, so a long multichannel file never has to fit
in memory; the samples then go through the stream intake (:mod:`streamstage.signal.intake`) and the very
:class:`~streamstage.pipeline.StagingPipeline` used live, so a file staged here and the same file replayed
over LSL into ``run`` get the same samples, flags and stages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamstage.errors import ChannelError
from streamstage.features import epoch_features
from streamstage.io.edf import EdfRecording
from streamstage.io.xdf import StreamChoice, XdfRecording, is_xdf
from streamstage.model.checkpoint import StagingModel
from streamstage.pipeline import StagingPipeline
from streamstage.records import StagedEpoch
from streamstage.signal.channels import Derivation, Montage, resolve_derivation
from streamstage.signal.clipping import with_source_clipping
from streamstage.signal.intake import IntakeBlock, IntakeOutput, StreamFormat, StreamIntake
from streamstage.signal.path import Epoch, SignalPath

log = logging.getLogger(__name__)
CHUNK_S = 60.0


@dataclass(frozen=True)
class RecordingSource:
    """An EDF or XDF recording with the montage to stage: reads only the source channels it needs."""

    recording: EdfRecording | XdfRecording
    source_labels: tuple[str, ...]
    montage: Montage
    sfreq: float

    @classmethod
    def open(
        cls,
        path: Path | str,
        channels: Sequence[str],
        reference: str | None = None,
        stream: StreamChoice | None = None,
    ) -> RecordingSource:
        """``stream`` picks an XDF file's EEG stream (default: type EEG); EDF files have one."""
        recording = XdfRecording.open(path, stream) if is_xdf(path) else EdfRecording.open(path)
        labels = recording.labels
        derivations = [resolve_derivation(labels, name, reference) for name in channels]
        used = sorted({i for d in derivations for i in (d.positive, d.reference) if i is not None})
        compact = {source: column for column, source in enumerate(used)}
        montage = Montage(
            tuple(
                Derivation(
                    d.label,
                    compact[d.positive],
                    None if d.reference is None else compact[d.reference],
                )
                for d in derivations
            )
        )
        source_labels = tuple(labels[i] for i in used)
        rates = {recording.sfreq(label) for label in source_labels}
        if len(rates) > 1:
            raise ChannelError(
                f"{Path(path).name}: channels {', '.join(source_labels)} have different sampling rates "
                f"({', '.join(f'{r:g}' for r in sorted(rates))} Hz); pick channels recorded at one rate."
            )
        return cls(recording, source_labels, montage, rates.pop())

    @property
    def channel_labels(self) -> tuple[str, ...]:
        return self.montage.labels

    @property
    def physical_ranges_uv(self) -> tuple[tuple[float, float] | None, ...]:
        """Each source channel's physical range in µV (None where the format declares none)."""
        return tuple(self.recording.physical_range(label) for label in self.source_labels)

    def intake(self) -> StreamIntake:
        """The stream intake for this file's source channels (read in µV, on the grid already)."""
        stream = StreamFormat(
            self.source_labels, ("uV",) * len(self.source_labels), self.sfreq, self.physical_ranges_uv
        )
        return StreamIntake(stream, self.montage)

    def blocks(self, intake: StreamIntake, chunk_s: float = CHUNK_S) -> Iterator[IntakeBlock]:
        """The recording through ``intake``, block by block (its notices logged)."""
        for chunk in self.recording.iter_chunks(list(self.source_labels), chunk_s):
            yield from _taken(intake.push_regular(chunk))
        yield from _taken(intake.flush())

    def iter_chunks(self, chunk_s: float = CHUNK_S) -> Iterator[np.ndarray]:
        """Derived µV samples ``(n, n_channels)`` (NaN where missing), chunk by chunk, from the intake."""
        for block in self.blocks(self.intake(), chunk_s):
            yield block.derived_uv


def _taken(output: IntakeOutput) -> list[IntakeBlock]:
    for _, message in output.notices:
        log.warning(message)
    return output.blocks


def stage_recording(source: RecordingSource, model: StagingModel) -> list[StagedEpoch]:
    """Stage a whole recording through the live pipeline; one row per complete 30-s epoch."""
    intake = source.intake()
    pipeline = StagingPipeline(model, source.sfreq, source_clipped=intake.clipped)
    staged: list[StagedEpoch] = []
    for block in source.blocks(intake):
        staged.extend(pipeline.push(block.derived_uv, block.missing))
    return staged + pipeline.finish()


def recording_signal(source: RecordingSource) -> Iterator[tuple[np.ndarray, list[Epoch]]]:
    """Block by block, the recording as the pipeline sees it without a model: the filtered samples at the
    model rate ``(n, n_channels)`` and the 30-s epochs they completed (the intake's clipping verdict
    included), for training (the raw front end reads the samples) and re-scoring."""
    intake = source.intake()
    path = SignalPath(source.sfreq, len(source.channel_labels))
    for block in source.blocks(intake):
        resampled, epochs = path.push_resampled(block.derived_uv, block.missing)
        yield resampled, [with_source_clipping(epoch, intake.clipped(epoch.index)) for epoch in epochs]


def recording_epochs(source: RecordingSource) -> Iterator[Epoch]:
    """The recording's filtered 30-s epochs at the model rate, as :func:`recording_signal` gives them."""
    for _, epochs in recording_signal(source):
        yield from epochs


def recording_features(source: RecordingSource) -> tuple[np.ndarray, np.ndarray]:
    """Training-recipe features ``(n_epochs, n_channels, 10)`` from the live signal path, with each epoch's
    quality verdict (True: good, so it may move the normaliser), for training on EDF nights."""
    features, good = [], []
    for epoch in recording_epochs(source):
        features.append(epoch_features(epoch.data_uv))
        good.append(epoch.quality.ok)
    n_channels = len(source.channel_labels)
    return np.asarray(features, dtype=np.float32).reshape(-1, n_channels, 10), np.asarray(good, dtype=bool)
