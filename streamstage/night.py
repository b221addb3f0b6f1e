"""A whole live night from the library: find the stream, stage it all night, keep it on disk, report.

``streamstage run`` only parses its arguments into a :class:`NightPlan` and calls :func:`run_night`; so does
``streamstage demo``, and so can any program (see ``examples/night_from_python.py``)::

    from streamstage.night import NightPlan, StreamQuery, run_night
    from streamstage.model.checkpoint import load_model

    result = run_night(StreamQuery(name="Muse"), load_model("default"), NightPlan(out=Path("tonight")))
    print(result.folder, result.epochs)

The night assembled here is: the LSL inlet (source) -> :class:`~streamstage.live.session.NightSession`
(intake, pipeline, decisions' order, resume) -> the sinks of :func:`streamstage.sinks.night_sinks`, with the
LSL outlets, the raw recording and the display registered in that one list.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from streamstage.config import Settings
from streamstage.dashboard import Dashboard, DashboardState, use_live_dashboard
from streamstage.errors import ResumeError, StreamstageError
from streamstage.io.raw_record import raw_parts
from streamstage.live.loop import LiveLoop, LoopOptions, TruthReader
from streamstage.live.session import NightSession, SessionOptions
from streamstage.lsl.inlet import LslInlet
from streamstage.model.checkpoint import StagingModel
from streamstage.model.choice import model_choice
from streamstage.output import NightWriter, WrittenEpoch, default_night_folder
from streamstage.pipeline import EpochModel
from streamstage.report import Report, write_report
from streamstage.sinks import NightSink, night_sinks
from streamstage.sinks.display import EpochLinePrinter
from streamstage.sinks.outlets import OutletSink
from streamstage.sinks.raw import RawSink, disk_mb_per_hour

log = logging.getLogger(__name__)
Display = Literal["dashboard", "lines", "none"]


@dataclass(frozen=True)
class StreamQuery:
    """Which LSL stream to stage (nothing given: the one stream of type EEG)."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    resolve_timeout_s: float = 10.0
    lost_after_s: float = 5.0
    """Seconds without data before the signal counts as lost."""
    buffer_s: float = 360.0
    """Seconds of stream liblsl keeps while the night is busy (a replay at maximum speed: all of it)."""

    def describe(self) -> str:
        given = {"name": self.name, "type": self.type, "source id": self.source_id}
        return ", ".join(f"{k} {v}" for k, v in given.items() if v) or "type EEG"


@dataclass(frozen=True)
class NightPlan:
    """How to run the night: where it goes, what it publishes, when it ends, how it is shown."""

    out: Path | None = None
    """The night folder (default: a new dated folder under ./nights); with ``resume``, the saved night."""
    model_asked: str | None = None
    """What the user asked for as the model (``--model``), for the sentence that says which one stages."""
    resume: bool = False
    rebuild_state: bool = False
    """With ``resume``: continue a night whose state is damaged or missing, from its rows."""
    channels: tuple[str, ...] | None = None
    reference: str | None = None
    settings: Settings = field(default_factory=Settings)
    accept_new_source: bool = False
    outlets: bool = True
    """Publish each epoch back to LSL (a marker and the probabilities)."""
    keep_raw: bool = True
    """Keep the raw signal in the night folder (raw.bdf, BDF+)."""
    truth_stream: str | None = None
    """A Markers stream with ground-truth stages (a replay's hypnogram)."""
    exit_after_lost_s: float | None = None
    max_epochs: int | None = None
    display: Display = "none"
    """The live dashboard (falls back to plain lines when not on a terminal), plain lines, or nothing."""
    report: bool = True
    """Write the morning report (summary.txt, report.png) when the night ends."""


@dataclass(frozen=True)
class NightResult:
    folder: Path
    epochs: int
    """Epochs staged by this run (a resumed night's earlier epochs not counted)."""
    stopped: bool
    """Ended by :attr:`stop` / Ctrl-C rather than by the stream or ``max_epochs``."""
    report: Report | None = None


@dataclass
class LiveNight:
    """One night assembled from its stream and ready to run (its inlet, writer and outlets are closed by the
    ``ExitStack`` it was built in): what :func:`run_night` runs, and what each bed of a lab runs."""

    folder: Path
    session: NightSession
    loop: LiveLoop


def run_night(
    stream: StreamQuery,
    model: StagingModel,
    plan: NightPlan,
    sinks: Sequence[NightSink] = (),
    say: Callable[[str], None] = log.info,
    stop: threading.Event | None = None,
) -> NightResult:
    """Stage one live stream until it ends (``plan``), ``stop`` is set, or Ctrl-C; see the module docstring.

    ``sinks`` are added to the night's own (after the outlets and the raw recording); ``say`` gets the lines
    a user should read (which stream, which channel, where the night goes)."""
    with ExitStack() as cleanup:
        display = _display(plan.display)
        dashboard = DashboardState() if display == "dashboard" else None
        printer = [EpochLinePrinter()] if display == "lines" else []
        night = assemble_night(stream, model, plan, cleanup, [*printer, *sinks], say, dashboard=dashboard)
        loop, session = night.loop, night.session
        if stop is not None:
            loop.stop = stop
        try:
            with ctrl_c_sets(loop.stop):
                _run_loop(loop, session, dashboard)
        except KeyboardInterrupt:  # a second Ctrl-C: the loop's own close already ran
            loop.stop.set()
            say("interrupted: everything staged so far is on disk.")
        staged = session.staged_count
    folder = night.folder
    report = morning_report(folder, say) if plan.report and (folder / "hypnogram.csv").is_file() else None
    return NightResult(folder, staged, loop.stop.is_set(), report)


