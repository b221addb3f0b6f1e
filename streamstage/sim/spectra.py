"""Power spectral densities of the generator's stationary components, in µV²/Hz.

Each component is given by an rms amplitude and a spectral shape. Densities are normalised on a fixed
frequency grid rather than on the bins of one segment, so a component has the same density (and Welch band
powers the same values) at every sampling rate; a low rate simply does not see what lies above its Nyquist.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_GRID_HZ = np.arange(0.0, 500.0, 0.01)
"""Integration grid for normalising shapes: fine enough for a 0.25-Hz band, wide enough for 1000 Hz."""

PINK_LOW_HZ = 0.3
"""Below this the background is zero, as after a headband's hardware high-pass."""

PINK_KNEE_HZ = 40.0
"""Above this the background falls as 1/f³, as cortical EEG does, instead of 1/f."""

Shape = Callable[[np.ndarray], np.ndarray]


def _normalised(shape: Shape, rms_uv: float, freqs_hz: np.ndarray) -> np.ndarray:
    """Scale ``shape`` so that its integral over all frequencies is ``rms_uv`` squared."""
    area = float(np.sum(shape(_GRID_HZ)) * (_GRID_HZ[1] - _GRID_HZ[0]))
    return rms_uv**2 * shape(freqs_hz) / area


def _pink_shape(freqs_hz: np.ndarray) -> np.ndarray:
    safe = np.maximum(freqs_hz, PINK_LOW_HZ)
    shape = np.minimum(1.0, (PINK_KNEE_HZ / safe) ** 2) / safe
    return np.where(freqs_hz >= PINK_LOW_HZ, shape, 0.0)


def pink_density(freqs_hz: np.ndarray, rms_uv: float) -> np.ndarray:
    """The 1/f background every stage sits on."""
    return _normalised(_pink_shape, rms_uv, freqs_hz)


def band_density(freqs_hz: np.ndarray, lo_hz: float, hi_hz: float, rms_uv: float) -> np.ndarray:
    """A rhythm as a Gaussian bump whose ±2 SD span is ``[lo_hz, hi_hz]``: no brick-wall edges to ring."""
    centre, spread = (lo_hz + hi_hz) / 2, (hi_hz - lo_hz) / 4
    return _normalised(lambda f: np.exp(-0.5 * ((f - centre) / spread) ** 2), rms_uv, freqs_hz)


def emg_density(freqs_hz: np.ndarray, rms_uv: float) -> np.ndarray:
    """Muscle activity: broadband from about 20 Hz to 250 Hz, so beta and above."""

    def shape(f: np.ndarray) -> np.ndarray:
        rise = (f / 20.0) ** 4
        return rise / (1.0 + rise) / (1.0 + (f / 250.0) ** 4)

    return _normalised(shape, rms_uv, freqs_hz)


def lowpass_density(freqs_hz: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Unit-variance noise below ``cutoff_hz``: the slow drive of burst envelopes."""
    return _normalised(lambda f: (f <= cutoff_hz).astype(float), 1.0, freqs_hz)


def bin_amplitudes(density: np.ndarray, sfreq: float, n_samples: int) -> np.ndarray:
    """Per-bin amplitudes that give ``density`` when complex unit-variance noise goes through ``irfft``.

    With X_k of unit mean square, ``irfft(X * A, n)`` has variance sum(2 A_k²) / n², which must equal
    sum(density_k) · sfreq / n; the DC bin is dropped (the recording has no offset to speak of).
    """
    amplitudes = np.sqrt(density * sfreq * n_samples / 2.0)
    amplitudes[..., 0] = 0.0
    return amplitudes
