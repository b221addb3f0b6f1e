"""Recordings a replay can publish: any object with a rate, labels, units and chunks of samples in µV.

The replay only needs :class:`SampleSource`, so tests and the demo publish in-memory arrays
(:class:`ArraySource`) exactly as ``streamstage replay`` publishes an EDF file (:class:`EdfSource`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from streamstage.errors import ChannelError, InputFileError
from streamstage.io.edf import EdfRecording
from streamstage.signal.units import scale_to_uv
from streamstage.sim import SyntheticEEG

UNIT_UV = "microvolts"
"""The unit string the XDF meta-data convention uses for µV."""


class SampleSource(Protocol):
    """What a replay reads: all channels at one rate, in µV."""

    sfreq_hz: float
    labels: tuple[str, ...]
    units: tuple[str, ...]
    source_id: str
    """Stable for the same recording, so a restarted replay is recovered as the same LSL source."""
    physical_ranges: tuple[tuple[float, float] | None, ...]
    """Each channel's physical range in µV where the recording declares one (an EDF header), else empty:
    published with the stream, so ``run`` judges clipping as ``stage`` does on the file."""

    def iter_chunks(self, labels: Sequence[str], chunk_s: float) -> Iterator[np.ndarray]:
        """Successive ``(n, len(labels))`` float64 blocks of about ``chunk_s``, from the start."""
        ...


class ArraySource:
    """Samples held in memory, ``(n_samples, n_channels)`` in µV."""

    def __init__(
        self, data_uv: np.ndarray, sfreq_hz: float, labels: Sequence[str], source_id: str = "array"
    ) -> None:
        self.data_uv = np.asarray(data_uv, dtype=np.float64)
        if self.data_uv.ndim != 2 or self.data_uv.shape[1] != len(labels):
            raise ChannelError(f"{len(labels)} labels for data of shape {self.data_uv.shape}; give one each.")
        self.sfreq_hz = float(sfreq_hz)
        self.labels = tuple(labels)
        self.units = (UNIT_UV,) * len(labels)
        self.physical_ranges: tuple[tuple[float, float] | None, ...] = ()
        self.source_id = source_id

    def iter_chunks(self, labels: Sequence[str], chunk_s: float) -> Iterator[np.ndarray]:
        columns = [_index(self.labels, label) for label in labels]
        step = max(1, round(chunk_s * self.sfreq_hz))
        for first in range(0, len(self.data_uv), step):
            yield self.data_uv[first : first + step, columns]


class EdfSource:
    """Channels of one rate from an EDF/BDF file (via :class:`streamstage.io.edf.EdfRecording`)."""

    def __init__(self, path: str | Path, labels: Sequence[str] | None = None) -> None:
        self.recording = EdfRecording.open(path)
        self.labels = tuple(labels) if labels else _default_channels(self.recording)
        rates = {label: self.recording.sfreq(label) for label in self.labels}
        if len(set(rates.values())) > 1:
            listed = ", ".join(f"{label} {rate:g} Hz" for label, rate in rates.items())
            raise ChannelError(
                f"a stream has one rate, but the channels asked for differ ({listed}); "
                "pick channels of one rate with --channels."
            )
        self.sfreq_hz = rates[self.labels[0]]
        self.units = (UNIT_UV,) * len(self.labels)
        self.physical_ranges = tuple(self.recording.physical_range(label) for label in self.labels)
        self.source_id = _file_source_id(self.recording.path, self.labels)

    @property
    def duration_s(self) -> float:
        return self.recording.duration_s

    def iter_chunks(self, labels: Sequence[str], chunk_s: float) -> Iterator[np.ndarray]:
        return self.recording.iter_chunks(labels, chunk_s)


def _default_channels(recording: EdfRecording) -> tuple[str, ...]:
    """The voltage channels sharing the rate of the first one (an EDF mixes rates: EEG, EMG, breathing)."""
    voltage = [label for label in recording.labels if not scale_to_uv(recording.unit(label)).assumed]
    if not voltage:
        raise ChannelError(f"{recording.path.name} has no channel in volts to replay.")
    rate = recording.sfreq(voltage[0])
    return tuple(label for label in voltage if recording.sfreq(label) == rate)


def _file_source_id(path: Path, labels: Sequence[str]) -> str:
    """A hash of the file's path, header and the channels chosen: the same replay is the same source."""
    try:
        with path.open("rb") as file:
            start = file.read(256)
            header = start + file.read(max(0, int(start[184:192].strip() or 256) - 256))
    except (OSError, ValueError) as error:
        raise InputFileError(f"cannot read the header of {path} ({error}).") from error
    digest = hashlib.sha1(str(path.resolve()).encode() + header + "\0".join(labels).encode())
    return f"streamstage-replay-{digest.hexdigest()[:16]}"


def _index(labels: Sequence[str], label: str) -> int:
    try:
        return list(labels).index(label)
    except ValueError:
        raise ChannelError(f"no channel {label!r}; the channels are: {', '.join(labels)}.") from None


class SyntheticSource:
    """A synthetic night (:mod:`streamstage.sim`) generated chunk by chunk while it is replayed."""

    def __init__(self, eeg: SyntheticEEG, source_id: str = "streamstage-synthetic") -> None:
        self.eeg = eeg
        self.sfreq_hz = float(eeg.sfreq)
        self.labels = tuple(eeg.ch_names)
        self.units = (UNIT_UV,) * len(self.labels)
        self.physical_ranges: tuple[tuple[float, float] | None, ...] = ()
        self.source_id = source_id

    def iter_chunks(self, labels: Sequence[str], chunk_s: float) -> Iterator[np.ndarray]:
        columns = [_index(self.labels, label) for label in labels]
        for chunk in self.eeg.iter_chunks(chunk_s):
            yield np.asarray(chunk, dtype=np.float64).T[:, columns]