def assemble_night(
    stream: StreamQuery,
    model: StagingModel,
    plan: NightPlan,
    cleanup: ExitStack,
    sinks: Sequence[NightSink] = (),
    say: Callable[[str], None] = log.info,
    *,
    dashboard: DashboardState | None = None,
    stager: Callable[[], EpochModel] | None = None,
) -> LiveNight:
    """Open the night folder (a resumed one read back first), find the stream, and build the session with
    its sinks (outlets, raw recording, ``sinks``, ``dashboard``) and its loop; ``stager`` is where the model
    steps (default: a stager of the night's own; a lab's bed: its seat in the lab's batch)."""
    if plan.rebuild_state and not plan.resume:
        raise ResumeError("rebuild_state continues a night: resume it (--resume DIR).")
    folder = _night_folder(plan)
    writer = NightWriter(folder, resume=plan.resume)
    cleanup.callback(writer.close)
    saved = _saved_night(writer, plan)
    say(f"looking for the stream ({stream.describe()}) ...")
    inlet = LslInlet.open(
        name=stream.name,
        type=stream.type,
        source_id=stream.source_id,
        timeout_s=stream.resolve_timeout_s,
        lost_after_s=stream.lost_after_s,
        accept_new_source=plan.accept_new_source,
        buffer_s=stream.buffer_s,
    )
    cleanup.callback(inlet.close)
    layout = inlet.layout
    extra: list[NightSink] = []
    if plan.outlets:
        from streamstage.lsl.outlets import StageOutlets

        outlets = cleanup.enter_context(
            StageOutlets(layout.source_id or layout.name, provisional=model.is_raw)
        )
        extra.append(OutletSink(outlets))
    if plan.keep_raw:
        extra.append(RawSink(folder))
    options = SessionOptions(
        plan.channels, plan.reference, plan.settings, plan.accept_new_source, stager=stager
    )
    all_sinks = night_sinks(writer, plan.settings, dashboard, [*extra, *sinks])
    session = NightSession(model, layout, writer, options, all_sinks)
    inlet.refusal = session.refusal
    _continue(session, saved)
    say(model_choice(plan.model_asked, model, layout.labels))
    channels, rate = ", ".join(session.montage.labels), f"{layout.sfreq_hz:g} Hz"
    say(f"staging {channels} of '{layout.name}' ({rate}) with {model.source}; night folder {folder}")
    if plan.keep_raw:
        per_hour = disk_mb_per_hour(session.montage, layout.labels, session.intake.grid_hz)
        say(f"keeping the raw signal in {folder}: {per_hour:.1f} MB per hour (off: --no-raw)")
    truth = TruthReader.open(plan.truth_stream, stream.resolve_timeout_s) if plan.truth_stream else None
    replay_clock = plan.settings.start_clock is not None
    ending = LoopOptions(plan.exit_after_lost_s, plan.max_epochs, replay_clock)
    return LiveNight(folder, session, LiveLoop(inlet, session, ending, truth))


def _display(wanted: Display) -> Display:
    """The dashboard needs a terminal; piped, the night is shown as plain lines."""
    if wanted != "dashboard":
        return wanted
    from rich.console import Console

    return "dashboard" if use_live_dashboard(Console()) else "lines"


def _night_folder(plan: NightPlan) -> Path:
    if plan.resume:
        if plan.out is None:
            raise ResumeError("resume needs the night folder to continue (--resume DIR).")
        return Path(plan.out)
    return Path(plan.out) if plan.out is not None else default_night_folder()


def _saved_night(writer: NightWriter, plan: NightPlan) -> tuple[dict | None, WrittenEpoch | None]:
    """What a resumed night goes on from, read (and refused if damaged) before any stream is looked for."""
    if not plan.resume:
        return None, None
    last_row = writer.last_epoch()
    if not plan.rebuild_state:
        return writer.load_state(), last_row
    if last_row is None:
        raise ResumeError(f"{writer.folder} holds no staged epoch to continue from; start a new night there.")
    return None, last_row


def _continue(session: NightSession, saved: tuple[dict | None, WrittenEpoch | None]) -> None:
    """Restore the saved state (no row written twice), or go on from the last row with a fresh model."""
    state, last_row = saved
    if state is not None:
        session.resume(state, last_row)
    elif last_row is not None:
        session.continue_from(last_row)


@contextmanager
def ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C sets ``stop`` (the loop ends the night between two chunks) rather than raising wherever the
    interpreter happens to be (inside a library call, a destructor, a write); a second Ctrl-C interrupts."""

    def request_stop(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_loop(loop: LiveLoop, session: NightSession, dashboard: DashboardState | None) -> None:
    """Run the loop, under the live dashboard when there is one and a terminal to draw it on."""
    if dashboard is None:
        loop.run()
        return

    def clock() -> datetime:
        return (loop.options.replay_clock and session.wall_now()) or datetime.now().astimezone()

    with Dashboard(dashboard, clock=clock) as ui:
        loop.on_refresh = ui.update
        loop.run()


def morning_report(folder: Path, say: Callable[[str], None]) -> Report:
    """The report, with the night re-scored from its raw recording where there is one; a re-score that
    fails is said in one line and the live report is written all the same."""
    if not raw_parts(folder):
        return write_report(folder)
    try:
        return write_report(folder, rescore="model")
    except StreamstageError as error:
        say(f"no morning re-score: {error}")
        return write_report(folder)
