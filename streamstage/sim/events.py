"""Transient waveforms: the graphoelements that make a stage recognisable, and the artifacts of a night.

Each template draws its own shape parameters from the epoch's generator and returns one waveform in µV, a
few seconds long at most, so an epoch can place it anywhere and still finish it within its fade-out tail.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from streamstage.sim.montage import CORTEX, EYE_H, EYE_V

MAX_ARTIFACT_S = 4.0
"""Longest artifact; an epoch keeps this much of its tail for the next one."""

Template = Callable[[np.random.Generator, float, float], np.ndarray]


def _time_s(duration_s: float, sfreq: float) -> np.ndarray:
    return np.arange(max(1, round(duration_s * sfreq))) / sfreq


def _gauss(t: np.ndarray, centre_s: float, width_s: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre_s) / width_s) ** 2)


def spindle(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A waxing-waning 11.5-15.5 Hz burst of 0.5-2 s (N2, some in N3)."""
    duration_s = rng.uniform(0.5, 2.0)
    t = _time_s(duration_s, sfreq)
    envelope = np.sin(np.pi * t / duration_s) ** 2
    return amp_uv * envelope * np.sin(2 * np.pi * rng.uniform(11.5, 15.5) * t + rng.uniform(0, 2 * np.pi))


def k_complex(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A sharp negative wave then a slower positive one, about a second in all (N2)."""
    t = _time_s(1.3, sfreq)
    width_s = rng.uniform(0.07, 0.12)
    return amp_uv * (-_gauss(t, 0.3, width_s) + 0.5 * _gauss(t, 0.3 + 5 * width_s, 2 * width_s))


def vertex_wave(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A sharp negative transient under 0.5 s (N1)."""
    t = _time_s(0.5, sfreq)
    width_s = rng.uniform(0.03, 0.05)
    return amp_uv * (-_gauss(t, 0.15, width_s) + 0.3 * _gauss(t, 0.15 + 3 * width_s, 1.5 * width_s))


def sawtooth_burst(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """2-5 s of triangular 3-6 Hz waves with a slow rise and a fast fall (REM)."""
    duration_s = rng.uniform(2.0, 5.0)
    t = _time_s(duration_s, sfreq)
    phase = (rng.uniform(3.0, 6.0) * t + rng.uniform()) % 1.0
    rise = 0.8
    wave = np.where(phase < rise, phase / rise, (1.0 - phase) / (1.0 - rise)) * 2.0 - 1.0
    return amp_uv * np.sin(np.pi * t / duration_s) * wave


def blink(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A monophasic frontal deflection of a few hundred milliseconds (wake)."""
    t = _time_s(0.6, sfreq)
    return amp_uv * _gauss(t, 0.25, rng.uniform(0.05, 0.09))


def rapid_eye_movement(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A fast rise then a slow decay, as a saccade looks through an AC-coupled amplifier (REM, wake)."""
    rise_s, decay_s = rng.uniform(0.05, 0.15), rng.uniform(0.4, 0.8)
    t = _time_s(5 * decay_s, sfreq)
    wave = (1.0 - np.exp(-t / rise_s)) * np.exp(-t / decay_s)
    return rng.choice((-1.0, 1.0)) * amp_uv * wave / wave.max()


def slow_eye_movement(rng: np.random.Generator, sfreq: float, amp_uv: float) -> np.ndarray:
    """A slow rolling deflection of 1.5-4 s (drowsiness, N1)."""
    duration_s = rng.uniform(1.5, 4.0)
    t = _time_s(duration_s, sfreq)
    return rng.choice((-1.0, 1.0)) * amp_uv * np.sin(np.pi * t / duration_s) ** 2


TEMPLATES: dict[str, tuple[int, Template]] = {
    "spindle": (CORTEX, spindle),
    "k_complex": (CORTEX, k_complex),
    "vertex_wave": (CORTEX, vertex_wave),
    "sawtooth": (CORTEX, sawtooth_burst),
    "blink": (EYE_V, blink),
    "rapid_eye_movement": (EYE_H, rapid_eye_movement),
    "slow_eye_movement": (EYE_H, slow_eye_movement),
}
"""Event kind -> (source it appears on, template)."""


def movement(rng: np.random.Generator, sfreq: float, n_channels: int) -> np.ndarray:
    """A 1-4 s movement: a large slow swing on every channel plus a broadband muscle burst."""
    duration_s = rng.uniform(1.0, MAX_ARTIFACT_S)
    t = _time_s(duration_s, sfreq)
    envelope = np.sin(np.pi * t / duration_s)
    swing = rng.choice((-1.0, 1.0)) * rng.uniform(100.0, 400.0) * envelope
    gains = rng.uniform(0.5, 1.5, size=(n_channels, 1))
    burst = rng.uniform(30.0, 100.0) * envelope * rng.standard_normal((n_channels, t.size))
    return gains * swing + burst


def electrode_pop(rng: np.random.Generator, sfreq: float, n_channels: int) -> np.ndarray:
    """A step that decays within a second, on one electrode only."""
    decay_s = rng.uniform(0.1, 0.6)
    t = _time_s(min(5 * decay_s, MAX_ARTIFACT_S), sfreq)
    waveforms = np.zeros((n_channels, t.size))
    waveforms[rng.integers(n_channels)] = (
        rng.choice((-1.0, 1.0)) * rng.uniform(100.0, 400.0) * np.exp(-t / decay_s)
    )
    return waveforms


def draw_artifact(rng: np.random.Generator, sfreq: float, n_channels: int) -> np.ndarray:
    """A movement (60 %) or an electrode pop (40 %), as (n_channels, n_samples) µV."""
    kind = movement if rng.uniform() < 0.6 else electrode_pop
    return kind(rng, sfreq, n_channels)
