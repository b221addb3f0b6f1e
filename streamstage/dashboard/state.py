"""What the dashboard shows, filled by the run loop one chunk and one epoch at a time.

Every buffer is bounded: the hypnogram keeps the last ``max_epochs`` epochs (24 h by default), the trace
the last ``trace_s`` seconds, latencies and events a fixed number of entries. Panels only read this state,
so they can be tested from a constructed one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from streamstage import STAGES
from streamstage.records import ProvisionalStage, StagedEpoch
from streamstage.stats import UNKNOWN, Agreement, SleepStats, agreement, sleep_stats


@dataclass
class AlarmStatus:
    """The smart alarm as the dashboard shows it: its window and its state in words (set by the alarm)."""

    window_start: datetime
    window_end: datetime
    state: str


@dataclass
class DashboardState:
    """The live night so far: set the plain attributes directly, use the methods for epochs, EEG, events."""

    stream_name: str = ""
    sfreq: float | None = None
    channel: str = ""
    elapsed_s: float = 0.0
    quality: str = "waiting for data"
    alarm: AlarmStatus | None = None
    epoch_s: float = 30.0
    trace_sfreq: float = 100.0
    trace_s: float = 10.0
    max_epochs: int = 2880
    max_latencies: int = 1000
    max_events: int = 50
    latest: StagedEpoch | None = field(default=None, init=False)
    provisional: ProvisionalStage | None = field(default=None, init=False)
    """The epoch in progress as a raw model reads it so far (transient: not kept by ``state_dict``)."""
    trace_uv: np.ndarray = field(init=False, repr=False)
    latencies: deque[float] = field(init=False, repr=False)
    events: deque[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.trace_uv = np.zeros(0)
        self.latencies = deque(maxlen=self.max_latencies)
        self.events = deque(maxlen=self.max_events)
        self._stages = np.full(self.max_epochs, UNKNOWN, dtype=np.int8)
        self._truth = np.full(self.max_epochs, UNKNOWN, dtype=np.int8)
        self._probs = np.full((self.max_epochs, len(STAGES)), np.nan, dtype=np.float32)
        self._quality_ok = np.zeros(self.max_epochs, dtype=bool)
        self._n = 0
        self._next_index: int | None = None
        self._cache: dict[str, Any] = {}

    @property
    def n_epochs(self) -> int:
        return self._n

    @property
    def stages(self) -> np.ndarray:
        """Predicted stage codes of the kept epochs, oldest first (-1 where an epoch never came)."""
        return self._stages[: self._n]

    @property
    def truth(self) -> np.ndarray:
        return self._truth[: self._n]

    @property
    def probs(self) -> np.ndarray:
        return self._probs[: self._n]

    @property
    def quality_ok(self) -> np.ndarray:
        return self._quality_ok[: self._n]

    @property
    def has_truth(self) -> bool:
        return bool(np.any(self.truth >= 0))

    def add_epoch(self, epoch: StagedEpoch, truth: int | None = None) -> None:
        """Record a staged epoch; epochs skipped since the previous one are kept as unknown."""
        if truth is not None and not UNKNOWN <= truth < len(STAGES):
            raise ValueError(f"truth must be a stage code -1..4 or None, got {truth}")
        if self._next_index is not None:
            for _ in range(min(epoch.index - self._next_index, self.max_epochs)):
                self._append(UNKNOWN, UNKNOWN, (np.nan,) * len(STAGES), quality_ok=False)
        self._append(epoch.stage, UNKNOWN if truth is None else truth, epoch.probs, epoch.quality_ok)
        self._next_index = epoch.index + 1
        self.latest = epoch
        if self.provisional is not None and self.provisional.index <= epoch.index:
            self.provisional = None  # that epoch is final now
        self.epoch_s = epoch.duration_s
        self.latencies.append(epoch.latency_s)

    def _append(self, stage: int, truth: int, probs: tuple[float, ...], quality_ok: bool) -> None:
        if self._n == self.max_epochs:
            for buffer in self._buffers().values():
                buffer[:-1] = buffer[1:]
            self._n -= 1
        self._stages[self._n] = stage
        self._truth[self._n] = truth
        self._probs[self._n] = probs
        self._quality_ok[self._n] = quality_ok
        self._n += 1
        self._cache.clear()

    def _buffers(self) -> dict[str, np.ndarray]:
        """The per-epoch arrays by their ``state_dict`` key."""
        return {
            "stages": self._stages,
            "truth": self._truth,
            "probs": self._probs,
            "quality_ok": self._quality_ok,
        }

    def set_provisional(self, provisional: ProvisionalStage) -> None:
        """Show the epoch in progress (a provisional stage from a raw model) until it is staged."""
        self.provisional = provisional

    def push_trace(self, samples_uv: ArrayLike) -> None:
        """Append filtered EEG (µV at ``trace_sfreq``), keeping the last ``trace_s`` seconds."""
        keep = round(self.trace_s * self.trace_sfreq)
        samples = np.asarray(samples_uv, dtype=np.float64).ravel()
        self.trace_uv = np.concatenate([self.trace_uv, samples])[-keep:]

    def log_event(self, text: str, when: datetime | None = None) -> None:
        """Add a line to the recent events (signal lost or back, hook failures), stamped with its time."""
        self.events.append(f"{(when or datetime.now()):%H:%M:%S} {text}")

    def stats(self) -> SleepStats:
        """Sleep statistics of the kept epochs, computed once per epoch however often the screen redraws."""
        if "stats" not in self._cache:
            self._cache["stats"] = sleep_stats(self.stages, self.epoch_s)
        return self._cache["stats"]

    def agreement(self) -> Agreement:
        """Agreement of the predictions with the reference hypnogram over the epochs that have one."""
        if "agreement" not in self._cache:
            self._cache["agreement"] = agreement(self.stages, self.truth)
        return self._cache["agreement"]

    def state_dict(self) -> dict[str, Any]:
        """The night so far, for checkpoint and resume (the trace is transient and not kept)."""
        return {
            **{key: buffer[: self._n].copy() for key, buffer in self._buffers().items()},
            "next_index": -1 if self._next_index is None else self._next_index,
            "epoch_s": self.epoch_s,
            "latencies": list(self.latencies),
            "events": list(self.events),
            "latest": None if self.latest is None else asdict(self.latest),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n_saved = len(state["stages"])
        n = min(n_saved, self.max_epochs)
        for key, buffer in self._buffers().items():
            buffer[:n] = np.asarray(state[key])[n_saved - n :]
        self._n = n
        self._next_index = None if int(state["next_index"]) < 0 else int(state["next_index"])
        self.epoch_s = float(state["epoch_s"])
        self.latencies = deque(state["latencies"], maxlen=self.max_latencies)
        self.events = deque(state["events"], maxlen=self.max_events)
        latest = state["latest"]
        self.latest = None if latest is None else StagedEpoch(**{**latest, "probs": tuple(latest["probs"])})
        self._cache.clear()
