"""Read EDF/EDF+ and BDF/BDF+ recordings lazily, in microvolts, one block of data records at a time.

Overnight files are large (24 h x 10 channels x 256 Hz is ~440 MB as EDF, more as BDF), so samples are read
straight from the data records that cover the requested span and are never loaded whole. edfio reads the
EDF+ annotations; samples are decoded here because edfio loads a BDF file whole. The header is
checked against the file size before anything is read, so a file cut short by a crashed recorder is
reported as such (or, with ``allow_truncated=True``, read up to its last complete data record) instead of
failing somewhere in the middle of the night.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import edfio
import numpy as np

from streamstage.errors import ChannelError, InputFileError
from streamstage.signal.units import scale_to_uv

_EDF_VERSION = b"0       "
_BDF_VERSION = b"\xffBIOSEMI"
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_SIGNAL_FIELDS = (  # (name, width) of the per-signal header columns, in file order
    ("label", 16),
    ("transducer", 80),
    ("unit", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefiltering", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_BLOCK_BYTES = 8 * 2**20
"""Upper bound on the raw bytes held at once while reading, whatever span is asked for."""


class TruncatedFileWarning(UserWarning):
    """A recording was cut short; only its complete data records are read."""


@dataclass(frozen=True)
class _Signal:
    """One ordinary signal's header, with where its samples sit inside a data record."""

    label: str
    unit: str
    physical_min: float
    physical_max: float
    digital_min: int
    digital_max: int
    samples_per_record: int
    byte_offset: int


@dataclass(frozen=True)
class _Header:
    bdf: bool
    plus: bool
    startdate: str
    starttime: str
    recording_id: str
    header_bytes: int
    n_records: int
    record_s: float
    record_bytes: int
    signals: tuple[_Signal, ...]

    @property
    def sample_bytes(self) -> int:
        return 3 if self.bdf else 2


