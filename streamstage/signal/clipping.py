"""Clipping seen on the source channels of a derivation, where the derived signal hides it.

An amplifier at its rail sends a constant; the quality checks spot that as a run of identical samples at the
epoch's extreme. But a bipolar channel such as AF7-TP9 is the railed electrode *minus a live one*, which is
not constant at all, so the derived signal's check sees nothing. This meter runs the same measures on each
source channel, on the same epoch grid, and an epoch whose source clipped is flagged ``"clipped"``. Where
the source's physical range is known (an EDF header, a replay's channel metadata), samples at its ends count
as clipped too, whichever way the recording arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from streamstage.signal.path import Epoch, SignalConfig
from streamstage.signal.quality_meter import QualityMeter
from streamstage.signal.resample import sfreq_ratio


class SourceClipping:
    """Which epochs (by the signal path's index) had a clipped source channel."""

    def __init__(
        self,
        sfreq_hz: float,
        columns: list[int],
        config: SignalConfig,
        n_samples_in: int = 0,
        ranges_uv: Sequence[tuple[float, float] | None] = (),
    ) -> None:
        """``ranges_uv``: each stream channel's physical range in µV (None, or empty: unknown)."""
        self.columns = columns
        per_epoch = config.epoch_len * sfreq_ratio(sfreq_hz, config.model_sfreq)
        ranges = [ranges_uv[c] if c < len(ranges_uv) else None for c in columns]
        self._meter = QualityMeter(sfreq_hz, per_epoch, len(columns), config.quality, ranges)
        epoch = int(n_samples_in // per_epoch)
        self._meter.n_in, self._meter.epoch = n_samples_in, epoch  # join the grid mid-night (a new layout)
        self._clipped: set[int] = set()

    def push(self, raw_uv: np.ndarray, missing: np.ndarray) -> None:
        """Fold in ``(n, n_stream_channels)`` µV samples with their missing mask (``None``: all missing)."""
        first_epoch = self._meter.epoch
        finished = self._meter.push(raw_uv[:, self.columns], missing[:, self.columns])
        for offset, channels in enumerate(finished):
            if any(quality.flag == "clipped" for quality in channels):
                self._clipped.add(first_epoch + offset)

    def push_missing(self, n_samples: int) -> None:
        block = np.zeros((n_samples, max(self.columns) + 1))
        self.push(block, np.ones(block.shape, dtype=bool))

    def clipped(self, epoch_index: int) -> bool:
        """Whether that epoch's source clipped (asked once per epoch: the answer is then forgotten)."""
        if epoch_index in self._clipped:
            self._clipped.discard(epoch_index)
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "meter": self._meter.state_dict(),
            "clipped": sorted(self._clipped),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._meter.load_state_dict(state["meter"])
        self._clipped = {int(epoch) for epoch in state["clipped"]}


def with_source_clipping(epoch: Epoch, source_clipped: bool) -> Epoch:
    """The epoch as staged once its source channels are counted: a clipped source turns a good (or
    artifact) epoch into a clipped one, which then does not move the normaliser."""
    if not source_clipped or epoch.quality.flag not in ("good", "artifact"):
        return epoch
    reason = "a source channel of this derivation sat at its limit; check the electrode."
    return replace(epoch, quality=replace(epoch.quality, flag="clipped", reason=reason))
