"""Sleep onset, defined once and shared by the alarm ("has the sleeper slept?") and the event hooks.

Definition (the common scoring conventions, combined): sleep is confirmed by ``run_epochs`` (default 3)
consecutive sleep epochs (N1, N2, N3 or REM) or by the first N2 epoch, whichever comes first, and onset is
placed at the start of that sleep run. A lone N1 epoch while dozing off therefore does not count, but falling
straight into N2 does (``W N1 N2`` puts onset at the N1).
Only good-quality epochs count; a bad or missing epoch breaks a run, so a flat signal never "falls asleep".
"""

from __future__ import annotations

from typing import Any

from streamstage.records import StagedEpoch

WAKE, N2 = 0, 2
DEFAULT_ONSET_EPOCHS = 3


class SleepOnsetTracker:
    """Takes epochs in order; :meth:`update` returns ``(index, start_s)`` of the onset epoch once, when
    onset is confirmed, and None otherwise."""

    def __init__(self, run_epochs: int = DEFAULT_ONSET_EPOCHS) -> None:
        if run_epochs < 1:
            raise ValueError("run_epochs must be at least 1")
        self.run_epochs = run_epochs
        self.onset_index: int | None = None
        self.onset_s: float | None = None
        self.seen_n2 = False
        self._run: list[tuple[int, float]] = []  # (index, start_s) of the current sleep run, < run_epochs
        self._last_index: int | None = None

    @property
    def asleep(self) -> bool:
        return self.onset_index is not None

    def update(self, epoch: StagedEpoch) -> tuple[int, float] | None:
        contiguous = self._last_index is not None and epoch.index == self._last_index + 1
        self._last_index = epoch.index
        is_sleep = epoch.quality_ok and epoch.stage != WAKE
        self.seen_n2 = self.seen_n2 or (epoch.quality_ok and epoch.stage == N2)
        if self.asleep:
            return None
        if not is_sleep:
            self._run = []
            return None
        here = (epoch.index, epoch.start_s)
        self._run = [*self._run, here] if contiguous else [here]
        if epoch.stage == N2 or len(self._run) >= self.run_epochs:
            self.onset_index, self.onset_s = onset = self._run[0]
            self._run = []
            return onset
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "run_epochs": self.run_epochs,
            "onset_index": self.onset_index,
            "onset_s": self.onset_s,
            "seen_n2": self.seen_n2,
            "run": [list(item) for item in self._run],
            "last_index": self._last_index,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_epochs = int(state["run_epochs"])
        self.onset_index = None if state["onset_index"] is None else int(state["onset_index"])
        self.onset_s = None if state["onset_s"] is None else float(state["onset_s"])
        self.seen_n2 = bool(state["seen_n2"])
        self._run = [(int(index), float(start_s)) for index, start_s in state["run"]]
        self._last_index = None if state["last_index"] is None else int(state["last_index"])