class EdfRecording:
    """A lazily read EDF or BDF recording; open it with :meth:`EdfRecording.open`."""

    def __init__(self, path: Path, header: _Header, n_records: int) -> None:
        self.path = path
        self._header = header
        self._n_records = n_records
        self._by_label: dict[str, list[_Signal]] = {}
        for signal in header.signals:
            self._by_label.setdefault(signal.label, []).append(signal)

    @classmethod
    def open(cls, path: str | Path, *, allow_truncated: bool = False) -> EdfRecording:
        """Check the header against the file and return a reader; no samples are read yet.

        A file shorter than its header promises raises :class:`InputFileError`, unless ``allow_truncated``,
        in which case its complete data records are read and a :class:`TruncatedFileWarning` says how
        much was lost.
        """
        path = Path(path).expanduser()
        header = _read_header(path)
        if not header.signals:
            raise InputFileError(
                f"{path} holds annotations but no signals (it looks like a hypnogram); "
                "give the recording's own EDF file."
            )
        complete = (path.stat().st_size - header.header_bytes) // header.record_bytes
        n_records = complete if header.n_records == -1 else min(header.n_records, complete)
        if n_records < 1:
            raise InputFileError(f"{path} holds no complete data record; the recording is empty.")
        if n_records < header.n_records:
            promised, held = header.n_records * header.record_s, n_records * header.record_s
            if not allow_truncated:
                raise InputFileError(
                    f"{path} is truncated: its header promises {header.n_records} data records "
                    f"({promised:g} s) but it holds {n_records} complete ones ({held:g} s); "
                    "read those with allow_truncated=True, or re-export the recording."
                )
            warnings.warn(
                f"{path} is truncated: reading its {n_records} complete data records ({held:g} s) "
                f"of the {header.n_records} ({promised:g} s) its header promises.",
                TruncatedFileWarning,
                stacklevel=2,
            )
        return cls(path, header, n_records)

    @property
    def labels(self) -> list[str]:
        """Labels of the ordinary signals, in file order (annotation signals left out)."""
        return [signal.label for signal in self._header.signals]

    @property
    def duration_s(self) -> float:
        """Duration of the complete data records."""
        return self._n_records * self._header.record_s

    def sfreq(self, label: str) -> float:
        return self._sfreq(self._signal(label))

    def unit(self, label: str) -> str:
        """The physical dimension as written in the header (e.g. ``"uV"``)."""
        return self._signal(label).unit

    def physical_range(self, label: str) -> tuple[float, float]:
        """The (min, max) the header says the channel can hold, in µV: what the amplifier clips at."""
        signal = self._signal(label)
        scale = scale_to_uv(signal.unit).factor
        low, high = sorted((signal.physical_min * scale, signal.physical_max * scale))
        return low, high

    def n_samples(self, label: str) -> int:
        return self._n_records * self._signal(label).samples_per_record

    @property
    def start_datetime(self) -> datetime.datetime | None:
        """Wall-clock start to the second; None where the file is anonymized or its date unreadable."""
        return _start_datetime(self._header)

    @cached_property
    def annotations(self) -> list[tuple[float, float, str]]:
        """EDF+/BDF+ annotations as (onset_s, duration_s, text); empty for plain EDF/BDF.

        A BDF+ file is read whole by edfio to get them, so ask only where they are needed.
        """
        if not self._header.plus:
            return []
        with warnings.catch_warnings():
            # Truncation was already reported by open(); edfio repeats it in its own words.
            warnings.filterwarnings("ignore", message=r"(Incomplete data record|.* header indicates)")
            try:
                if self._header.bdf:
                    recording: edfio.Edf | edfio.Bdf = edfio.read_bdf(self.path)
                else:
                    recording = edfio.read_edf(self.path, lazy_load_data=True)
                annotations = recording.annotations
            except (ValueError, IndexError, UnicodeDecodeError) as error:
                raise InputFileError(
                    f"{self.path} has unreadable EDF+ annotations ({error}); re-export the recording."
                ) from error
        return [(a.onset, a.duration or 0.0, a.text) for a in annotations]

    def read_uv(self, label: str, start_s: float = 0.0, stop_s: float | None = None) -> np.ndarray:
        """One channel from ``start_s`` to ``stop_s`` (default: the end) in µV, as float64.

        Only the data records covering the span are read; a span reaching past the end stops there. Units
        are scaled by :func:`streamstage.signal.units.scale_to_uv`, which takes an unknown unit as µV.
        """
        signal = self._signal(label)
        if start_s < 0 or (stop_s is not None and stop_s < start_s):
            raise ValueError(f"invalid span {start_s}..{stop_s} s")
        n_samples = self._n_records * signal.samples_per_record
        first = min(round(start_s * self._sfreq(signal)), n_samples)
        stop = n_samples if stop_s is None else min(round(stop_s * self._sfreq(signal)), n_samples)
        return self._read_span((signal,), first, stop)[:, 0]

    def iter_chunks(
        self, labels: Sequence[str], chunk_s: float, start_s: float = 0.0
    ) -> Iterator[np.ndarray]:
        """Successive ``(n, len(labels))`` µV blocks of ``chunk_s`` from ``start_s`` (the last one shorter).

        All channels must share one sampling rate, so that a row is one instant. ``start_s`` lets a resumed
        replay pick up where it stopped.
        """
        if chunk_s <= 0 or start_s < 0:
            raise ValueError(f"chunk_s must be positive and start_s non-negative, got {chunk_s}, {start_s}")
        signals = tuple(self._signal(label) for label in labels)
        if not signals:
            raise ChannelError("no channel was asked for; give at least one label.")
        rates = {signal.label: self._sfreq(signal) for signal in signals}
        if len(set(rates.values())) > 1:
            listed = ", ".join(f"{label} {rate:g} Hz" for label, rate in rates.items())
            raise ChannelError(
                f"channels to read together must share a sampling rate, but {self.path.name} has {listed}; "
                "read them separately."
            )
        sfreq = rates[signals[0].label]
        step = max(1, round(chunk_s * sfreq))
        n_samples = self._n_records * signals[0].samples_per_record
        for first in range(round(start_s * sfreq), n_samples, step):
            yield self._read_span(signals, first, min(first + step, n_samples))

    def _sfreq(self, signal: _Signal) -> float:
        return signal.samples_per_record / self._header.record_s

    def _signal(self, label: str) -> _Signal:
        matches = self._by_label.get(label, [])
        if not matches:
            raise ChannelError(
                f"{self.path.name} has no channel {label!r}; its channels are: {', '.join(self.labels)}."
            )
        if len(matches) > 1:
            raise ChannelError(
                f"{self.path.name} has {len(matches)} channels labelled {label!r}; relabel them to tell "
                "them apart."
            )
        return matches[0]

    def _read_span(self, signals: tuple[_Signal, ...], first: int, stop: int) -> np.ndarray:
        """Samples ``first:stop`` of same-rate signals as ``(n, len(signals))`` µV, in bounded blocks."""
        per_record = signals[0].samples_per_record
        gains_offsets = [_calibration(signal, self.path) for signal in signals]
        out = np.empty((stop - first, len(signals)))
        record, last = first // per_record, math.ceil(stop / per_record)
        records_per_block = max(1, _BLOCK_BYTES // self._header.record_bytes)
        row = 0
        with self.path.open("rb") as file:
            file.seek(self._header.header_bytes + record * self._header.record_bytes)
            while record < last:
                n = min(records_per_block, last - record)
                raw = np.frombuffer(file.read(n * self._header.record_bytes), dtype=np.uint8)
                if len(raw) < n * self._header.record_bytes:
                    raise InputFileError(f"{self.path} shrank while being read; open it again.")
                raw = raw.reshape(n, self._header.record_bytes)
                skip = first - record * per_record if row == 0 else 0
                take = min(n * per_record - skip, stop - first - row)
                for column, (signal, (gain, offset)) in enumerate(zip(signals, gains_offsets, strict=True)):
                    digital = self._decode(raw, signal)[skip : skip + take]
                    out[row : row + take, column] = (digital + offset) * gain
                row += take
                record += n
        return out

    def _decode(self, raw: np.ndarray, signal: _Signal) -> np.ndarray:
        """A signal's digital values from a block of raw data records (little-endian 16- or 24-bit)."""
        width = self._header.sample_bytes
        columns = raw[:, signal.byte_offset : signal.byte_offset + signal.samples_per_record * width]
        samples = columns.reshape(-1, width)
        if width == 2:
            return np.ascontiguousarray(samples).view("<i2").ravel()
        padded = np.zeros((len(samples), 4), dtype=np.uint8)
        padded[:, 1:] = samples
        return padded.view("<i4").ravel() >> 8  # arithmetic shift sign-extends the 24-bit value


def _calibration(signal: _Signal, path: Path) -> tuple[float, float]:
    """(gain, offset) so that µV = (digital + offset) * gain, as the EDF specification defines it."""
    digital_span = signal.digital_max - signal.digital_min
    physical_span = signal.physical_max - signal.physical_min
    if digital_span <= 0 or physical_span == 0:
        raise InputFileError(
            f"{path.name} channel {signal.label!r} has a damaged scale (digital {signal.digital_min}.."
            f"{signal.digital_max}, physical {signal.physical_min:g}..{signal.physical_max:g}); "
            "pick another channel or re-export the recording."
        )
    gain = physical_span / digital_span
    return gain * scale_to_uv(signal.unit).factor, signal.physical_max / gain - signal.digital_max


def _read_header(path: Path) -> _Header:
    if not path.exists():
        raise InputFileError(f"{path} does not exist; check the path.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give the .edf or .bdf file inside it.")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path} is empty (0 bytes); the recording was not saved, re-export it.")
    try:
        file = path.open("rb")
    except OSError as error:
        raise InputFileError(f"{path} cannot be read ({error.strerror}); check its permissions.") from None
    with file:
        raw_fixed = file.read(256)
        if raw_fixed[:8] not in (_EDF_VERSION, _BDF_VERSION) or len(raw_fixed) < 256:
            raise InputFileError(
                f"{path} is not an EDF or BDF recording (it does not start with an EDF header); "
                "give a .edf or .bdf file."
            )
        fixed = raw_fixed.decode("latin-1")
        n_signals = int(_header_number(fixed[252:256], "number of signals", path))
        columns = file.read(256 * n_signals).decode("latin-1")
    header_bytes = int(_header_number(fixed[184:192], "header size", path))
    if n_signals < 0 or len(columns) < 256 * n_signals or header_bytes != 256 * (n_signals + 1):
        raise InputFileError(f"{path} has a damaged or cut-short header; re-export the recording.")
    bdf = raw_fixed[:8] == _BDF_VERSION
    signals, record_bytes = _parse_signals(columns, n_signals, 3 if bdf else 2, path)
    record_s = _header_number(fixed[244:252], "data record duration", path)
    if signals and (record_s <= 0 or min(s.samples_per_record for s in signals) <= 0):
        raise InputFileError(
            f"{path} has a damaged header (data records of {record_s:g} s, or a channel with no samples "
            "in them); re-export the recording."
        )
    return _Header(
        bdf=bdf,
        plus=fixed[192:236].strip().upper().startswith(("EDF+", "BDF+")),
        startdate=fixed[168:176],
        starttime=fixed[176:184],
        recording_id=fixed[88:168],
        header_bytes=header_bytes,
        n_records=int(_header_number(fixed[236:244], "number of data records", path)),
        record_s=record_s,
        record_bytes=record_bytes,
        signals=signals,
    )


