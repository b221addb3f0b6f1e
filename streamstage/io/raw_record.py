"""The night's raw signal as a BDF+ file, written record by record so that a killed process leaves a file
every EDF/BDF reader opens.

BDF+ (24-bit) rather than EDF+ (16-bit): one fixed range serves any source, ±262,144 µV at 0.031 µV
resolution, so nothing has to be guessed about an amplifier before its first sample is written. Complete
data records are kept in memory until :meth:`RawRecordWriter.flush`, which appends them and only then
rewrites the header's record count, then fsyncs: after a ``kill -9`` the file holds every record up to the
last flush, and its header says so (a kill inside the few microseconds between the two writes leaves a
count one flush behind, which readers correct and :meth:`RawRecordWriter.open` repairs).

Samples that never arrived (NaN) are written as 0 µV and marked by a ``signal gap`` annotation (EDF+ TAL)
in the record where the gap ends, or at the flush that closes it, so a gap longer than one flush shows as
consecutive annotations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from streamstage.errors import InputFileError, OutputError

BDF_VERSION = b"\xffBIOSEMI"
PHYSICAL_MAX_UV = 262144.0
DIGITAL_MAX = 2**23 - 1
UV_PER_DIGIT = PHYSICAL_MAX_UV / DIGITAL_MAX
"""About 0.031 µV: a sample is kept within half of that."""
BYTES_PER_SAMPLE = 3
ANNOTATION_BYTES = 150
"""Per data record: the time-keeping TAL and a few gap annotations (more wait for the next record)."""
ANNOTATION_LABEL = "BDF Annotations"
GAP_TEXT = "signal gap"
MAX_RECORD_S = 10
RAW_FILE = "raw.bdf"
ANNOTATIONS_SUFFIX = ".annotations.edf"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@dataclass(frozen=True)
class RawLayout:
    """What a raw file holds: channel labels (µV), the rate, and the wall time of its first sample."""

    labels: tuple[str, ...]
    sfreq_hz: float
    start: datetime

    @property
    def record_s(self) -> int:
        """The shortest whole-second data record holding a whole number of samples."""
        for seconds in range(1, MAX_RECORD_S + 1):
            if abs(self.sfreq_hz * seconds - round(self.sfreq_hz * seconds)) < 1e-9:
                return seconds
        raise OutputError(
            f"a {self.sfreq_hz:g}-Hz stream does not fit BDF data records of up to {MAX_RECORD_S} s; "
            "run with --no-raw to stage it without keeping the raw signal."
        )

    @property
    def samples_per_record(self) -> int:
        return round(self.sfreq_hz * self.record_s)

    def disk_bytes_per_hour(self) -> int:
        per_record = len(self.labels) * self.samples_per_record * BYTES_PER_SAMPLE + ANNOTATION_BYTES
        return round(per_record * 3600 / self.record_s)


def _field(text: str, width: int) -> bytes:
    return text.encode("ascii", errors="replace")[:width].ljust(width)


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _header(layout: RawLayout, n_records: int) -> bytes:
    start = layout.start
    n_signals = len(layout.labels) + 1
    fixed = b"".join(
        (
            BDF_VERSION,
            _field("X X X X", 80),
            _field(f"Startdate {start.day:02d}-{_MONTHS[start.month - 1]}-{start.year} X streamstage X", 80),
            _field(start.strftime("%d.%m.%y"), 8),
            _field(start.strftime("%H.%M.%S"), 8),
            _field(str(256 * (n_signals + 1)), 8),
            _field("BDF+C", 44),
            _field(str(n_records), 8),
            _field(str(layout.record_s), 8),
            _field(str(n_signals), 4),
        )
    )
    spr = layout.samples_per_record
    annotation_spr = ANNOTATION_BYTES // BYTES_PER_SAMPLE
    columns: list[tuple[tuple[str, int], ...]] = [
        ((label, 16), ("", 80), ("uV", 8), (f"-{PHYSICAL_MAX_UV:g}", 8), (f"{PHYSICAL_MAX_UV:g}", 8),
         (f"-{DIGITAL_MAX}", 8), (str(DIGITAL_MAX), 8), ("", 80), (str(spr), 8), ("", 32))
        for label in layout.labels
    ]  # fmt: skip
    columns.append(
        ((ANNOTATION_LABEL, 16), ("", 80), ("", 8), ("-1", 8), ("1", 8), (f"-{2**23}", 8),
         (str(DIGITAL_MAX), 8), ("", 80), (str(annotation_spr), 8), ("", 32))
    )  # fmt: skip
    per_signal = b"".join(
        _field(column[i][0], column[i][1]) for i in range(len(columns[0])) for column in columns
    )
    return fixed + per_signal


def _tal(onset: str, duration_s: float | None = None, text: str = "") -> bytes:
    """One time-stamped annotation list; ``onset`` in seconds as written (``_number``)."""
    duration = "" if duration_s is None else "\x15" + _number(duration_s)
    return f"+{onset}{duration}\x14{text}\x14\x00".encode()


def _to_digital(samples_uv: np.ndarray) -> np.ndarray:
    digital = np.rint(np.nan_to_num(samples_uv, nan=0.0) / UV_PER_DIGIT)
    return np.clip(digital, -DIGITAL_MAX, DIGITAL_MAX).astype("<i4")


class RawRecordWriter:
    """Append µV samples ``(n, n_channels)`` (NaN: missing) to a BDF+ file; see the module docstring."""

    def __init__(self, path: Path, layout: RawLayout, fd: int, n_records: int) -> None:
        self.path = path
        self.layout = layout
        self._fd = fd
        self._n_records = n_records
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._gap_start: int | None = None
        self._tals: list[bytes] = []
        # A record's onset is a whole number of seconds plus the start's fraction: its digits, kept once
        # (formatting a float for each of 28,800 records a night was most of the cost of a flush).
        self._onset_fraction = _number(layout.start.microsecond / 1e6).removeprefix("0")
        self._header_bytes = 256 * (len(layout.labels) + 2)
        spr = layout.samples_per_record
        self._record_bytes = len(layout.labels) * spr * BYTES_PER_SAMPLE + ANNOTATION_BYTES

    @classmethod
    def create(cls, path: Path, layout: RawLayout) -> RawRecordWriter:
        header = _header(layout, 0)  # refuses a rate that fits no data record, before the file exists
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, header)
            os.fsync(fd)
        except OSError as error:
            raise _failed(path, error) from error
        return cls(path, layout, fd, 0)

    @classmethod
    def open(cls, path: Path, layout: RawLayout) -> RawRecordWriter | None:
        """Continue ``path`` when it is this layout's recording (same channels, rate and first sample's
        time), cut to its complete records; None when it is another recording."""
        found = read_layout(path)
        if found.labels != layout.labels or found.sfreq_hz != layout.sfreq_hz:
            return None
        apart_s = abs((found.start - layout.start.replace(tzinfo=None)).total_seconds())
        if apart_s > 0.5 / layout.sfreq_hz + 1e-6:
            return None
        try:
            fd = os.open(path, os.O_RDWR)
            writer = cls(path, layout, fd, 0)
            complete = (os.fstat(fd).st_size - writer._header_bytes) // writer._record_bytes
            os.ftruncate(fd, writer._header_bytes + complete * writer._record_bytes)
            writer._n_records = complete
            writer._write_count()
        except OSError as error:
            raise _failed(path, error) from error
        return writer

    @property
    def n_samples(self) -> int:
        """Samples written or waiting: the index the next appended sample gets."""
        return self._n_records * self.layout.samples_per_record + self._n_pending

    def append(self, samples_uv: np.ndarray) -> None:
        if len(samples_uv):
            self._pending.append(np.asarray(samples_uv, dtype=np.float64))
            self._n_pending += len(samples_uv)

    def flush(self, pad: bool = False) -> None:
        """Write the complete records (``pad``: the last partial one too, filled as a gap), then the count."""
        spr = self.layout.samples_per_record
        block = np.concatenate(self._pending) if self._pending else np.empty((0, len(self.layout.labels)))
        if pad and len(block) % spr:
            fill = np.full((spr - len(block) % spr, block.shape[1]), np.nan)
            block = np.concatenate([block, fill])
        n_records, first = len(block) // spr, self._n_records * spr
        whole, rest = block[: n_records * spr], block[n_records * spr :]
        self._pending, self._n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
        if not n_records:
            return
        self._note_gaps(np.isnan(whole).any(axis=1), first)
        digital = _to_digital(whole).reshape(n_records, spr, -1).transpose(0, 2, 1)
        signal_bytes = digital.reshape(n_records, -1, 1).view(np.uint8)[..., :BYTES_PER_SAMPLE]
        signal_bytes = signal_bytes.reshape(n_records, -1)
        annotations = np.frombuffer(
            b"".join(self._annotation_record(self._n_records + r) for r in range(n_records)), np.uint8
        ).reshape(n_records, ANNOTATION_BYTES)
        payload = np.concatenate([signal_bytes, annotations], axis=1).tobytes()
        try:
            os.pwrite(self._fd, payload, self._header_bytes + self._n_records * self._record_bytes)
            self._n_records += n_records
            self._write_count()
        except OSError as error:
            raise _failed(self.path, error) from error

    def _note_gaps(self, missing: np.ndarray, first: int) -> None:
        """Annotate every gap that ends in (or runs to the end of) these samples, starting at ``first``."""
        edges = np.diff(np.concatenate([[self._gap_start is not None], missing, [False]]).astype(np.int8))
        starts = (np.flatnonzero(edges == 1) + first).tolist()
        stops = (np.flatnonzero(edges == -1) + first).tolist()
        if self._gap_start is not None:
            starts.insert(0, self._gap_start)
        self._gap_start = None
        offset = self.layout.start.microsecond / 1e6
        sfreq = self.layout.sfreq_hz
        for start, stop in zip(starts, stops, strict=True):
            self._tals.append(_tal(_number(offset + start / sfreq), (stop - start) / sfreq, GAP_TEXT))

    def _annotation_record(self, index: int) -> bytes:
        record = _tal(f"{index * self.layout.record_s}{self._onset_fraction}")
        while self._tals and len(record) + len(self._tals[0]) <= ANNOTATION_BYTES:
            record += self._tals.pop(0)
        return record.ljust(ANNOTATION_BYTES, b"\x00")

    def _write_count(self) -> None:
        os.pwrite(self._fd, _field(str(self._n_records), 8), 236)
        os.fsync(self._fd)

    def close(self) -> None:
        """Flush everything, the last partial record padded as a gap, and close the file."""
        if self._fd < 0:
            return
        try:
            self.flush(pad=True)
            while self._tals:  # gap annotations that did not fit: one more record of gap holds them
                self.append(np.full((self.layout.samples_per_record, len(self.layout.labels)), np.nan))
                self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1


def read_layout(path: Path) -> RawLayout:
    """The layout of a raw file this module wrote (labels, rate, first sample's time to the microsecond)."""
    try:
        with open(path, "rb") as handle:
            fixed = handle.read(256)
            n_signals = int(fixed[252:256])
            columns = handle.read(256 * n_signals)
            first_record = handle.read(_first_record_bytes(columns, n_signals))
        labels = [columns[16 * i : 16 * (i + 1)].decode("ascii").strip() for i in range(n_signals)]
        spr_at = 216 * n_signals
        spr = [int(columns[spr_at + 8 * i : spr_at + 8 * (i + 1)]) for i in range(n_signals)]
        record_s = float(fixed[244:252])
        start = datetime.strptime(fixed[168:184].decode("ascii"), "%d.%m.%y%H.%M.%S")
        offset_s = float(first_record[-ANNOTATION_BYTES:].split(b"\x14", 1)[0]) if first_record else 0.0
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path} is not a raw file streamstage wrote ({error}).") from error
    if fixed[:8] != BDF_VERSION or labels[-1] != ANNOTATION_LABEL:
        raise InputFileError(f"{path} is not a raw file streamstage wrote (no BDF+ header).")
    return RawLayout(tuple(labels[:-1]), spr[0] / record_s, start + timedelta(seconds=offset_s))


def _first_record_bytes(columns: bytes, n_signals: int) -> int:
    spr_at = 216 * n_signals
    return sum(int(columns[spr_at + 8 * i : spr_at + 8 * (i + 1)]) for i in range(n_signals)) * 3


def _failed(path: Path, error: OSError) -> OutputError:
    return OutputError(
        f"cannot write the raw signal to {path} ({error.strerror or error}); free space and continue with "
        f"`streamstage run --resume {path.parent}`, or run with --no-raw."
    )


def raw_parts(folder: Path) -> list[Path]:
    """The raw files of a night folder, in order: ``raw.bdf``, ``raw-2.bdf``, ..."""
    first = Path(folder) / RAW_FILE
    parts = [first] if first.is_file() else []
    part = 2
    while (path := part_path(folder, part)).is_file():
        parts.append(path)
        part += 1
    return parts


def annotations_path(raw_path: Path) -> Path:
    return raw_path.with_name(raw_path.stem + ANNOTATIONS_SUFFIX)


def part_path(folder: Path, part: int) -> Path:
    return Path(folder) / (RAW_FILE if part == 1 else f"raw-{part}.bdf")
