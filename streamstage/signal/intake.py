"""The stream intake: a source's own samples in, the staged channels in µV with their missing mask out.

Every way a recording reaches the pipeline (a live LSL inlet, an EDF replayed over LSL, ``stage`` on a
file, the benchmarks, the tests) passes this one object, so the same recording gets the same samples and
the same quality flags whichever way it arrives. It takes plain values (:class:`StreamFormat`: labels,
units, rate, physical ranges; the montage), and does, in order:

1. hold the first seconds until each channel's unit is fixed (from the metadata, else from the amplitude);
2. put time-stamped samples on the regular grid (:mod:`streamstage.signal.timing`; a file's samples are on
   it already), gaps as missing slots, a clock reset as a new segment;
3. scale to µV, turn Inf bursts into missing samples, watch each source channel for clipping (its physical
   range where known), derive the staged channels and their missing mask (either source missing).

Its state (grid, units, clipping meter, sample count) goes into the night's saved state for resume.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamstage.signal.channels import Montage
from streamstage.signal.clipping import SourceClipping
from streamstage.signal.grid import RegularChunk, TimingCounters
from streamstage.signal.montage_choice import pick_montage
from streamstage.signal.path import SignalConfig
from streamstage.signal.timing import make_regularizer
from streamstage.signal.unit_choice import UnitDecision, decide_units, staged_sources

IRREGULAR_GRID_HZ = 100.0
"""An irregular-rate stream is interpolated onto this grid (the model rate)."""
RAIL_TOLERANCE = 1e-5
"""Relative margin inside a physical range that still counts as at the rail (float32 rounding)."""
UNIT_PROBE_S = 5.0
"""Seconds of signal looked at before the units are fixed (inferred where the stream does not say)."""


@dataclass(frozen=True)
class StreamFormat:
    """What a source says about itself: per channel a label, a unit and (where known) a physical range."""

    labels: tuple[str, ...]
    units: tuple[str, ...]
    sfreq_hz: float
    """The nominal rate; 0 for an irregular stream."""
    physical_ranges: tuple[tuple[float, float] | None, ...] = ()
    """Each channel's physical range in its own unit (an EDF header's); empty or None where unknown."""

    def __post_init__(self) -> None:
        if len(self.units) != len(self.labels):
            raise ValueError(f"{len(self.units)} units for {len(self.labels)} channels")
        if self.physical_ranges and len(self.physical_ranges) != len(self.labels):
            raise ValueError(f"{len(self.physical_ranges)} physical ranges for {len(self.labels)} channels")

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @property
    def grid_hz(self) -> float:
        """The rate of the regular grid the samples are put on."""
        return self.sfreq_hz if self.sfreq_hz > 0 else IRREGULAR_GRID_HZ


@dataclass(frozen=True)
class IntakeBlock:
    """Consecutive grid samples ready for the signal path, all from one segment of the stream's clock."""

    derived_uv: np.ndarray
    """``(n, n_staged)`` float64 µV, NaN where missing."""
    missing: np.ndarray
    """``(n, n_staged)`` bool."""
    source_uv: np.ndarray | None
    """``(n, n_stream_channels)`` µV as received (for the raw recording); None for a bridged gap."""
    times_s: np.ndarray | None = None
    """``(n,)`` stream time of each slot; None for a file's samples and for a bridged gap."""
    new_segment: bool = False
    """The stream's clock restarted at this block's first slot (a break the caller bridges)."""
    real: np.ndarray | None = None
    """``(n,)`` bool: slots that hold at least one received value (None: all of them)."""

    def __len__(self) -> int:
        return len(self.derived_uv)

    @property
    def first_real(self) -> int | None:
        """Offset of the first slot with a received value, None if the block has none."""
        if self.real is None:
            return 0 if len(self) else None
        hits = np.flatnonzero(self.real)
        return int(hits[0]) if hits.size else None


@dataclass
class IntakeOutput:
    """What one push produced: blocks to stage, and things the user should be told (kind, message)."""

    blocks: list[IntakeBlock] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)


