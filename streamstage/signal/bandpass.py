"""Causal Butterworth band-pass that carries its state across chunks.

Runs at the input rate, before resampling, so the resampler never sees drift or mains far above the band.
Missing samples (NaN/Inf, or flagged by the source) are replaced by the channel's last valid value so one
dropout cannot poison the filter state for the rest of the night; the mask says where that happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import signal

from streamstage.errors import ConfigError
from streamstage.signal._state import restored_array

HIGH_EDGE_MAX_FRACTION = 0.45
"""The high edge is clipped below this fraction of the input rate (e.g. 22.5 Hz for a 50-Hz stream)."""


def design_bandpass(sfreq_hz: float, l_freq_hz: float, h_freq_hz: float, order: int) -> np.ndarray:
    """Second-order sections of a Butterworth band-pass, the high edge clipped for low input rates."""
    high_hz = min(h_freq_hz, HIGH_EDGE_MAX_FRACTION * sfreq_hz)
    if not 0 < l_freq_hz < high_hz:
        raise ConfigError(
            f"band-pass {l_freq_hz}-{high_hz} Hz is empty at {sfreq_hz} Hz; choose 0 < l_freq_hz < h_freq_hz."
        )
    return signal.butter(order, [l_freq_hz, high_hz], btype="bandpass", fs=sfreq_hz, output="sos")


def missing_mask(samples: np.ndarray, missing: np.ndarray | None) -> np.ndarray:
    """Samples the source flagged, plus any that are NaN or infinite."""
    invalid = ~np.isfinite(samples)
    return invalid if missing is None else invalid | np.asarray(missing, dtype=bool)


class Bandpass:
    """Band-pass filter for ``(n, n_channels)`` chunks; same output however the input is chunked.

    Each channel's filter starts in steady state at its first valid sample (``sosfilt_zi`` times that
    value), so a DC offset gives no start-up step; before a channel's first valid sample it outputs zeros.
    """

    def __init__(
        self,
        sfreq_hz: float,
        n_channels: int,
        l_freq_hz: float = 0.5,
        h_freq_hz: float = 30.0,
        order: int = 4,
    ) -> None:
        self.sos = design_bandpass(sfreq_hz, l_freq_hz, h_freq_hz, order)
        self.n_channels = n_channels
        self._zi_unit = signal.sosfilt_zi(self.sos)
        self._zi = np.zeros((len(self.sos), 2, n_channels))
        self._last_valid = np.zeros(n_channels)
        self._started = np.zeros(n_channels, dtype=bool)

    def push(self, samples: np.ndarray, missing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Filter one chunk; returns the filtered samples and the missing mask, both ``(n, n_channels)``."""
        data = np.asarray(samples, dtype=np.float64)
        mask = missing_mask(data, missing)
        held = self._hold(data, mask)
        if not len(held):
            return held.copy(), mask
        if self._started.all():
            filtered, self._zi = signal.sosfilt(self.sos, held, axis=0, zi=self._zi)
            return filtered, mask
        filtered = np.zeros_like(held)
        for channel in range(self.n_channels):
            first = 0
            if not self._started[channel]:
                valid = np.flatnonzero(~mask[:, channel])
                if not valid.size:
                    continue
                first = int(valid[0])
                self._zi[:, :, channel] = self._zi_unit * held[first, channel]
                self._started[channel] = True
            filtered[first:, channel], self._zi[:, :, channel] = signal.sosfilt(
                self.sos, held[first:, channel], zi=self._zi[:, :, channel]
            )
        return filtered, mask

    def _hold(self, data: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Replace missing samples by the last valid value of their channel (carried across chunks)."""
        if not mask.any():
            if len(data):
                self._last_valid = data[-1].copy()
            return data
        rows = np.arange(len(data))[:, None]
        source = np.maximum.accumulate(np.where(mask, -1, rows), axis=0)
        columns = np.arange(self.n_channels)[None, :]
        held = np.where(source >= 0, data[np.maximum(source, 0), columns], self._last_valid[None, :])
        if len(data):
            self._last_valid = held[-1].copy()
        return held

    def state_dict(self) -> dict[str, Any]:
        return {"zi": self._zi.copy(), "last_valid": self._last_valid.copy(), "started": self._started.copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._zi = restored_array(state, "zi", self._zi.shape, np.float64)
        self._last_valid = restored_array(state, "last_valid", (self.n_channels,), np.float64)
        self._started = restored_array(state, "started", (self.n_channels,), bool)
