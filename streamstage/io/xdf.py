"""XDF recordings (what LabRecorder writes from LSL streams) as a source for offline staging and replay.

pyxdf is an optional extra (``pip install 'streamstage[xdf]'``), imported only when an ``.xdf`` file is
opened. The EEG stream is chosen as ``run`` chooses a live one: by ``name``, ``type`` or ``source_id``
(default: type ``EEG``, or mne-lsl's ``eeg``); the file's clock offsets are applied (pyxdf's clock
synchronisation), so every stream's time stamps are in the recording computer's clock. Samples are read
whole (an XDF file is not laid out for partial reads), in µV from each channel's unit, and placed on the
stream's nominal-rate grid by their time stamps: a dropout becomes missing samples, as live.

The ``streamstage-stages`` markers a night recorded alongside (one JSON per epoch, stamped at its start; or
the stage names a ``replay`` publishes) read back as a hypnogram on the EEG stream's epoch grid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from streamstage import STAGES
from streamstage.errors import ChannelError, HypnogramError, InputFileError
from streamstage.io.hypnogram import UNKNOWN, Hypnogram
from streamstage.signal.units import scale_to_uv

XDF_SUFFIX = ".xdf"
DEFAULT_TYPES = ("EEG", "eeg")
STAGE_MARKER_STREAMS = ("streamstage-stages",)
"""Markers streams whose samples are stages: streamstage's own outlet, and ``replay``'s ``NAME-stages``."""


def is_xdf(path: str | Path) -> bool:
    return Path(path).suffix.lower() == XDF_SUFFIX


@dataclass(frozen=True)
class StreamChoice:
    """Which stream of the file is the EEG: the criteria ``run`` takes (all None: type EEG)."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None

    def matches(self, info: dict[str, Any]) -> bool:
        wanted = {"name": self.name, "type": self.type, "source_id": self.source_id}
        if not any(wanted.values()):
            return _field(info, "type") in DEFAULT_TYPES
        return all(value is None or _field(info, key) == value for key, value in wanted.items())


def _field(info: dict[str, Any], key: str) -> str:
    value = info.get(key, [""])
    return str(value[0] if isinstance(value, list) and value else value or "")


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputFileError(f"{path} does not exist or is not a file; check the path.")
    stat = path.stat()
    return _parsed(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1)
def _parsed(path: str, mtime_ns: int, size: int) -> list[dict[str, Any]]:
    """The file's streams, parsed once: a command that asks for its labels, then stages it, reads it once."""
    try:
        import pyxdf
    except ImportError:
        name = Path(path).name
        raise InputFileError(f"reading {name} needs pyxdf: pip install 'streamstage[xdf]'.") from None
    try:
        streams, _ = pyxdf.load_xdf(path, verbose=False)
    except Exception as error:  # pyxdf raises whatever its parser meets in a damaged file
        raise InputFileError(
            f"{path} is not a readable XDF file ({type(error).__name__}: {error})."
        ) from None
    if not streams:
        raise InputFileError(f"{path} holds no stream: it is empty, or not a readable XDF file.")
    return streams


def _channels(info: dict[str, Any], n_channels: int) -> tuple[list[str], list[str]]:
    """Labels and units from the stream's description (``ch1``... and µV where it gives none)."""
    try:
        described = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        described = []
    labels = [_field(channel, "label") for channel in described][:n_channels]
    units = [_field(channel, "unit") for channel in described][:n_channels]
    labels += [f"ch{i + 1}" for i in range(len(labels), n_channels)]
    units += [""] * (n_channels - len(units))
    return [label or f"ch{i + 1}" for i, label in enumerate(labels)], units


