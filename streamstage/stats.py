"""Sleep statistics of a hypnogram, cheap enough for the dashboard to recompute at every epoch.

A hypnogram here is a 1-D sequence of int stage codes, ``0 W, 1 N1, 2 N2, 3 N3, 4 REM`` (the order of
:data:`streamstage.STAGES`) and ``-1`` for an unknown epoch (no prediction, or no expert label). Everything
is vectorised numpy, O(n_epochs): a 12-h night (1440 epochs) costs well under a millisecond.

Definitions (AASM scoring manual, with the recording standing in for lights-off to lights-on):

- *time in bed*: every epoch of the recording, unknown ones included;
- *sleep onset*: the start of the first epoch of any sleep stage (N1, N2, N3 or REM); the latency is
  counted from the start of the recording;
- *total sleep time* (TST): all N1, N2, N3 and REM epochs; unknown epochs count neither as sleep nor wake;
- *sleep efficiency*: TST over time in bed;
- *WASO*: W epochs after sleep onset, up to the end of the recording;
- *REM latency*: from sleep onset to the first REM epoch;
- *sleep cycles*: see :func:`count_cycles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from streamstage import STAGES
from streamstage.errors import HypnogramError

UNKNOWN = -1
WAKE, N1, N2, N3, REM = range(len(STAGES))

CYCLE_MIN_NREM_S = 15 * 60.0
"""A cycle needs at least this much NREM sleep (N1-N3) since the previous REM episode..."""
CYCLE_MIN_REM_S = 5 * 60.0
"""...followed by a REM episode of at least this much REM."""
REM_MERGE_GAP_S = 15 * 60.0
"""REM epochs closer than this belong to one REM episode (short awakenings or N2 inside REM sleep)."""


def as_stage_codes(stages: ArrayLike) -> np.ndarray:
    """Validate a hypnogram and return it as a 1-D int64 array."""
    codes = np.asarray(stages)
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes.ndim != 1 or codes.dtype.kind not in "iu":
        raise HypnogramError(
            f"a hypnogram must be a 1-D sequence of integer stage codes, got {codes.dtype} of shape "
            f"{codes.shape}: map stage names to codes 0-4 (W, N1, N2, N3, REM) and -1 for unknown"
        )
    if codes.min() < UNKNOWN or codes.max() >= len(STAGES):
        raise HypnogramError(
            f"stage codes must lie in -1..4 (unknown, W, N1, N2, N3, REM), found "
            f"{codes.min()}..{codes.max()}: check the hypnogram's stage mapping"
        )
    return codes.astype(np.int64, copy=False)


@dataclass(frozen=True)
class SleepStats:
    """The night's statistics in seconds; ``None`` where a quantity is undefined (e.g. no sleep yet).

    ``stage_s`` holds the time in each of :data:`~streamstage.STAGES`, in that order.
    """

    epoch_s: float
    n_epochs: int
    time_in_bed_s: float
    unknown_s: float
    sleep_onset_latency_s: float | None
    total_sleep_s: float
    efficiency: float | None
    waso_s: float
    stage_s: tuple[float, ...]
    rem_latency_s: float | None
    n_cycles: int

    def percent_of_sleep(self, stage: int) -> float | None:
        """Share of TST spent in a sleep stage, in percent; ``None`` for W or before any sleep."""
        if stage == WAKE or self.total_sleep_s == 0:
            return None
        return 100.0 * self.stage_s[stage] / self.total_sleep_s


def sleep_stats(stages: ArrayLike, epoch_s: float = 30.0) -> SleepStats:
    """Compute :class:`SleepStats` for a hypnogram of ``epoch_s``-second epochs."""
    if not epoch_s > 0:
        raise HypnogramError(f"epoch length must be positive, got {epoch_s} s: use the scoring epoch (30 s)")
    codes = as_stage_codes(stages)
    counts = np.bincount(codes + 1, minlength=len(STAGES) + 1)
    sleep_epochs = np.flatnonzero(codes >= N1)
    onset = int(sleep_epochs[0]) if sleep_epochs.size else None
    total_sleep_s = float(sleep_epochs.size * epoch_s)
    time_in_bed_s = float(codes.size * epoch_s)

    waso_s = 0.0
    rem_latency_s = None
    if onset is not None:
        waso_s = float(np.count_nonzero(codes[onset:] == WAKE) * epoch_s)
        rem_epochs = np.flatnonzero(codes == REM)
        if rem_epochs.size:
            rem_latency_s = float((rem_epochs[0] - onset) * epoch_s)

    return SleepStats(
        epoch_s=float(epoch_s),
        n_epochs=int(codes.size),
        time_in_bed_s=time_in_bed_s,
        unknown_s=float(counts[0] * epoch_s),
        sleep_onset_latency_s=None if onset is None else float(onset * epoch_s),
        total_sleep_s=total_sleep_s,
        efficiency=total_sleep_s / time_in_bed_s if time_in_bed_s else None,
        waso_s=waso_s,
        stage_s=tuple(float(c * epoch_s) for c in counts[1:]),
        rem_latency_s=rem_latency_s,
        n_cycles=count_cycles(codes, epoch_s),
    )


def count_cycles(stages: ArrayLike, epoch_s: float = 30.0) -> int:
    """Count completed NREM-REM cycles.

    REM epochs less than :data:`REM_MERGE_GAP_S` apart form one REM episode. An episode closes a cycle when
    it holds at least :data:`CYCLE_MIN_REM_S` of REM and at least :data:`CYCLE_MIN_NREM_S` of N1-N3 lie
    between it and the previous episode (or the start of the night). This follows the spirit of Feinberg
    and Floyd (1979) without their special case for a short first REM period; a trailing NREM period
    without REM is an unfinished cycle and is not counted.
    """
    codes = as_stage_codes(stages)
    rem_epochs = np.flatnonzero(codes == REM)
    if rem_epochs.size == 0:
        return 0
    merge_gap = math.ceil(REM_MERGE_GAP_S / epoch_s)
    last_of_episode = np.flatnonzero(np.diff(rem_epochs) - 1 >= merge_gap)
    first_rem = np.r_[0, last_of_episode + 1]
    starts = rem_epochs[first_rem]
    ends = rem_epochs[np.r_[last_of_episode, rem_epochs.size - 1]] + 1
    rem_count = np.diff(np.r_[first_rem, rem_epochs.size])

    nrem_before = np.r_[0, np.cumsum((codes >= N1) & (codes <= N3))]
    previous_end = np.r_[0, ends[:-1]]
    nrem_count = nrem_before[starts] - nrem_before[previous_end]
    closes_cycle = (nrem_count * epoch_s >= CYCLE_MIN_NREM_S) & (rem_count * epoch_s >= CYCLE_MIN_REM_S)
    return int(np.count_nonzero(closes_cycle))


@dataclass(frozen=True, eq=False)
class Agreement:
    """Epoch-by-epoch agreement of a predicted hypnogram with a reference (expert) one.

    ``confusion[t, p]`` counts epochs with true stage ``t`` predicted as ``p``. ``accuracy`` and ``kappa``
    are ``None`` without any epoch scored in both; ``kappa`` is also ``None`` when chance agreement is
    total (both sequences one and the same single stage), where Cohen's kappa is 0/0.
    """

    n_epochs: int
    accuracy: float | None
    kappa: float | None
    confusion: np.ndarray


def agreement(predicted: ArrayLike, truth: ArrayLike) -> Agreement:
    """Accuracy and Cohen's kappa over the epochs where both hypnograms are known."""
    pred = as_stage_codes(predicted)
    true = as_stage_codes(truth)
    if pred.shape != true.shape:
        raise HypnogramError(
            f"the predicted hypnogram has {pred.size} epochs but the reference has {true.size}: "
            "align both to the same epochs"
        )
    both = (pred >= 0) & (true >= 0)
    confusion = confusion_matrix(true[both], pred[both])
    n = int(both.sum())
    if n == 0:
        return Agreement(0, None, None, confusion)
    return Agreement(n, int(np.trace(confusion)) / n, cohen_kappa(confusion), confusion)


def confusion_matrix(truth: ArrayLike, predicted: ArrayLike, n_classes: int = len(STAGES)) -> np.ndarray:
    """Counts ``[true, predicted]``; epochs whose truth is outside ``0..n_classes-1`` are ignored."""
    true = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(predicted).ravel().astype(np.int64)
    keep = (true >= 0) & (true < n_classes)
    flat = true[keep] * n_classes + pred[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def cohen_kappa(confusion: np.ndarray) -> float | None:
    """Cohen's kappa of a confusion matrix; None where it is 0/0 (one class only, in both raters)."""
    n = int(confusion.sum())
    observed = int(np.trace(confusion))
    chance = int(confusion.sum(axis=0) @ confusion.sum(axis=1))  # n^2 times the chance agreement
    return None if chance == n * n else (observed * n - chance) / (n * n - chance)
