"""What each stage looks like, as numbers: amplitudes in µV rms (events: peak µV) and rates per epoch.

Values follow the AASM scoring manual's descriptions and typical scalp amplitudes, not a fit to data: wake
has alpha bursts, beta, muscle tone and blinks; N1 theta, vertex waves and slow eye movements; N2 spindles
and K-complexes on a larger background; N3 high-voltage delta (well over 75 µV peak to peak); REM a
low-voltage mixed background with sawtooth waves, rapid eye movements and almost no muscle tone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

UNKNOWN = -1
"""Hypnogram code of an unscored epoch; simulated as movement time (wake with frequent artifacts)."""


@dataclass(frozen=True)
class Band:
    """A stationary rhythm on top of the background, ``rms_uv`` over its ``[lo_hz, hi_hz]`` span."""

    lo_hz: float
    hi_hz: float
    rms_uv: float


@dataclass(frozen=True)
class EventRate:
    """How often a transient of ``kind`` (a key of ``events.TEMPLATES``) occurs, and how tall it is."""

    kind: str
    per_epoch: float
    amp_uv: tuple[float, float]


@dataclass(frozen=True)
class StageProfile:
    """The content of one stage."""

    pink_uv: float
    bands: tuple[Band, ...] = ()
    alpha_burst_uv: float = 0.0
    alpha_burst_fraction: float = 0.0
    emg_uv: float = 0.0
    events: tuple[EventRate, ...] = ()
    artifacts_per_epoch: float = 0.0
    """Artifacts on top of the configured rate (only unscored epochs have any)."""


DELTA_HZ = (0.5, 4.0)
SLOW_DELTA_HZ = (0.5, 2.0)
THETA_HZ = (4.0, 8.0)
ALPHA_HZ = (8.0, 12.0)
SIGMA_HZ = (11.0, 16.0)
BETA_HZ = (16.0, 30.0)

WAKE = StageProfile(
    pink_uv=10.0,
    bands=(Band(*THETA_HZ, 2.0), Band(*ALPHA_HZ, 4.0), Band(*BETA_HZ, 4.0)),
    alpha_burst_uv=16.0,
    alpha_burst_fraction=0.5,
    emg_uv=8.0,
    events=(EventRate("blink", 2.0, (60.0, 150.0)), EventRate("rapid_eye_movement", 1.0, (30.0, 80.0))),
)

PROFILES: dict[int, StageProfile] = {
    0: WAKE,
    1: StageProfile(
        pink_uv=12.0,
        bands=(Band(*THETA_HZ, 9.0), Band(*ALPHA_HZ, 3.0), Band(*BETA_HZ, 2.5)),
        alpha_burst_uv=8.0,
        alpha_burst_fraction=0.15,
        emg_uv=4.0,
        events=(
            EventRate("vertex_wave", 0.6, (40.0, 90.0)),
            EventRate("slow_eye_movement", 0.8, (40.0, 100.0)),
        ),
    ),
    2: StageProfile(
        pink_uv=15.0,
        bands=(Band(*DELTA_HZ, 12.0), Band(*THETA_HZ, 6.0), Band(*SIGMA_HZ, 3.0), Band(*BETA_HZ, 1.5)),
        emg_uv=2.5,
        events=(EventRate("spindle", 2.0, (20.0, 45.0)), EventRate("k_complex", 0.7, (75.0, 150.0))),
    ),
    3: StageProfile(
        pink_uv=16.0,
        bands=(Band(*SLOW_DELTA_HZ, 42.0), Band(*THETA_HZ, 6.0), Band(*SIGMA_HZ, 1.5), Band(*BETA_HZ, 1.0)),
        emg_uv=2.0,
        events=(EventRate("spindle", 0.4, (15.0, 35.0)),),
    ),
    4: StageProfile(
        pink_uv=9.0,
        bands=(Band(*THETA_HZ, 7.0), Band(*ALPHA_HZ, 3.0), Band(*BETA_HZ, 3.0)),
        emg_uv=1.0,
        events=(
            EventRate("sawtooth", 1.2, (20.0, 40.0)),
            EventRate("rapid_eye_movement", 4.0, (50.0, 150.0)),
        ),
    ),
    UNKNOWN: replace(WAKE, emg_uv=2 * WAKE.emg_uv, artifacts_per_epoch=1.5),
}
"""Stage code (0 W, 1 N1, 2 N2, 3 N3, 4 REM, -1 unscored) -> profile."""