class XdfRecording:
    """The EEG stream of an XDF file, read whole, with the interface :class:`RecordingSource` reads."""

    def __init__(self, path: Path, streams: list[dict[str, Any]], eeg: dict[str, Any]) -> None:
        self.path = path
        self._streams = streams
        info = eeg["info"]
        samples = np.asarray(eeg["time_series"], dtype=np.float64)
        self.labels, units = _channels(info, samples.shape[1])
        self.time_stamps = np.asarray(eeg["time_stamps"], dtype=np.float64)
        self.sfreq_hz = float(_field(info, "nominal_srate") or 0.0)
        self.stream_name = _field(info, "name")
        self.source_id = _field(info, "source_id")
        if self.sfreq_hz <= 0:
            raise InputFileError(
                f"{path.name}: stream {self.stream_name!r} has no nominal rate; only regular-rate EEG "
                "streams can be staged."
            )
        scaled = samples * np.array([scale_to_uv(unit).factor for unit in units])
        self.data_uv = _on_grid(scaled, self.time_stamps, self.sfreq_hz)

    @classmethod
    def open(cls, path: str | Path, choice: StreamChoice | None = None) -> XdfRecording:
        path = Path(path).expanduser()
        streams = _load(path)
        choice = choice or StreamChoice()
        found = [s for s in streams if choice.matches(s["info"]) and len(s["time_stamps"])]
        if len(found) != 1:
            seen = "; ".join(
                f"{_field(s['info'], 'name')!r} (type {_field(s['info'], 'type')}, source id "
                f"{_field(s['info'], 'source_id')!r})"
                for s in streams
            )
            how = "no stream with samples" if not found else f"{len(found)} streams"
            raise ChannelError(
                f"{path.name}: {how} match (name {choice.name}, type {choice.type or 'EEG'}, source id "
                f"{choice.source_id}); the file holds {seen or 'no stream'}. Choose one with --name, "
                "--type or --source-id."
            )
        return cls(path, streams, found[0])

    @property
    def duration_s(self) -> float:
        return len(self.data_uv) / self.sfreq_hz

    def sfreq(self, label: str) -> float:
        self._column(label)
        return self.sfreq_hz

    def physical_range(self, label: str) -> None:
        """XDF declares no amplifier range, so clipping is not judged from one."""
        self._column(label)

    def iter_chunks(
        self, labels: Sequence[str], chunk_s: float, start_s: float = 0.0
    ) -> Iterator[np.ndarray]:
        columns = [self._column(label) for label in labels]
        step = max(1, round(chunk_s * self.sfreq_hz))
        for first in range(round(start_s * self.sfreq_hz), len(self.data_uv), step):
            yield self.data_uv[first : first + step, columns]

    def samples_uv(self, labels: Sequence[str]) -> np.ndarray:
        """The whole recording of ``labels``, ``(n, len(labels))`` in µV."""
        return self.data_uv[:, [self._column(label) for label in labels]]

    def _column(self, label: str) -> int:
        if label not in self.labels:
            raise ChannelError(f"{self.path.name} has no channel {label!r}; it has {', '.join(self.labels)}.")
        return self.labels.index(label)

    def hypnogram(self, epoch_s: float = 30.0) -> Hypnogram:
        """The stages recorded alongside, on this stream's epoch grid (unknown where none was)."""
        markers = [s for s in self._streams if _is_stage_stream(s["info"]) and len(s["time_stamps"])]
        if not markers:
            raise HypnogramError(
                f"{self.path.name} holds no stage markers (a streamstage-stages stream); give a hypnogram."
            )
        t0 = float(self.time_stamps[0])
        by_epoch: dict[int, int] = {}
        for stream in markers:
            for stamp, value in zip(stream["time_stamps"], stream["time_series"], strict=True):
                by_epoch[round((float(stamp) - t0) / epoch_s)] = _stage_code(value[0])
        first, last = min(by_epoch), max(by_epoch)
        stages = np.full(last - first + 1, UNKNOWN, dtype=np.int8)
        for epoch, code in by_epoch.items():
            stages[epoch - first] = code
        return Hypnogram(stages, epoch_s, first * epoch_s)


def _on_grid(samples: np.ndarray, stamps: np.ndarray, sfreq_hz: float) -> np.ndarray:
    """Samples at their place on the stream's grid from its first stamp: a dropout becomes NaN (missing)
    samples, a stamp that does not move forward is dropped."""
    index = np.rint((stamps - stamps[0]) * sfreq_hz).astype(np.int64)
    if np.all(np.diff(index) == 1):
        return samples
    keep = index > np.maximum.accumulate(np.r_[-1, index[:-1]])
    grid = np.full((int(index[keep][-1]) + 1, samples.shape[1]), np.nan)
    grid[index[keep]] = samples[keep]
    return grid


def _is_stage_stream(info: dict[str, Any]) -> bool:
    name = _field(info, "name")
    return _field(info, "type").lower() == "markers" and (
        name in STAGE_MARKER_STREAMS or name.endswith("-stages")
    )


def _stage_code(value: str) -> int:
    """A marker's stage: streamstage's JSON (its ``stage``) or a plain stage name."""
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        record = value
    name = record.get("stage") if isinstance(record, dict) else record
    return STAGES.index(name) if name in STAGES else UNKNOWN
