"""Dashboard state and panels, rendered to plain text from constructed nights."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console, RenderableType

from streamstage import STAGES
from streamstage.dashboard import AlarmStatus, DashboardState, render_dashboard
from streamstage.dashboard.bigtext import big_lines
from streamstage.dashboard.hypnogram import HypnogramView, compress_stages
from streamstage.dashboard.panels import hypnogram_panel, stage_panel, stats_panel, status_panel, trace_panel
from streamstage.dashboard.trace import braille_lines, nice_scale_uv
from streamstage.records import StagedEpoch

NOW = datetime(2026, 5, 10, 6, 10, 0)
CYCLE = [0] * 20 + [1] * 10 + [2] * 40 + [3] * 40 + [2] * 20 + [4] * 30 + [0] * 2 + [2] * 18


def staged(index: int, stage: int, confidence: float = 0.8, quality: str = "good") -> StagedEpoch:
    probs = np.full(len(STAGES), (1 - confidence) / (len(STAGES) - 1))
    probs[stage] = confidence
    return StagedEpoch(index, 1000.0 + 30 * index, stage, tuple(probs), quality, latency_s=0.012)


def night_state(n_epochs: int, *, truth: bool = True, alarm: bool = True) -> DashboardState:
    """A night of repeated 90-min cycles with a 1-Hz 40-µV trace, optionally a reference and an alarm."""
    state = DashboardState(stream_name="Muse-EEG", sfreq=256.0, channel="AF7")
    for index in range(n_epochs):
        stage = CYCLE[index % len(CYCLE)]
        quality = "flat" if index % 97 == 96 else "good"
        reference = (stage if index % 5 else 2) if truth else None
        state.add_epoch(staged(index, stage, quality=quality), truth=reference)
    state.push_trace(40 * np.sin(2 * np.pi * np.arange(1000) / 100))
    state.quality, state.elapsed_s = "good", n_epochs * 30.0
    if alarm:
        state.alarm = AlarmStatus(NOW + timedelta(minutes=20), NOW + timedelta(minutes=50), "armed")
    state.log_event("signal lost", NOW)
    state.log_event("signal back", NOW)
    return state


def render(renderable: RenderableType, width: int, height: int | None = None) -> list[str]:
    console = Console(record=True, width=width, height=height or 25, file=io.StringIO())
    console.print(renderable)
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines), "a line is wider than the terminal"
    return lines


# --- state -------------------------------------------------------------------------------------------


def test_add_epoch_records_stage_truth_and_latency() -> None:
    state = DashboardState()
    state.add_epoch(staged(0, 2), truth=2)
    state.add_epoch(staged(1, 4, quality="flat"))
    assert state.n_epochs == 2
    assert state.stages.tolist() == [2, 4]
    assert state.truth.tolist() == [2, -1]
    assert state.quality_ok.tolist() == [True, False]
    assert state.latest is not None and state.latest.index == 1
    assert list(state.latencies) == [0.012, 0.012]
    assert state.has_truth


def test_skipped_epochs_are_kept_as_unknown() -> None:
    state = DashboardState()
    state.add_epoch(staged(10, 2))
    state.add_epoch(staged(13, 3))
    assert state.stages.tolist() == [2, -1, -1, 3]
    assert np.isnan(state.probs[1]).all()
    assert state.stats().unknown_s == 60.0


def test_buffers_stay_bounded() -> None:
    state = DashboardState(max_epochs=10, max_latencies=5, max_events=3, trace_s=2.0, trace_sfreq=100.0)
    for index in range(25):
        state.add_epoch(staged(index, index % 5))
        state.log_event(f"event {index}", NOW)
        state.push_trace(np.full(150, float(index)))
    assert state.n_epochs == 10
    assert state.stages.tolist() == [index % 5 for index in range(15, 25)]
    assert len(state.latencies) == 5
    assert list(state.events)[-1].endswith("event 24") and len(state.events) == 3
    assert state.trace_uv.shape == (200,) and state.trace_uv[-1] == 24.0


def test_stats_follow_new_epochs() -> None:
    state = DashboardState()
    state.add_epoch(staged(0, 0))
    assert state.stats().total_sleep_s == 0.0
    state.add_epoch(staged(1, 2))
    assert state.stats().total_sleep_s == 30.0


def test_invalid_truth_is_rejected() -> None:
    with pytest.raises(ValueError, match="truth"):
        DashboardState().add_epoch(staged(0, 2), truth=7)


def test_state_dict_round_trips_through_json() -> None:
    state = night_state(50)
    saved = state.state_dict()
    as_json = json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in saved.items()})
    restored = DashboardState()
    restored.load_state_dict(json.loads(as_json))
    assert restored.stages.tolist() == state.stages.tolist()
    assert restored.truth.tolist() == state.truth.tolist()
    np.testing.assert_allclose(restored.probs, state.probs)
    assert restored.latest == state.latest
    assert list(restored.events) == list(state.events)
    restored.add_epoch(staged(52, 3))  # epoch 51 never came
    assert restored.stages[-2:].tolist() == [-1, 3]


def test_state_dict_into_a_smaller_state_keeps_the_latest_epochs() -> None:
    restored = DashboardState(max_epochs=20)
    restored.load_state_dict(night_state(50).state_dict())
    assert restored.n_epochs == 20
    assert restored.stages.tolist() == [CYCLE[i] for i in range(30, 50)]


# --- hypnogram compression -----------------------------------------------------------------------------


def test_compression_keeps_the_most_frequent_stage_and_prefers_the_lighter_on_ties() -> None:
    stages = np.array([0, 1, 2, 2, 3, 2, -1, -1, 4, 3, 4, 4])
    assert compress_stages(stages, 20).tolist() == stages.tolist()  # fits: one column per epoch
    assert compress_stages(stages, 6).tolist() == [0, 2, 2, -1, 3, 4]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-1, 4), min_size=1, max_size=400), st.integers(1, 120))
def test_compression_summarises_each_column_by_its_mode(stages: list[int], n_columns: int) -> None:
    codes = np.array(stages)
    columns = compress_stages(codes, n_columns)
    assert columns.size == min(codes.size, n_columns)
    owner = (
        np.arange(codes.size) * n_columns // codes.size if codes.size > n_columns else np.arange(codes.size)
    )
    for column, summary in enumerate(columns):
        members = codes[owner == column]
        known = members[members >= 0]
        if known.size == 0:
            assert summary == -1
        else:
            counts = np.bincount(known, minlength=5)
            assert counts[summary] == counts.max() and summary == np.flatnonzero(counts == counts.max())[0]


def test_hypnogram_rows_put_each_stage_on_its_level() -> None:
    stages = np.array([0, 4, 1, 2, 3, 0])
    lines = render(HypnogramView(stages, np.full(6, -1), np.ones(6, bool), 30.0), width=40)
    rows = {line.split()[0]: line[4:10] for line in lines[:5]}
    assert list(rows) == ["W", "REM", "N1", "N2", "N3"]  # classic order, W on top
    assert rows["W"] == "█    █"
    assert rows["REM"][1] == "█" and rows["N1"][2] == "█" and rows["N2"][3] == "█" and rows["N3"][4] == "█"
    assert rows["REM"][5] == rows["N1"][5] == rows["N2"][5] == "│"  # riser of the jump from N3 to W
    assert rows["N1"][1] == " "  # neighbouring levels need no riser
    assert not any(line.startswith("ref") for line in lines)
    assert lines[5].strip().startswith("0:00")


# --- trace -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak", "scale"), [(0.0, 1.0), (0.4, 1.0), (3.0, 5.0), (40.0, 50.0), (120.0, 200.0)]
)
def test_trace_scale_snaps_to_1_2_5(peak: float, scale: float) -> None:
    assert nice_scale_uv(peak) == scale


def test_braille_puts_a_flat_signal_in_the_middle_and_leaves_missing_samples_blank() -> None:
    samples = np.r_[np.zeros(50), np.full(50, np.nan)]
    lines = braille_lines(samples, scale_uv=10.0, n_rows=2, n_cells=10)
    blank = chr(0x2800)
    assert lines[0][:5] != blank * 5 or lines[1][:5] != blank * 5
    assert lines[0][5:] == blank * 5 and lines[1][5:] == blank * 5


# --- panels and the whole screen ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 140])
def test_empty_night_renders(width: int) -> None:
    text = "\n".join(render(render_dashboard(DashboardState(), NOW, width), width, height=70))
    assert "waiting for the first epoch" in text
    assert "no signal yet" in text
    assert "latency -" in text
    assert "no stream" in text
    assert "alarm" not in text


@pytest.mark.parametrize("width", [60, 140])
def test_twelve_hour_night_with_truth_and_alarm(width: int) -> None:
    state = night_state(1440)
    text = "\n".join(render(render_dashboard(state, NOW, width), width, height=80))
    latest = state.latest
    assert latest is not None
    for row in big_lines(latest.stage_name):
        assert row.rstrip() in text
    assert f"epoch {latest.index}" in text and "confidence 80%" in text
    assert "Muse-EEG · 256 Hz · AF7" in text and "elapsed 12:00:00" in text and "06:10:00" in text
    assert "hypnogram · 12h00" in text and "1 column ≈" in text
    assert "ref " in text and "agreement" in text and "κ" in text
    stats = state.stats()
    assert "in bed" in text and "12h00" in text and f"{stats.efficiency:.1%}" in text
    assert "alarm 06:30–07:00 · armed" in text and "window opens in 0:20:00" in text
    assert "signal lost" in text and "median 12 ms" in text and "p99 12 ms" in text


@pytest.mark.parametrize("width", [60, 140])
def test_night_without_truth_or_alarm(width: int) -> None:
    state = night_state(200, truth=False, alarm=False)
    text = "\n".join(render(render_dashboard(state, NOW, width), width, height=80))
    assert "agreement" not in text and "\nref " not in text
    assert "alarm" not in text
    assert "sleep so far" in text


def test_stage_panel_shows_the_stage_its_confidence_and_a_bar_per_stage() -> None:
    state = DashboardState()
    state.add_epoch(staged(7, 3, confidence=0.9, quality="clipped"))
    lines = render(stage_panel(state), width=40)
    text = "\n".join(lines)
    assert big_lines("N3")[0] in text and "confidence 90%" in text
    assert "signal clipped" in text
    bar_lines = {line.split()[1]: line for line in lines if line.strip("│ ").split(" ")[0] in STAGES}
    assert set(bar_lines) == set(STAGES)
    assert bar_lines["N3"].rstrip(" │").endswith("90%") and bar_lines["W"].rstrip(" │").endswith("2%")


def test_stats_panel_matches_the_statistics() -> None:
    state = DashboardState()
    for index, stage in enumerate([0] * 10 + [2] * 40 + [4] * 10):
        state.add_epoch(staged(index, stage))
    words = " ".join("\n".join(render(stats_panel(state), width=60)).split())
    assert "in bed 0h30 W 0h05" in words
    assert "sleep onset 0h05 N1 0h00 0%" in words
    assert "total sleep 0h25 N2 0h20 80%" in words
    assert "efficiency 83.3% N3 0h00 0%" in words
    assert "WASO 0h00 REM 0h05 20%" in words
    assert "REM latency 0h20" in words and "cycles 1" in words and "good signal 100.0%" in words


def test_hypnogram_panel_shows_agreement_only_with_truth() -> None:
    state = night_state(100)
    text = "\n".join(render(hypnogram_panel(state), width=80))
    agree = state.agreement()
    assert f"agreement {agree.accuracy:.1%} · κ {agree.kappa:.2f} · {agree.n_epochs} epochs" in text
    assert "\n│ sig " in text  # a flat epoch (index 96) is marked


def test_trace_panel_shows_scale_and_quality() -> None:
    state = night_state(3)
    state.quality = "flat"
    text = "\n".join(render(trace_panel(state), width=60))
    assert "+50 µV" in text and "-50 µV" in text
    assert "signal flat" in text and "EEG · AF7 · last 10 s" in text


@pytest.mark.parametrize(
    ("minutes_from_now", "expected"),
    [(0, "window opens in 0:20:00"), (30, "latest wake in 0:20:00"), (60, "window closed")],
)
def test_alarm_countdown(minutes_from_now: int, expected: str) -> None:
    state = night_state(3)
    lines = render(status_panel(state, NOW + timedelta(minutes=minutes_from_now)), width=60)
    assert expected in "\n".join(lines)


def test_alarm_countdown_mixes_aware_and_naive_times() -> None:
    state = night_state(3)
    aware_now = NOW.astimezone(timezone.utc)
    text = "\n".join(render(status_panel(state, aware_now), width=60))
    assert "alarm 06:30–07:00" in text
