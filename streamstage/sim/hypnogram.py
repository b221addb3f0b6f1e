"""A plausible hypnogram of any length, to drive the generator when no scored night is at hand.

A night is sleep-onset wake, then ~90-min cycles of N1 -> N2 -> N3 -> N2 -> REM in which N3 shrinks and REM
grows from cycle to cycle, with brief arousals, then final wake. Longer spans repeat nights with a wake gap.
"""

from __future__ import annotations

import numpy as np

from streamstage.errors import ConfigError

W, N1, N2, N3, REM = range(5)
EPOCHS_PER_MIN = 2


def _minutes(rng: np.random.Generator, mean_min: float, sd_min: float) -> int:
    """A stage bout in epochs, never negative."""
    return max(0, round(rng.normal(mean_min, sd_min) * EPOCHS_PER_MIN))


def _cycle(rng: np.random.Generator, number: int) -> list[int]:
    """One NREM-REM cycle; ``number`` 0 is the first of the night."""
    n3 = _minutes(rng, max(0.0, 40.0 - 13.0 * number), 5.0)
    rem = _minutes(rng, min(30.0, 10.0 + 8.0 * number), 4.0)
    lead_in = _minutes(rng, 1.0 if number == 0 else 2.5, 1.0) + 1
    n2 = max(EPOCHS_PER_MIN * 10, _minutes(rng, 90.0, 10.0) - n3 - rem - lead_in)
    cycle = [N1] * lead_in + [N2] * (n2 // 2) + [N3] * n3 + [N2] * (n2 - n2 // 2) + [REM] * rem
    arousals = np.flatnonzero(rng.uniform(size=len(cycle)) < 0.01)
    for position in arousals:
        cycle[position] = W
    if rng.uniform() < 0.5:
        cycle += [W] * int(rng.integers(1, 5))
    return cycle


def _night(rng: np.random.Generator, n_epochs: int) -> list[int]:
    """One night of ``n_epochs`` epochs, ending with a few minutes of wake."""
    night = [W] * _minutes(rng, 12.0, 5.0)
    number = 0
    while len(night) < n_epochs:
        night += _cycle(rng, number)
        number += 1
    night = night[:n_epochs]
    final_wake = min(n_epochs, _minutes(rng, 5.0, 2.0))
    night[n_epochs - final_wake :] = [W] * final_wake
    return night


def synthetic_hypnogram(
    hours: float, seed: int = 0, *, night_h: float = 8.0, wake_between_h: float = 1.0
) -> np.ndarray:
    """Stage codes (0 W .. 4 REM) per 30-s epoch for ``hours`` of recording, reproducible from ``seed``.

    Spans longer than ``night_h`` are consecutive nights separated by ``wake_between_h`` of wake (the last
    night cut short), so a 72-h soak test still sees full cycles in every part of it.
    """
    if hours <= 0 or night_h <= 0 or wake_between_h < 0:
        raise ConfigError("hours and night_h must be positive and wake_between_h not negative.")
    rng = np.random.default_rng(seed)
    n_total = round(hours * 60 * EPOCHS_PER_MIN)
    n_night = round(night_h * 60 * EPOCHS_PER_MIN)
    codes: list[int] = []
    while len(codes) < n_total:
        if codes:
            codes += [W] * round(wake_between_h * 60 * EPOCHS_PER_MIN)
        codes += _night(rng, n_night)
    return np.asarray(codes[:n_total], dtype=np.int64)
