"""The smart-alarm rule on crafted nights: when it may ring, when it must not, fallback, snooze, resume."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from streamstage.alarm import AlarmConfig, ClockMap, SmartAlarm, epochs_from_hypnogram, simulate
from streamstage.errors import ResumeError
from streamstage.records import StagedEpoch

W, N1, N2, N3, REM = range(5)
# The night starts at 05:00 so the 06:30-07:00 window is epochs 179..238 (ends 06:30..06:59:30) and
# epoch 239 ends exactly at 07:00.
CLOCK = ClockMap.from_start_clock("05:00", day=date(2024, 5, 1))
CONFIG = AlarmConfig(time=time(7, 0))
FIRST_IN_WINDOW = 179
ASLEEP = [W] * 10 + [N2] * 60  # onset at epoch 10, long before the window


def run(codes: list[int], config: AlarmConfig = CONFIG, **kwargs: object) -> list:
    return simulate(config, CLOCK, epochs_from_hypnogram(codes, **kwargs))  # type: ignore[arg-type]


def fired(decisions: list) -> list:
    return [decision for decision in decisions if decision.fired]


def test_rings_at_the_end_of_the_second_light_epoch_inside_the_window() -> None:
    codes = ASLEEP + [N3] * (192 - len(ASLEEP)) + [N2] * 60
    decisions = run(codes)
    (alarm,) = fired(decisions)
    assert alarm.kind == "smart"
    assert alarm.epoch.index == 193
    assert alarm.wall == CLOCK.wall(alarm.epoch.end_s) == datetime(2024, 5, 1, 6, 37).astimezone()
    in_window = [d for d in decisions if d.epoch is not None and d.epoch.index < 192]
    assert {d.reason for d in in_window} == {"not_light"}
    assert in_window[0].epoch.index == FIRST_IN_WINDOW  # nothing is logged before the window opens
    waiting = next(d for d in decisions if d.epoch is not None and d.epoch.index == 192)
    assert (waiting.action, waiting.reason) == ("considered", "waiting")


def test_light_sleep_running_into_the_window_rings_as_it_opens() -> None:
    (alarm,) = fired(run([W] * 10 + [N2] * 230))
    assert (alarm.kind, alarm.epoch.index) == ("smart", FIRST_IN_WINDOW)


@pytest.mark.parametrize("deep", [N3, REM])
def test_never_rings_in_n3_or_rem(deep: int) -> None:
    decisions = run(ASLEEP + [deep] * 170)
    (alarm,) = fired(decisions)
    assert alarm.kind == "fallback"
    assert alarm.wall == CLOCK.wall(240 * 30.0)
    assert all(d.reason == "not_light" for d in decisions if not d.fired)


def test_never_rings_before_the_first_n2() -> None:
    decisions = run([W] * 100 + [N1] * 140)  # asleep (3 N1 in a row) but never reached N2
    assert fired(decisions)[0].kind == "fallback"
    assert {d.reason for d in decisions if not d.fired} == {"not_asleep"}


def test_never_rings_too_soon_after_sleep_onset() -> None:
    codes = [W] * 185 + [N2] * 55  # falls asleep at epoch 185 (06:32:30), 20 min later is 06:52:30
    (alarm,) = fired(decisions := run(codes))
    assert alarm.kind == "smart"
    assert alarm.epoch.end_s - 185 * 30 >= CONFIG.min_sleep_s
    assert alarm.epoch.end_s - 185 * 30 - 30 < CONFIG.min_sleep_s
    assert {d.reason for d in decisions if not d.fired and d.epoch.index > 185} == {"too_soon"}


def test_never_rings_on_bad_quality_and_bad_epochs_break_the_run() -> None:
    codes = ASLEEP + [N3] * (190 - len(ASLEEP)) + [N2] * 50
    qualities = ["good"] * 190 + ["flat", "good", "clipped", "good", "good"] + ["good"] * 45
    decisions = run(codes, qualities=qualities)
    (alarm,) = fired(decisions)
    assert alarm.epoch.index == 194  # 191 and 193 are single light epochs between bad ones
    rejected = {d.epoch.index: d.reason for d in decisions if d.action == "rejected"}
    assert rejected[190] == rejected[192] == "bad_quality"
    assert "flat" in next(d.detail for d in decisions if d.epoch.index == 190)


def _epoch(index: int, probs: tuple[float, float, float, float, float]) -> StagedEpoch:
    return StagedEpoch(index, index * 30.0, max(range(5), key=probs.__getitem__), probs)


def test_the_summed_light_probability_decides() -> None:
    alarm = SmartAlarm(CONFIG, CLOCK)
    for epoch in epochs_from_hypnogram(ASLEEP + [N3] * (FIRST_IN_WINDOW - len(ASLEEP))):
        alarm.update(epoch)
    unsure = _epoch(FIRST_IN_WINDOW, (0.05, 0.05, 0.45, 0.4, 0.05))  # N2 by a nose: light only 0.5
    (decision,) = alarm.update(unsure)
    assert (decision.reason, round(decision.light_prob, 2)) == ("low_probability", 0.5)
    boundary = (0.05, 0.36, 0.34, 0.2, 0.05)  # neither N1 nor N2 is sure, but light sleep is (0.7)
    assert alarm.update(_epoch(FIRST_IN_WINDOW + 1, boundary))[0].reason == "waiting"
    assert alarm.update(_epoch(FIRST_IN_WINDOW + 2, boundary))[0].kind == "smart"


def test_fallback_fires_from_check_time_without_any_epoch_once_and_again_after_snooze() -> None:
    alarm = SmartAlarm(CONFIG, CLOCK)
    seven = datetime(2024, 5, 1, 7, 0).astimezone()
    assert alarm.alarm_at == seven
    assert alarm.check_time(datetime(2024, 5, 1, 6, 59, 59)) == []  # naive is local time
    (ring,) = alarm.check_time(seven)
    assert (ring.kind, ring.epoch, ring.wall) == ("fallback", None, seven)
    assert alarm.check_time(seven + timedelta(minutes=5)) == []
    snoozed = alarm.snooze(minutes=9)
    assert (snoozed.action, alarm.alarm_at, alarm.fired) == ("snoozed", seven + timedelta(minutes=14), False)
    assert alarm.check_time(seven + timedelta(minutes=13, seconds=59)) == []
    (again,) = alarm.check_time(seven + timedelta(minutes=14))
    assert again.kind == "fallback" and alarm.fire_count == 2
    assert alarm.check_time(seven + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="positive"):
        alarm.snooze(minutes=0)


def test_fires_once_a_night_until_snoozed_and_snooze_needs_fresh_light_epochs() -> None:
    epochs = epochs_from_hypnogram(ASLEEP + [N2] * 170)
    alarm = SmartAlarm(CONFIG, CLOCK)
    decisions = [d for epoch in epochs[:200] for d in alarm.update(epoch)]
    assert [d.epoch.index for d in fired(decisions)] == [FIRST_IN_WINDOW]
    alarm.snooze()  # default 9 min from the latest time seen: the end of epoch 199
    assert alarm.alarm_at == CLOCK.wall(200 * 30.0 + CONFIG.snooze_s)
    assert alarm.update(epochs[200])[0].reason == "waiting"
    assert alarm.update(epochs[201])[0].kind == "smart"
    assert [alarm.update(epoch) for epoch in epochs[202:]] == [[]] * 38
    assert alarm.check_time(CLOCK.wall(300 * 30.0)) == []


def test_state_survives_a_json_round_trip_and_a_restart_after_the_alarm_time_resolved() -> None:
    codes = ASLEEP + [N3] * 120 + [REM, N2, N1, N2, N2] + [N3] * 45
    epochs = epochs_from_hypnogram(codes)
    whole = [d.to_dict() for d in simulate(CONFIG, CLOCK, epochs)]
    first = SmartAlarm(CONFIG, CLOCK)
    before = [d.to_dict() for epoch in epochs[:188] for d in first.update(epoch)]
    state = json.loads(json.dumps(first.state_dict()))
    # After a crash at 06:34 the new session's clock starts then: 07:00 would resolve to today, 06:34
    # on a day later to tomorrow; the saved state keeps this morning's alarm either way.
    later = ClockMap(CLOCK.stream_start_s, CLOCK.wall_start + timedelta(days=1, hours=2))
    resumed = SmartAlarm(CONFIG, later)
    resumed.load_state_dict(state)
    resumed.clock = CLOCK
    after = [d.to_dict() for epoch in epochs[188:] for d in resumed.update(epoch)]
    assert before + after == whole
    assert resumed.alarm_at == first.alarm_at


def test_damaged_state_is_a_resume_error() -> None:
    alarm = SmartAlarm(CONFIG, CLOCK)
    state = alarm.state_dict()
    del state["alarm_at"]
    with pytest.raises(ResumeError, match="alarm state"):
        alarm.load_state_dict(state)


def test_decisions_are_logged_and_json_ready(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="streamstage.alarm"):
        decisions = run(ASLEEP + [N3] * 115 + [N2] * 55)
    records = [json.loads(json.dumps(d.to_dict())) for d in decisions]
    assert {r["action"] for r in records} == {"rejected", "considered", "fired"}
    assert records[-1]["reason"] == "smart" and records[-1]["stage"] == "N2"
    assert any("alarm fired (smart)" in message for message in caplog.messages)
    assert sum("alarm rejected (not_light)" in message for message in caplog.messages) == 6


# A night as runs of one stage, so that sleep, light stretches and the window all happen often.
stage_runs = st.lists(
    st.tuples(
        st.sampled_from([W, N1, N2, N2, N2, N3, REM]),
        st.integers(1, 20),
        st.sampled_from(["good", "good", "good", "flat"]),
        st.floats(0.4, 1.0),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(runs=stage_runs, consecutive=st.integers(1, 3), min_sleep_min=st.integers(0, 10))
def test_any_smart_ring_meets_every_condition(runs: list, consecutive: int, min_sleep_min: int) -> None:
    """Invariants on random nights starting at 06:20: exactly one ring, smart only when every condition
    holds, else the fallback at 07:00."""
    clock = ClockMap.from_start_clock("06:20", day=date(2024, 5, 1))
    config = AlarmConfig(time=time(7, 0), consecutive=consecutive, min_sleep_s=min_sleep_min * 60.0)
    night = [
        (stage, quality, confidence) for stage, length, quality, confidence in runs for _ in range(length)
    ]
    epochs = []
    for index, (stage, quality, confidence) in enumerate(night[:90]):
        rest = (1 - confidence) / 4
        probs = tuple(confidence if code == stage else rest for code in range(5))
        epochs.append(StagedEpoch(index, index * 30.0, stage, probs, quality))  # type: ignore[arg-type]
    (ring,) = fired(simulate(config, clock, epochs))
    event(f"rang: {ring.kind}")
    if ring.kind == "fallback":
        assert ring.wall == datetime(2024, 5, 1, 7, 0).astimezone()
        return
    last = epochs[ring.epoch.index - consecutive + 1 : ring.epoch.index + 1]
    assert len(last) == consecutive
    assert clock.wall(ring.epoch.end_s) >= datetime(2024, 5, 1, 6, 30).astimezone()
    assert all(e.quality_ok and e.stage in (N1, N2) and e.probs[N1] + e.probs[N2] >= 0.6 for e in last)
    assert any(e.quality_ok and e.stage == N2 for e in epochs[: ring.epoch.index + 1])
    first_sleep = next(e for e in epochs if e.quality_ok and e.stage != W)
    assert ring.epoch.end_s - first_sleep.start_s >= config.min_sleep_s
