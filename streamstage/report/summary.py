"""``summary.txt``: the night's statistics as plain text, for the predicted (the morning re-score where there
is one, else the live hypnogram), the live one beside a re-score, and the reference hypnogram."""

from __future__ import annotations

from collections import Counter

import numpy as np

from streamstage import STAGES
from streamstage.report.night import UNSTAGED, StagedNight
from streamstage.stats import Agreement, SleepStats, agreement, sleep_stats

DEFINITIONS = """\
Definitions (AASM, the recording standing in for lights-off to lights-on):
  sleep onset latency: from the first epoch to the first epoch of any sleep stage (N1, N2, N3, REM);
  total sleep time: N1 + N2 + N3 + REM; sleep efficiency: total sleep time / time in bed;
  WASO: wake after sleep onset, to the end of the recording; REM latency: from sleep onset;
  sleep cycle: at least 15 min of NREM followed by a REM episode holding at least 5 min of REM
  (REM epochs less than 15 min apart form one episode);
  unknown epochs count in time in bed but neither as sleep nor as wake."""


def format_summary(night: StagedNight, rescored: np.ndarray | None = None) -> str:
    """The whole ``summary.txt``; ``rescored``: the morning re-score's stages, on the night's epochs."""
    lines = ["streamstage night report", "========================", *_night_lines(night), ""]
    if night.n_epochs == 0:
        return "\n".join([*lines, "No epoch was staged: there is nothing to summarise.", ""])
    predicted = night.stages if rescored is None else rescored
    columns = [("predicted" if rescored is None else "re-scored", sleep_stats(predicted, night.epoch_s))]
    if rescored is not None:
        columns.append(("live", sleep_stats(night.stages, night.epoch_s)))
    if night.has_truth:
        columns.append(("reference", sleep_stats(night.truth, night.epoch_s)))
    lines += [*_stats_lines(columns), "", *_stage_lines(columns), ""]
    if rescored is not None:
        title = "Agreement of the live hypnogram with the morning re-score"
        lines += [*_agreement_lines(agreement(night.stages, rescored), title, "re-score", "live"), ""]
    if night.has_truth:
        title = "Agreement with the reference hypnogram"
        lines += [*_agreement_lines(agreement(predicted, night.truth), title), ""]
    latency = night.latency_ms[np.isfinite(night.latency_ms)]
    if latency.size:
        lines += [
            f"Processing latency per epoch: median {np.median(latency):.1f} ms, "
            f"p99 {np.percentile(latency, 99):.1f} ms, max {latency.max():.1f} ms",
            "",
        ]
    return "\n".join([*lines, DEFINITIONS, ""])


def _night_lines(night: StagedNight) -> list[str]:
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


def _stats_lines(columns: list[tuple[str, SleepStats]]) -> list[str]:
    heading = "".join(f"{name:>9}  " for name, _ in columns).rstrip()
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
        lines.append(f"  {label:<26}" + "".join(f"{value(s):>9}  " for _, s in columns).rstrip())
    return lines


STAGE_COLUMN_PREFIX = {"predicted": "", "re-scored": "", "live": "live ", "reference": "ref "}


def _stage_lines(columns: list[tuple[str, SleepStats]]) -> list[str]:
    prefixes = [STAGE_COLUMN_PREFIX[name] for name, _ in columns]
    heading = "  ".join(f"{prefix + 'min':>9}{prefix + '% TST':>11}" for prefix in prefixes)
    lines = [f"{'Stages':<17}{heading}"]
    for stage, name in enumerate(STAGES):
        cells = []
        for _, stats in columns:
            pct = stats.percent_of_sleep(stage)
            cells.append(f"{_minutes(stats.stage_s[stage]):>9}{'-' if pct is None else f'{pct:.1f}':>11}")
        lines.append(f"  {name:<15}" + "  ".join(cells))
    return lines


def _agreement_lines(
    agree: Agreement, title: str, rows: str = "reference", cols: str = "predicted"
) -> list[str]:
    accuracy = "-" if agree.accuracy is None else f"{100 * agree.accuracy:.1f} %"
    kappa = "-" if agree.kappa is None else f"{agree.kappa:.3f}"
    lines = [
        f"{title} ({agree.n_epochs} epochs scored in both)",
        f"  accuracy       {accuracy}",
        f"  Cohen's kappa  {kappa}",
        f"  confusion matrix (rows: {rows}, columns: {cols})",
        "       " + "".join(f"{name:>6}" for name in STAGES),
    ]
    for name, row in zip(STAGES, agree.confusion, strict=True):
        lines.append(f"    {name:<3}" + "".join(f"{count:>6}" for count in row))
    return lines


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"
