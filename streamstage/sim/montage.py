"""Which channels the synthetic night has, and how much of each source every channel sees.

The generator builds a few shared sources (cortex, alpha, muscle, vertical and horizontal eye movements) and
mixes them into channels, so neighbouring channels are correlated as on a real headband but not identical:
alpha is strongest behind the ears, blinks and eye movements at the forehead, and a horizontal eye movement
has opposite polarity on the left and right frontal channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamstage.errors import ConfigError

SOURCES: tuple[str, ...] = ("cortex", "alpha", "emg", "eye_v", "eye_h")
"""The shared sources, in the column order of :attr:`Montage.weights`."""

CORTEX, ALPHA, EMG, EYE_V, EYE_H = range(len(SOURCES))


@dataclass(frozen=True)
class Montage:
    """Channel names and a mixing weight per channel and source."""

    ch_names: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if not self.ch_names or len(self.weights) != len(self.ch_names):
            raise ConfigError("A montage needs at least one channel and one row of weights per channel.")
        if any(len(row) != len(SOURCES) for row in self.weights):
            raise ConfigError(f"Each montage weight row needs {len(SOURCES)} values, one per {SOURCES}.")

    @property
    def matrix(self) -> np.ndarray:
        """Weights as an (n_channels, n_sources) array."""
        return np.asarray(self.weights, dtype=float)


MONTAGES: dict[str, Montage] = {
    # One frontal bipolar derivation, as in Sleep-EDF (Fpz-Cz) and most single-channel headbands.
    "fpz-cz": Montage(("Fpz-Cz",), ((1.0, 0.6, 0.6, 0.8, 0.3),)),
    # A Muse-like band: two temporal sites behind the ears and two frontal ones, referenced at Fpz.
    "muse": Montage(
        ("TP9", "AF7", "AF8", "TP10"),
        (
            (0.7, 1.0, 1.2, 0.1, -0.15),
            (1.0, 0.5, 0.5, 1.0, 0.9),
            (1.0, 0.5, 0.5, 1.0, -0.9),
            (0.7, 1.0, 1.2, 0.1, 0.15),
        ),
    ),
}


def resolve_montage(montage: str | Montage) -> Montage:
    """Accept a montage or the name of a built-in one."""
    if isinstance(montage, Montage):
        return montage
    try:
        return MONTAGES[montage]
    except KeyError:
        raise ConfigError(
            f"Unknown montage {montage!r}; use one of {sorted(MONTAGES)} or pass a Montage."
        ) from None
