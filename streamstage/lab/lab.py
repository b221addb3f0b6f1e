"""Many beds, one process: stage N live streams, a night folder per bed, one overview.

Each bed is a night as ``streamstage run`` stages it (:class:`~streamstage.lab.bed.BedRunner`: its inlet,
session, sinks and folder, with the bed's own channel, alarm and hooks) in a thread of its own; their model
steps meet in one :class:`~streamstage.lab.stepper.LabStepper` (``step="together"``), or each bed steps
alone (``step="alone"``: exactly ``run``'s numbers). ``resume`` continues every bed that has a night in its
folder and starts the others::

    from streamstage.lab import LabPlan, read_lab_file, run_lab
    from streamstage.model.checkpoint import load_model

    lab = read_lab_file(Path("beds.toml"))
    result = run_lab(lab.beds, load_model("default"), LabPlan(out=Path("nights/lab")))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamstage.dashboard.lab_panel import BedView, lab_lines, lab_panel
from streamstage.errors import StreamstageError
from streamstage.lab.bed import BedOutcome, BedRunner
from streamstage.lab.beds import BedSpec, Step, check_beds
from streamstage.lab.stepper import DEFAULT_WINDOW_S, LabStepper
from streamstage.model.checkpoint import StagingModel
from streamstage.night import Display, NightPlan, ctrl_c_sets, morning_report
from streamstage.output import HYPNOGRAM_FILE, STATE_FILE

log = logging.getLogger(__name__)
REFRESH_S = 0.5


@dataclass(frozen=True)
class LabPlan:
    """How to run the lab: where the nights go, how the beds step, when they end, how they are shown."""

    out: Path
    """The lab folder: bed ``NAME``'s night goes to ``out/NAME``."""
    resume: bool = False
    """Continue every bed's night saved in its folder (a bed without one starts afresh)."""
    step: Step = "together"
    batch_window_s: float = DEFAULT_WINDOW_S
    model_asked: str | None = None
    outlets: bool = True
    keep_raw: bool = True
    exit_after_lost_s: float | None = None
    """A bed ends when its stream has been gone this long (and fails if it is not found at the start)."""
    max_epochs: int | None = None
    display: Display = "none"
    """The overview table (falls back to plain lines when not on a terminal), plain lines, or nothing."""
    report: bool = True


@dataclass(frozen=True)
class LabResult:
    beds: tuple[BedOutcome, ...]
    stopped: bool
    """Ended by ``stop`` / Ctrl-C rather than by every bed's stream."""
    batched_calls: int = 0
    """Model calls of the lab's batch (0 when each bed steps alone)."""
    bed_steps: int = 0
    """Bed epochs those calls stepped."""


def run_lab(
    beds: Sequence[BedSpec],
    model: StagingModel,
    plan: LabPlan,
    say: Callable[[str], None] = log.info,
    stop: threading.Event | None = None,
) -> LabResult:
    """Stage every bed until each has ended, ``stop`` is set, or Ctrl-C; see the module docstring."""
    specs = check_beds(tuple(beds))
    stop = stop or threading.Event()
    display = _display(plan.display)
    stepper = LabStepper(model, len(specs), plan.batch_window_s) if plan.step == "together" else None
    runners = [
        _runner(i, spec, model, plan, stop, stepper, say, display == "lines") for i, spec in enumerate(specs)
    ]
    say(f"staging {len(runners)} beds into {plan.out} ({_stepping(plan)})")
    for runner in runners:
        runner.start()
    with ctrl_c_sets(stop):
        _watch(runners, display, stop)
    for runner in runners:
        runner.join()
    if display == "lines":
        for line in lab_lines([runner.view() for runner in runners]):
            say(line)
    if plan.report:
        _reports(runners, say)
    calls, steps = (stepper.calls, stepper.steps) if stepper is not None else (0, 0)
    return LabResult(tuple(r.outcome() for r in runners), stop.is_set(), calls, steps)


def _runner(
    index: int,
    spec: BedSpec,
    model: StagingModel,
    plan: LabPlan,
    stop: threading.Event,
    stepper: LabStepper | None,
    say: Callable[[str], None],
    lines: bool,
) -> BedRunner:
    folder = plan.out / spec.name
    night = NightPlan(
        out=folder,
        model_asked=plan.model_asked,
        resume=plan.resume and _holds_night(folder),
        channels=spec.settings.stream.channel,
        reference=spec.settings.stream.reference,
        settings=spec.settings,
        outlets=plan.outlets,
        keep_raw=plan.keep_raw,
        exit_after_lost_s=plan.exit_after_lost_s,
        max_epochs=plan.max_epochs,
        report=False,  # written by the lab once every bed has ended
    )
    if stepper is None:
        return BedRunner(spec, model, night, stop, say=say, lines=lines)
    return BedRunner(
        spec,
        model,
        night,
        stop,
        stager=lambda: stepper.seat(index),
        leave=lambda: stepper.leave(index),
        say=say,
        lines=lines,
    )


def _holds_night(folder: Path) -> bool:
    """Whether a bed's folder has a night to continue (a state, or staged rows under the header)."""
    if (folder / STATE_FILE).is_file():
        return True
    hypnogram = folder / HYPNOGRAM_FILE
    return hypnogram.is_file() and len(hypnogram.read_text().splitlines()) > 1


def _stepping(plan: LabPlan) -> str:
    if plan.step == "alone":
        return "each bed steps its own model"
    return f"beds due together step in one model call, {1000 * plan.batch_window_s:g} ms window"


def _display(wanted: Display) -> Display:
    """The overview needs a terminal; piped, the lab is shown as plain lines."""
    if wanted != "dashboard":
        return wanted
    from rich.console import Console

    from streamstage.dashboard import use_live_dashboard

    return "dashboard" if use_live_dashboard(Console()) else "lines"


def _watch(runners: Sequence[BedRunner], display: Display, stop: threading.Event) -> None:
    """Wait for every bed to end (or ``stop``), redrawing the overview when there is a terminal."""
    views: Callable[[], list[BedView]] = lambda: [runner.view() for runner in runners]  # noqa: E731
    if display != "dashboard":
        while any(runner.alive for runner in runners) and not stop.wait(REFRESH_S):
            pass
        return
    from rich.live import Live

    with Live(lab_panel(views()), refresh_per_second=2, screen=False) as live:
        while any(runner.alive for runner in runners) and not stop.wait(REFRESH_S):
            live.update(lab_panel(views()))
        live.update(lab_panel(views()))


def _reports(runners: Sequence[BedRunner], say: Callable[[str], None]) -> None:
    """Each bed's morning report, one bed after the other; a bed's failure is said and the others go on."""
    for runner in runners:
        folder = runner.plan.out
        assert folder is not None
        if not (folder / HYPNOGRAM_FILE).is_file():
            continue
        started = time.perf_counter()
        try:
            morning_report(folder, lambda line, bed=runner.name: say(f"[{bed}] {line}"))
        except StreamstageError as error:
            say(f"[{runner.name}] no morning report: {error}")
        log.debug("report of %s took %.1f s", runner.name, time.perf_counter() - started)
