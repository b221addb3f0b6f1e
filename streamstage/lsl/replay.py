"""Publish a recording as a live LSL stream, paced like the headband it came from.

Sample ``i`` is stamped with the exact stream time ``t0 + i / sfreq`` (each chunk is pushed with the stamp
of its last sample; liblsl derives the others from the nominal rate), whatever the speed, so a replayed
night reaches the live pipeline with the same samples and time axis as reading the file. Pacing is against
the LSL clock: chunk ``k`` is due at ``t0 + (its last sample) / sfreq / speed``, computed from ``t0`` each
time, so the sleep() overshoots of a night never add up. An optional hypnogram goes out on a second,
``Markers`` stream: one stage name per epoch, stamped at the epoch's start in the same clock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from streamstage import STAGES
from streamstage.errors import ChannelError
from streamstage.lsl.meta import write_channels
from streamstage.lsl.outlets import open_outlet
from streamstage.lsl.sources import SampleSource

INDEX_LABEL = "sample_index"
"""Label of the optional first channel counting samples (exact in float32 up to 2**24 samples)."""
UNKNOWN_MARKER = "?"
"""Marker of an epoch the hypnogram leaves unscored."""
_WAIT_STEP_S = 0.1


class StageTrack(Protocol):
    """A hypnogram as :func:`streamstage.io.hypnogram.read_hypnogram` returns it."""

    stages: np.ndarray
    epoch_s: float
    start_s: float


class ReplayThread:
    """Publishes ``source`` from a background thread; used by ``streamstage replay``, the demo and tests.

    ``speed`` 1 is real time, 0 (or inf) as fast as possible. ``done`` is set once everything is pushed
    (or the replay was stopped, or failed); the outlets then stay up for ``linger_s`` (or until
    :meth:`stop`) so consumers can drain them.
    ``wait_for_consumer_s`` holds the start (and ``t0``) until an inlet connects, so nothing is pushed
    into the void. :meth:`join` re-raises what failed in the thread.
    """

    def __init__(
        self,
        source: SampleSource,
        speed: float = 1.0,
        *,
        name: str = "streamstage-replay",
        labels: Sequence[str] | None = None,
        chunk_s: float | None = None,
        loop: bool = False,
        hypnogram: StageTrack | None = None,
        include_index: bool = False,
        wait_for_consumer_s: float = 0.0,
        linger_s: float = 2.0,
        buffer_s: float = 360.0,
    ) -> None:
        self.source = source
        self.speed = math.inf if speed in (0, math.inf) else float(speed)
        if not self.speed > 0:
            raise ValueError(f"speed must be positive (0 for as fast as possible), got {speed}")
        self.name = name
        self.labels = tuple(labels) if labels else source.labels
        unknown = [label for label in self.labels if label not in source.labels]
        if unknown:
            raise ChannelError(
                f"no channel {', '.join(map(repr, unknown))} to replay; the channels are: "
                f"{', '.join(source.labels)}."
            )
        self.chunk_s = chunk_s or (1.0 if math.isinf(self.speed) else 0.1)
        self.loop = loop
        self.hypnogram = hypnogram
        self.include_index = include_index
        self.wait_for_consumer_s = wait_for_consumer_s
        self.linger_s = linger_s
        self.buffer_s = buffer_s
        self.done = threading.Event()
        self.t0 = math.nan
        """Stream time of sample 0 (LSL clock); NaN until the replay starts."""
        self.samples_sent = 0
        self.markers_sent = 0
        self.error: BaseException | None = None
        self._marker_pass = 0
        self._marker_epoch = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replay {name}", daemon=True)

    @property
    def last_timestamp(self) -> float:
        """Stamp of the last sample pushed: ``t0 + (samples_sent - 1) / sfreq``."""
        return self.t0 + (self.samples_sent - 1) / self.source.sfreq_hz

    def start(self) -> ReplayThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop pushing (if still at it) and close the outlets."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            self._publish()
        except BaseException as error:  # handed to join(): a thread must not die silently
            self.error = error
        finally:
            self.done.set()

    def _publish(self) -> None:
        import pylsl

        data = open_outlet(self._data_info(), self.buffer_s)
        track = self.hypnogram
        markers = (open_outlet(self._marker_info()), track) if track is not None else None
        self._wait_for_consumer(data)
        self.t0 = pylsl.local_clock()
        sfreq = self.source.sfreq_hz
        for pass_start, block in self._blocks():
            end = self.samples_sent + len(block)
            if self._stop.wait(max(0.0, self.t0 + (end - 1) / sfreq / self.speed - pylsl.local_clock())):
                return
            if markers is not None:
                self._push_markers(*markers, pass_start, end)
            data.push_chunk(self._with_index(block), self.t0 + (end - 1) / sfreq)
            self.samples_sent = end
        self.done.set()
        self._stop.wait(self.linger_s)

    def _wait_for_consumer(self, outlet: Any) -> None:
        waited = 0.0
        while waited < self.wait_for_consumer_s and not self._stop.is_set():
            if outlet.wait_for_consumers(_WAIT_STEP_S):
                return
            waited += _WAIT_STEP_S

    def _blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample of this pass, block) over the recording, once or until stopped with ``loop``."""
        while True:
            pass_start = self.samples_sent
            for block in self.source.iter_chunks(self.labels, self.chunk_s):
                yield pass_start, block
            if not self.loop or self.samples_sent == pass_start:
                return

    def _push_markers(self, outlet: Any, track: StageTrack, pass_start: int, end: int) -> None:
        """Markers of this pass's epochs that start before sample ``end``, stamped at their start."""
        if pass_start != self._marker_pass:
            self._marker_pass, self._marker_epoch = pass_start, 0
        sfreq = self.source.sfreq_hz
        while self._marker_epoch < len(track.stages):
            start = pass_start + (track.start_s + self._marker_epoch * track.epoch_s) * sfreq
            if start >= end:
                return
            code = int(track.stages[self._marker_epoch])
            outlet.push_sample([STAGES[code] if code >= 0 else UNKNOWN_MARKER], self.t0 + start / sfreq)
            self._marker_epoch += 1
            self.markers_sent += 1

    def _with_index(self, block: np.ndarray) -> np.ndarray:
        if not self.include_index:
            return np.asarray(block, dtype=np.float32)
        index = np.arange(self.samples_sent, self.samples_sent + len(block), dtype=np.float32)
        return np.column_stack([index, block]).astype(np.float32)

    def _data_info(self) -> Any:
        import pylsl

        unit_of = dict(zip(self.source.labels, self.source.units, strict=True))
        range_of = dict(zip(self.source.labels, self.source.physical_ranges, strict=False))
        labels = list(self.labels)
        units = [unit_of[label] for label in labels]
        types = ["EEG"] * len(labels)
        ranges = [range_of.get(label) for label in labels]
        if self.include_index:
            labels, units, types = [INDEX_LABEL, *labels], ["samples", *units], ["misc", *types]
            ranges = [None, *ranges]
        info = pylsl.StreamInfo(
            self.name, "EEG", len(labels), self.source.sfreq_hz, "float32", self.source.source_id
        )
        write_channels(info, labels, units, types, ranges)
        return info

    def _marker_info(self) -> Any:
        import pylsl

        source_id = f"{self.source.source_id}-stages"
        return pylsl.StreamInfo(
            f"{self.name}-stages", "Markers", 1, pylsl.IRREGULAR_RATE, "string", source_id
        )
