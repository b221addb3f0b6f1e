"""YASA's offline staging (``yasa.SleepStaging``, EEG only) on the same synthetic night, for its time per
night beside ours.

YASA is a peer, not a dependency: it (with mne and lightgbm) is installed only in the bench environment
(docs/benchmarks.md), and this row is skipped with a note where ``import yasa`` fails. One short warm-up
call runs first, untimed, so numba's one-off compilation is not counted against YASA.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

WARMUP_S = 600.0
SETUP_HINT = (
    "python -m venv .venv-bench && .venv-bench/bin/pip install -c constraints.txt -e . yasa, "
    "then run the bench with .venv-bench/bin/python tools/bench.py"
)


def bench_yasa(night_uv: np.ndarray, sfreq_hz: float, channel: str) -> dict[str, Any]:
    """Time ``SleepStaging(raw, eeg_name=channel).predict()`` on ``night_uv`` ``(n_samples,)`` in µV."""
    try:
        import mne
        import yasa
    except ImportError as error:
        return {
            "skipped": f"YASA is not installed in this environment ({error}); to include it: {SETUP_HINT}."
        }

    def stage(samples_uv: np.ndarray) -> int:
        info = mne.create_info([channel], sfreq_hz, ch_types=["eeg"])
        raw = mne.io.RawArray(samples_uv[None].astype(np.float64) * 1e-6, info, verbose="error")
        with warnings.catch_warnings():  # its bundled classifiers were pickled by an older scikit-learn
            warnings.simplefilter("ignore")
            return len(yasa.SleepStaging(raw, eeg_name=channel).predict())

    stage(night_uv[: round(WARMUP_S * sfreq_hz)])
    started = time.perf_counter()
    n_epochs = stage(night_uv)
    seconds = time.perf_counter() - started
    duration_s = len(night_uv) / sfreq_hz
    return {
        "yasa": yasa.__version__,
        "hours": duration_s / 3600,
        "sfreq_hz": sfreq_hz,
        "epochs": n_epochs,
        "seconds": seconds,
        "x_realtime": duration_s / seconds,
    }