def _header_number(text: str, field: str, path: Path) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InputFileError(
            f"{path} has a damaged header ({field} is {text!r}); re-export the recording."
        ) from None


def _parse_signals(columns: str, n_signals: int, width: int, path: Path) -> tuple[tuple[_Signal, ...], int]:
    """The ordinary signals and the size of one data record, from the column-wise per-signal header."""
    fields: dict[str, list[str]] = {}
    position = 0
    for name, field_width in _SIGNAL_FIELDS:
        raw = columns[position : position + field_width * n_signals]
        fields[name] = [raw[i : i + field_width].strip() for i in range(0, len(raw), field_width)]
        position += field_width * n_signals
    signals = []
    byte_offset = 0
    for i in range(n_signals):
        number = {
            name: _header_number(fields[name][i], f"{name.replace('_', ' ')} of signal {i + 1}", path)
            for name in ("physical_min", "physical_max", "digital_min", "digital_max", "samples_per_record")
        }
        if fields["label"][i] not in _ANNOTATION_LABELS:
            signals.append(
                _Signal(
                    label=fields["label"][i],
                    unit=fields["unit"][i],
                    physical_min=number["physical_min"],
                    physical_max=number["physical_max"],
                    digital_min=int(number["digital_min"]),
                    digital_max=int(number["digital_max"]),
                    samples_per_record=int(number["samples_per_record"]),
                    byte_offset=byte_offset,
                )
            )
        byte_offset += int(number["samples_per_record"]) * width
    return tuple(signals), byte_offset


def _start_datetime(header: _Header) -> datetime.datetime | None:
    """The EDF+ ``Startdate dd-MMM-yyyy`` subfield where there is one (``X`` when anonymized), else the legacy
    ``dd.mm.yy`` field (years 85-99 are 1985-1999, 00-84 are 2000-2084, as the EDF specification says)."""
    try:
        hour, minute, second = (int(part) for part in header.starttime.split("."))
        words = header.recording_id.split()
        if len(words) > 1 and words[0] == "Startdate":
            if words[1] == "X":
                return None
            day, month, year = words[1].split("-")
            date = datetime.date(int(year), _MONTHS.index(month.upper()) + 1, int(day))
        else:
            day, month, year = (int(part) for part in header.startdate.split("."))
            date = datetime.date(year + (1900 if year >= 85 else 2000), month, day)
        return datetime.datetime.combine(date, datetime.time(hour, minute, second))
    except ValueError:
        return None
