"""``summary.txt``: the night's statistics as plain text, for the predicted and the reference hypnogram."""

from __future__ import annotations

from collections import Counter

import numpy as np

from streamstage import STAGES
from streamstage.report.night import UNSTAGED, Night
from streamstage.stats import Agreement, SleepStats, agreement, sleep_stats

DEFINITIONS = """\
Definitions (AASM, the recording standing in for lights-off to lights-on):
  sleep onset latency: from the first epoch to the first epoch of any sleep stage (N1, N2, N3, REM);
  total sleep time: N1 + N2 + N3 + REM; sleep efficiency: total sleep time / time in bed;
  WASO: wake after sleep onset, to the end of the recording; REM latency: from sleep onset;
  sleep cycle: at least 15 min of NREM followed by a REM episode holding at least 5 min of REM
  (REM epochs less than 15 min apart form one episode);
  unknown epochs count in time in bed but neither as sleep nor as wake."""


def format_summary(night: Night) -> str:
    """The whole ``summary.txt``."""
    lines = ["streamstage night report", "========================", *_night_lines(night), ""]
    if night.n_epochs == 0:
        return "\n".join([*lines, "No epoch was staged: there is nothing to summarise.", ""])
    predicted = sleep_stats(night.stages, night.epoch_s)
    reference = sleep_stats(night.truth, night.epoch_s) if night.has_truth else None
    lines += [*_stats_lines(predicted, reference), "", *_stage_lines(predicted, reference), ""]
    if reference is not None:
        lines += [*_agreement_lines(agreement(night.stages, night.truth)), ""]
    latency = night.latency_ms[np.isfinite(night.latency_ms)]
    if latency.size:
        lines += [
            f"Processing latency per epoch: median {np.median(latency):.1f} ms, "
            f"p99 {np.percentile(latency, 99):.1f} ms, max {latency.max():.1f} ms",
            "",
        ]
    return "\n".join([*lines, DEFINITIONS, ""])


def _night_lines(night: Night) -> list[str]:
    started = night.started
    hours, minutes = divmod(round(night.n_epochs * night.epoch_s / 60), 60)
    lines = [
        f"started     {started.isoformat(sep=' ', timespec='seconds') if started else 'unknown'}",
        f"epochs      {night.n_epochs} x {night.epoch_s:g} s = {hours} h {minutes:02d} min",
    ]
    if night.n_epochs:
        counts = Counter(night.quality)
        failed = [(name, n) for name, n in counts.most_common() if name not in ("good", UNSTAGED)]
        problems = ", ".join(f"{name} {n}" for name, n in failed)
        good = f"good in {counts['good'] / night.n_epochs:.1%} of epochs"
        lines.append(f"signal      {good}{'; ' + problems if problems else ''}")
    if night.n_unstaged:
        lines.append(f"unstaged    {night.n_unstaged} epochs have no row (the run stopped): counted unknown")
    if night.dropped_partial_line:
        lines.append("note        the last line of hypnogram.csv was incomplete and was left out")
    return lines


def _stats_lines(predicted: SleepStats, reference: SleepStats | None) -> list[str]:
    columns = [predicted] if reference is None else [predicted, reference]
    heading = "predicted" if reference is None else "predicted  reference"
    rows = [
        ("time in bed (min)", lambda s: _minutes(s.time_in_bed_s)),
        ("sleep onset latency (min)", lambda s: _minutes(s.sleep_onset_latency_s)),
        ("total sleep time (min)", lambda s: _minutes(s.total_sleep_s)),
        ("sleep efficiency (%)", lambda s: "-" if s.efficiency is None else f"{100 * s.efficiency:.1f}"),
        ("WASO (min)", lambda s: _minutes(s.waso_s)),
        ("REM latency (min)", lambda s: _minutes(s.rem_latency_s)),
        ("unknown (min)", lambda s: _minutes(s.unknown_s)),
        ("sleep cycles", lambda s: str(s.n_cycles)),
    ]
    lines = [f"{'Sleep':<28}{heading}"]
    for label, value in rows:
        lines.append(f"  {label:<26}" + "".join(f"{value(s):>9}  " for s in columns).rstrip())
    return lines


def _stage_lines(predicted: SleepStats, reference: SleepStats | None) -> list[str]:
    columns = [predicted] if reference is None else [predicted, reference]
    prefixes = ["", "ref "][: len(columns)]
    heading = "  ".join(f"{prefix + 'min':>9}{prefix + '% TST':>10}" for prefix in prefixes)
    lines = [f"{'Stages':<17}{heading}"]
    for stage, name in enumerate(STAGES):
        cells = []
        for stats in columns:
            pct = stats.percent_of_sleep(stage)
            cells.append(f"{_minutes(stats.stage_s[stage]):>9}{'-' if pct is None else f'{pct:.1f}':>10}")
        lines.append(f"  {name:<15}" + "  ".join(cells))
    return lines


def _agreement_lines(agree: Agreement) -> list[str]:
    accuracy = "-" if agree.accuracy is None else f"{100 * agree.accuracy:.1f} %"
    kappa = "-" if agree.kappa is None else f"{agree.kappa:.3f}"
    lines = [
        f"Agreement with the reference hypnogram ({agree.n_epochs} epochs scored in both)",
        f"  accuracy       {accuracy}",
        f"  Cohen's kappa  {kappa}",
        "  confusion matrix (rows: reference, columns: predicted)",
        "       " + "".join(f"{name:>6}" for name in STAGES),
    ]
    for name, row in zip(STAGES, agree.confusion, strict=True):
        lines.append(f"    {name:<3}" + "".join(f"{count:>6}" for count in row))
    return lines


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"