class StreamIntake:
    """One stream's intake; see the module docstring. ``first_index`` joins a night mid-way (a new layout
    after a reconnect): the index of the next sample on the night's signal path."""

    def __init__(
        self,
        stream: StreamFormat,
        montage: Montage,
        config: SignalConfig | None = None,
        first_index: int = 0,
    ) -> None:
        self.stream = stream
        self.montage = montage
        self.config = config or SignalConfig()
        self.n_samples = first_index
        """Grid samples handed out so far (the signal path's input count)."""
        self._regularizer = make_regularizer(stream.n_channels, stream.sfreq_hz, IRREGULAR_GRID_HZ)
        self._units: UnitDecision | None = None
        self._clipping: SourceClipping | None = None
        self._probe: list[tuple[np.ndarray, np.ndarray | None]] = []
        self._rate_noticed = False

    @classmethod
    def for_model(
        cls,
        stream: StreamFormat,
        model_channels: Sequence[str],
        wanted: Sequence[str] | None = None,
        reference: str | None = None,
        config: SignalConfig | None = None,
        first_index: int = 0,
    ) -> StreamIntake:
        """The intake for a model: the user's channels, else the model's, else the nearest frontal one."""
        montage = pick_montage(stream.labels, model_channels, wanted, reference)
        return cls(stream, montage, config, first_index)

    @property
    def grid_hz(self) -> float:
        return self._regularizer.sfreq_hz

    @property
    def units_fixed(self) -> bool:
        return self._units is not None

    @property
    def unit_factors(self) -> tuple[float, ...] | None:
        return None if self._units is None else self._units.factors

    @property
    def counters(self) -> TimingCounters:
        """What the grid did to the input (filled, dropped, gaps, resets), for the night's report."""
        return self._regularizer.counters

    # -- input ----------------------------------------------------------------------------------------
    def push(self, samples: np.ndarray, timestamps: np.ndarray) -> IntakeOutput:
        """Time-stamped samples ``(n, n_channels)`` in the stream's units (a live stream)."""
        return self._take(np.asarray(samples), np.asarray(timestamps, dtype=np.float64))

    def push_regular(self, samples: np.ndarray) -> IntakeOutput:
        """Samples already on the grid, in the stream's units (a recorded file read in order)."""
        return self._take(np.asarray(samples), None)

    def flush(self) -> IntakeOutput:
        """End of the stream: fix the units from whatever was seen, and release what was held."""
        if self._units is not None or not self._probe:
            return IntakeOutput()
        return self._release(IntakeOutput())

    def gap(self, n_samples: int) -> IntakeBlock:
        """``n_samples`` missing samples for a break the grid could not fill (bridged on the night's
        own time axis by the caller)."""
        if self._clipping is not None:
            self._clipping.push_missing(n_samples)
        self.n_samples += n_samples
        shape = (n_samples, len(self.montage.labels))
        return IntakeBlock(np.full(shape, np.nan), np.ones(shape, dtype=bool), None)

    def clipped(self, epoch_index: int) -> bool:
        """Whether a source channel of that epoch (the signal path's index) clipped; asked once per epoch."""
        return self._clipping is not None and self._clipping.clipped(epoch_index)

    def _take(self, samples: np.ndarray, timestamps: np.ndarray | None) -> IntakeOutput:
        if samples.ndim != 2 or samples.shape[1] != self.stream.n_channels:
            raise ValueError(f"expected (n, {self.stream.n_channels}) samples, got {samples.shape}")
        out = IntakeOutput()
        if self._units is None:
            self._probe.append((samples, timestamps))
            if sum(len(chunk) for chunk, _ in self._probe) < UNIT_PROBE_S * self.stream.grid_hz:
                return out
            return self._release(out)
        self._grid(samples, timestamps, out)
        return out

    def _release(self, out: IntakeOutput) -> IntakeOutput:
        """Fix the units from the held first seconds, then put those seconds through."""
        held, self._probe = self._probe, []
        probe = np.concatenate([np.asarray(chunk, dtype=np.float64) for chunk, _ in held])
        self._units = decide_units(self.stream.labels, self.stream.units, self.montage, probe)
        self._clipping = SourceClipping(
            self.grid_hz, staged_sources(self.montage), self.config, self.n_samples, self._ranges_uv()
        )
        out.notices += [("units_notice", notice) for notice in self._units.notices]
        for chunk, stamps in held:
            self._grid(chunk, stamps, out)
        return out

    def _ranges_uv(self) -> list[tuple[float, float] | None]:
        """The physical ranges in µV, drawn in by a hair: a value at the rail that crossed LSL as float32
        arrives rounded to either side of it."""
        assert self._units is not None
        ranges = self.stream.physical_ranges or (None,) * self.stream.n_channels
        limits: list[tuple[float, float] | None] = []
        for declared, factor in zip(ranges, self._units.factors, strict=True):
            if declared is None:
                limits.append(None)
                continue
            low, high = sorted((declared[0] * factor, declared[1] * factor))
            hair = RAIL_TOLERANCE * max(abs(low), abs(high))
            limits.append((low + hair, high - hair))
        return limits

    def _grid(self, samples: np.ndarray, timestamps: np.ndarray | None, out: IntakeOutput) -> None:
        if timestamps is None:
            values = np.asarray(samples, dtype=np.float64)
            out.blocks.append(self._block(values, np.isnan(values), None, None, False))
            return
        regular = self._regularizer.push(samples, timestamps)
        notice = getattr(self._regularizer, "rate_notice", "")
        if notice and not self._rate_noticed:
            self._rate_noticed = True
            out.notices.append(("rate_warning", notice))
        for first, last in _pieces(regular):
            out.blocks.append(
                self._block(
                    regular.samples[first:last],
                    regular.missing[first:last],
                    regular.times[first:last],
                    ~regular.empty_slots[first:last],
                    first in regular.segment_starts,
                )
            )

    def _block(
        self,
        values: np.ndarray,
        missing: np.ndarray,
        times_s: np.ndarray | None,
        real: np.ndarray | None,
        new_segment: bool,
    ) -> IntakeBlock:
        assert self._units is not None and self._clipping is not None
        source_uv = values * np.asarray(self._units.factors)
        source_uv[~np.isfinite(source_uv)] = np.nan  # Inf bursts become missing samples, like NaN ones
        source_missing = missing | np.isnan(source_uv)
        self._clipping.push(source_uv, source_missing)
        derived = self.montage.apply(source_uv)
        derived_missing = self._derived_missing(source_missing) | np.isnan(derived)
        self.n_samples += len(values)
        return IntakeBlock(derived, derived_missing, source_uv, times_s, new_segment, real)

    def _derived_missing(self, missing: np.ndarray) -> np.ndarray:
        """A derived sample is missing when either of its source samples is."""
        columns = []
        for derivation in self.montage.derivations:
            column = missing[:, derivation.positive]
            if derivation.reference is not None:
                column = column | missing[:, derivation.reference]
            columns.append(column)
        return np.stack(columns, axis=1)

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Only once the units are fixed (a night saves its state after its first epoch)."""
        assert self._units is not None and self._clipping is not None
        return {
            "n_samples": self.n_samples,
            "unit_factors": list(self._units.factors),
            "regularizer": self._regularizer.state_dict(),
            "clipping": self._clipping.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Raises KeyError/TypeError/ValueError on a damaged state (the caller says which file)."""
        factors = tuple(float(f) for f in state["unit_factors"])
        if len(factors) != self.stream.n_channels:
            raise ValueError(f"{len(factors)} unit factors for {self.stream.n_channels} channels")
        self._units = UnitDecision(factors)
        self._probe = []
        self.n_samples = int(state["n_samples"])
        self._regularizer.load_state_dict(state["regularizer"])
        self._clipping = SourceClipping(
            self.grid_hz, staged_sources(self.montage), self.config, self.n_samples, self._ranges_uv()
        )
        self._clipping.load_state_dict(state["clipping"])


def _pieces(regular: RegularChunk) -> list[tuple[int, int]]:
    """``(first, last)`` row ranges of a chunk, split where a new segment (clock reset) begins."""
    cuts = sorted({0, *regular.segment_starts, len(regular)})
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def file_format(
    labels: Sequence[str], sfreq_hz: float, ranges_uv: Sequence[tuple[float, float] | None]
) -> StreamFormat:
    """A recorded file's channels as a :class:`StreamFormat`: read in µV, at one rate, with header ranges."""
    return StreamFormat(tuple(labels), ("uV",) * len(labels), float(sfreq_hz), tuple(ranges_uv))
