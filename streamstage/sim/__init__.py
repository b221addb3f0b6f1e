"""Synthetic EEG for benchmarks, soak tests and the demo's synthetic night; not training data.

:class:`SyntheticEEG` turns a hypnogram into stage-typical EEG at any rate from 50 to 1000 Hz, streamed in
chunks of any size with identical samples; :func:`synthetic_hypnogram` makes a night structure to feed it.
"""

from __future__ import annotations

from streamstage.sim.generator import SyntheticEEG, generate
from streamstage.sim.hypnogram import synthetic_hypnogram
from streamstage.sim.montage import MONTAGES, Montage

__all__ = ["MONTAGES", "Montage", "SyntheticEEG", "generate", "synthetic_hypnogram"]
