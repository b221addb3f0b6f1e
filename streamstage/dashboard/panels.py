"""The dashboard's panels: each a pure function of a :class:`DashboardState` (and the wall clock)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from rich.align import Align
from rich.bar import Bar
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streamstage import STAGES
from streamstage.dashboard.bigtext import big_lines
from streamstage.dashboard.hypnogram import HypnogramView
from streamstage.dashboard.state import AlarmStatus, DashboardState
from streamstage.dashboard.style import format_hm, format_hms, stage_colour
from streamstage.dashboard.trace import TraceView

EVENTS_SHOWN = 4


def header_panel(state: DashboardState, now: datetime) -> Panel:
    """Which stream, at what rate, on which channel; how long it has run and the time of night."""
    rate = "? Hz" if state.sfreq is None else f"{state.sfreq:g} Hz"
    source = " · ".join(part for part in (state.stream_name or "no stream", rate, state.channel) if part)
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(Text(source, style="bold"), f"elapsed {format_hms(state.elapsed_s)} · {now:%H:%M:%S}")
    return Panel(grid, title="streamstage", title_align="left")


def stage_panel(state: DashboardState) -> Panel:
    """The current stage in block letters, its confidence, and a bar per stage probability."""
    epoch = state.latest
    colour = "dim" if epoch is None else stage_colour(epoch.stage)
    glyphs = "\n".join(big_lines("-" if epoch is None or not epoch.known else epoch.stage_name))
    word = Text(glyphs, style=f"bold {colour}", no_wrap=True, overflow="crop")
    caption = Text("waiting for the first epoch" if epoch is None else f"confidence {epoch.confidence:.0%}")
    bars = Table.grid(expand=True, padding=(0, 1))
    bars.add_column(width=3, no_wrap=True)
    bars.add_column(ratio=1)
    bars.add_column(width=4, justify="right", no_wrap=True)
    for stage, name in enumerate(STAGES):
        p = 0.0 if epoch is None else float(epoch.probs[stage])
        bars.add_row(name, Bar(1.0, 0.0, p, color=stage_colour(stage)), f"{p:.0%}")
    title = "stage" if epoch is None else f"stage · epoch {epoch.index}"
    notes = [] if epoch is None or epoch.quality_ok else [Text(f"signal {epoch.quality}", style="bold red")]
    if state.provisional is not None:
        notes.append(provisional_text(state))
    subtitle = Text(" · ").join(notes) if notes else None
    return Panel(
        Group(Align.center(word), Align.center(caption), bars),
        title=title,
        title_align="left",
        subtitle=subtitle,
    )


def provisional_text(state: DashboardState) -> Text:
    """The epoch in progress as a raw model reads it so far: ``now N2 71% · 15 s in``; shown in the stage
    panel's border so the layout keeps its size."""
    provisional = state.provisional
    if provisional is None:
        return Text("")
    return Text.assemble(
        ("now ", "dim"),
        (provisional.stage_name, f"bold {stage_colour(provisional.stage)}"),
        (f" {provisional.confidence:.0%} · {provisional.elapsed_s:.0f} s in", "dim"),
    )


def hypnogram_panel(state: DashboardState) -> Panel:
    """The night so far, the reference strip when truth is known, and the running agreement."""
    view = HypnogramView(state.stages, state.truth, state.quality_ok, state.epoch_s)
    parts: list[HypnogramView | Text] = [view]
    if state.has_truth:
        agree = state.agreement()
        kappa = "-" if agree.kappa is None else f"{agree.kappa:.2f}"
        accuracy = "-" if agree.accuracy is None else f"{agree.accuracy:.1%}"
        parts.append(Text(f"agreement {accuracy} · κ {kappa} · {agree.n_epochs} epochs with reference"))
    title = f"hypnogram · {format_hm(state.n_epochs * state.epoch_s)}"
    return Panel(Group(*parts), title=title, title_align="left")


def trace_panel(state: DashboardState) -> Panel:
    """The last seconds of filtered EEG, with the signal-quality state in the border."""
    good = state.quality == "good"
    view = TraceView(state.trace_uv, state.trace_sfreq, state.trace_s, style="green" if good else "yellow")
    title = " · ".join(part for part in ("EEG", state.channel, f"last {state.trace_s:g} s") if part)
    subtitle = Text(f"signal {state.quality}", style="green" if good else "bold red")
    return Panel(view, title=title, title_align="left", subtitle=subtitle, subtitle_align="left")


def stats_panel(state: DashboardState) -> Panel:
    """Sleep statistics of the night so far (AASM definitions, see :mod:`streamstage.stats`)."""
    stats = state.stats()
    metrics = [
        ("in bed", format_hm(stats.time_in_bed_s)),
        ("sleep onset", format_hm(stats.sleep_onset_latency_s)),
        ("total sleep", format_hm(stats.total_sleep_s)),
        ("efficiency", _percent(stats.efficiency)),
        ("WASO", format_hm(stats.waso_s)),
        ("REM latency", format_hm(stats.rem_latency_s)),
        ("cycles", str(stats.n_cycles)),
        ("good signal", _percent(float(state.quality_ok.mean()) if state.n_epochs else None)),
    ]
    if stats.unknown_s:
        metrics.append(("unknown", format_hm(stats.unknown_s)))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    for row, (label, value) in enumerate(metrics):
        stage_cells: tuple[Text | str, ...] = ("", "", "")
        if row < len(STAGES):
            pct = stats.percent_of_sleep(row)
            stage_cells = (
                Text(STAGES[row], style=f"bold {stage_colour(row)}"),
                format_hm(stats.stage_s[row]),
                "" if pct is None else f"{pct:.0f}%",
            )
        grid.add_row(label, value, *stage_cells)
    return Panel(grid, title="sleep so far", title_align="left")


def status_panel(state: DashboardState, now: datetime) -> Panel:
    """Per-epoch processing latency, the smart alarm when one is set, and the latest events."""
    lines: list[Text] = []
    if state.latencies:
        latencies_ms = 1000 * np.asarray(state.latencies)
        lines.append(Text(f"latency last {latencies_ms[-1]:.0f} ms"))
        lines.append(
            Text(f"median {np.median(latencies_ms):.0f} ms · p99 {np.percentile(latencies_ms, 99):.0f} ms")
        )
    else:
        lines.append(Text("latency -", style="dim"))
    if state.alarm is not None:
        lines.extend(_alarm_lines(state.alarm, now))
    lines.extend(Text(event, style="dim") for event in list(state.events)[-EVENTS_SHOWN:])
    return Panel(Group(*lines), title="status", title_align="left")


def _alarm_lines(alarm: AlarmStatus, now: datetime) -> list[Text]:
    """The alarm window and state, and a countdown to the window's opening or to the latest wake time."""
    if (alarm.window_start.tzinfo is None) != (now.tzinfo is None):
        now = now.astimezone() if now.tzinfo is None else now.astimezone().replace(tzinfo=None)
    window = f"alarm {alarm.window_start:%H:%M}–{alarm.window_end:%H:%M} · {alarm.state}"
    if now < alarm.window_start:
        countdown = f"window opens in {format_hms((alarm.window_start - now).total_seconds())}"
    elif now < alarm.window_end:
        countdown = f"latest wake in {format_hms((alarm.window_end - now).total_seconds())}"
    else:
        countdown = "window closed"
    return [Text(window, style="bold magenta"), Text(countdown, style="magenta")]


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"
