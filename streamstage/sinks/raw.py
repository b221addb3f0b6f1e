"""The night's raw signal kept in its folder: ``raw.bdf`` (BDF+, :mod:`streamstage.io.raw_record`) and its
stages and events as ``raw.annotations.edf`` beside it, written when the night ends.

A sample's place in the file is its index on the night's time axis (the signal path's sample count), so a
resumed night continues the same file: samples the file already holds are not written twice, samples it
lost in a crash become a marked gap. A night continued with a fresh start (``--rebuild-state``) starts on
another axis and is written as a second part, ``raw-2.bdf``, with its own annotations file.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np

from streamstage.io.raw_record import RawLayout, RawRecordWriter, annotations_path, part_path
from streamstage.output import HYPNOGRAM_FILE
from streamstage.report.annotations import event_annotations, stage_annotations, write_annotations
from streamstage.report.night import read_night
from streamstage.signal.channels import Montage
from streamstage.sinks.base import NightSink, SignalBlock, recorded_channels

log = logging.getLogger(__name__)


def disk_mb_per_hour(montage: Montage, stream_labels: tuple[str, ...], rate_hz: float) -> float:
    """What the raw file of a night on this stream takes per hour, in MB."""
    labels = recorded_channels(montage, stream_labels)[2]
    return RawLayout(labels, rate_hz, datetime.now()).disk_bytes_per_hour() / 1e6


class RawSink(NightSink):
    """Writes every block of signal the night stages, flushed at every commit (each chunk that staged an
    epoch: at live pace every epoch); see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.writer: RawRecordWriter | None = None

    def on_block(self, block: SignalBlock) -> None:
        if self.writer is None:
            self.writer = self._open(RawLayout(block.labels, block.sfreq_hz, block.start))
        ahead = self.writer.n_samples - block.first_index
        if ahead < 0:  # samples the file lost in a crash: a gap
            self.writer.append(np.full((-ahead, len(block.labels)), np.nan))
        self.writer.append(block.samples_uv[max(ahead, 0) :])

    def commit(self) -> None:
        """Flush the raw file before the state is saved (a constant cost per chunk). The annotations are
        rebuilt from the whole night, so only at its end (:meth:`close`); after a crash the resumed night's
        end writes them."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self._write_annotations()

    def _open(self, layout: RawLayout) -> RawRecordWriter:
        part = 1
        while (path := part_path(self.folder, part)).is_file():
            writer = RawRecordWriter.open(path, layout)
            if writer is not None:
                log.info("continuing the raw recording %s at sample %d", path, writer.n_samples)
                return writer
            part += 1
        log.info("recording the raw signal to %s", path)
        return RawRecordWriter.create(path, layout)

    def _write_annotations(self) -> None:
        assert self.writer is not None
        start = self.writer.layout.start
        night = read_night(self.folder / HYPNOGRAM_FILE)
        annotations = stage_annotations(night, start) + event_annotations(self.folder, start)
        if annotations:
            write_annotations(annotations_path(self.writer.path), annotations, start)
