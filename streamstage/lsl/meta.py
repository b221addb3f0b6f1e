"""What a stream is: its identity, rate and per-channel labels and units, read from and written to LSL.

Channel meta-data follows the XDF convention (``desc/channels/channel/{label,unit,type}``) that muselsl,
OpenBCI, LabRecorder and our replay all use, so a label picked on the command line means the same thing
whichever bridge publishes the headband.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMAT_NAMES: tuple[str, ...] = (
    "undefined",
    "float32",
    "double64",
    "string",
    "int32",
    "int16",
    "int8",
    "int64",
)
"""liblsl's channel-format codes, by value."""


@dataclass(frozen=True)
class StreamLayout:
    """Identity and channel layout of one LSL stream, as resolved (labels need the full description)."""

    name: str
    type: str
    source_id: str
    hostname: str
    uid: str
    sfreq_hz: float
    """The nominal rate; 0 for an irregular stream."""
    channel_format: str
    labels: tuple[str, ...]
    units: tuple[str, ...]
    types: tuple[str, ...]
    physical_ranges: tuple[tuple[float, float] | None, ...] = ()
    """Each channel's physical range in its unit, where the sender says it (our replay of an EDF does)."""

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        """One line naming the stream well enough to pick it with ``--name`` or ``--source-id``."""
        rate = f"{self.sfreq_hz:g} Hz" if self.sfreq_hz > 0 else "irregular rate"
        source = f"source id {self.source_id!r}" if self.source_id else "no source id"
        return (
            f"{self.name!r} ({self.type or 'no type'}, {self.n_channels} ch, {rate}, {source}, "
            f"host {self.hostname!r})"
        )

    def same_channels(self, other: StreamLayout) -> bool:
        return (self.labels, self.units, self.sfreq_hz) == (other.labels, other.units, other.sfreq_hz)

    @classmethod
    def from_info(cls, info: Any) -> StreamLayout:
        """Read a ``pylsl.StreamInfo``; channels without a label are called ``ch1``, ``ch2``, ..."""
        n_channels = info.channel_count()
        labels, units, types, ranges = _read_channels(info.desc(), n_channels)
        code = info.channel_format()
        return cls(
            name=info.name(),
            type=info.type(),
            source_id=info.source_id(),
            hostname=info.hostname(),
            uid=info.uid(),
            sfreq_hz=float(info.nominal_srate()),
            channel_format=FORMAT_NAMES[code] if 0 <= code < len(FORMAT_NAMES) else "undefined",
            labels=tuple(label or f"ch{i + 1}" for i, label in enumerate(labels)),
            units=units,
            types=types,
            physical_ranges=ranges if any(r is not None for r in ranges) else (),
        )


def write_channels(
    info: Any,
    labels: Sequence[str],
    units: Sequence[str],
    types: Sequence[str],
    physical_ranges: Sequence[tuple[float, float] | None] = (),
) -> None:
    """Describe each channel of a ``pylsl.StreamInfo`` about to become an outlet; a channel's physical
    range (an EDF header's) goes in ``physical_min``/``physical_max``, so the receiver can spot clipping."""
    if not len(labels) == len(units) == len(types) == info.channel_count():
        raise ValueError("one label, unit and type is needed per channel")
    ranges = list(physical_ranges) or [None] * len(labels)
    channels = info.desc().append_child("channels")
    for label, unit, kind, limits in zip(labels, units, types, ranges, strict=True):
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", unit)
        channel.append_child_value("type", kind)
        if limits is not None:
            channel.append_child_value("physical_min", repr(float(limits[0])))
            channel.append_child_value("physical_max", repr(float(limits[1])))


def _read_channels(
    desc: Any, n_channels: int
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[tuple[float, float] | None, ...]]:
    """Labels, units, types and physical ranges from a description, padded with "" and None (a bridge may
    describe fewer channels)."""
    fields: list[tuple[str, str, str, tuple[float, float] | None]] = []
    channel = desc.child("channels").child("channel")
    while not channel.empty() and len(fields) < n_channels:
        label, unit, kind = (channel.child_value(key).strip() for key in ("label", "unit", "type"))
        fields.append((label, unit, kind, _physical_range(channel)))
        channel = channel.next_sibling("channel")
    fields += [("", "", "", None)] * (n_channels - len(fields))
    if not fields:
        return (), (), (), ()
    labels, units, types, ranges = zip(*fields, strict=True)
    return tuple(labels), tuple(units), tuple(types), tuple(ranges)


def _physical_range(channel: Any) -> tuple[float, float] | None:
    """A channel's ``physical_min``/``physical_max`` if both are numbers and the range is not empty."""
    try:
        low, high = (float(channel.child_value(key)) for key in ("physical_min", "physical_max"))
    except ValueError:
        return None
    return (low, high) if low < high else None
