"""Event payloads, and the detector turning staged epochs into stage_change, sleep_onset, signal events."""

from __future__ import annotations

import json
from datetime import date, time

import pytest

from streamstage.alarm import AlarmConfig, ClockMap, epochs_from_hypnogram, simulate
from streamstage.hooks import EVENT_NAMES, Event, EventDetector
from streamstage.records import StagedEpoch

W, N1, N2, N3, REM = range(5)
CLOCK = ClockMap.from_start_clock("23:00", day=date(2024, 5, 1))


def names(events: list[Event]) -> list[str]:
    return [event.name for event in events]


def detect(codes: list[int], qualities: list[str] | None = None, **kwargs: object) -> list[Event]:
    detector = EventDetector(**kwargs)  # type: ignore[arg-type]
    return [
        event
        for epoch in epochs_from_hypnogram(codes, qualities=qualities)
        for event in detector.update(epoch)
    ]


def test_epoch_event_payload_json_and_environment() -> None:
    epoch = StagedEpoch(7, 210.0, N2, (0.01, 0.09, 0.8, 0.05, 0.05), "good", 0.02)
    event = Event.from_epoch("epoch", epoch, CLOCK.wall(epoch.start_s))
    payload = json.loads(event.to_json())
    assert payload["event"] == "epoch" and payload["epoch"] == 7 and payload["stage"] == "N2"
    assert payload["time_s"] == 210.0 and payload["wall"] == "2024-05-01T23:03:30" + payload["wall"][19:]
    assert payload["probs"] == {"W": 0.01, "N1": 0.09, "N2": 0.8, "N3": 0.05, "REM": 0.05}
    env = event.env()
    assert env["STREAMSTAGE_EVENT"] == "epoch"
    assert env["STREAMSTAGE_STAGE"] == "N2"
    assert env["STREAMSTAGE_EPOCH"] == "7"
    assert env["STREAMSTAGE_TIME"] == payload["wall"]
    assert env["STREAMSTAGE_TIME_S"] == "210.0"
    assert env["STREAMSTAGE_PROB_N2"] == "0.8"
    assert env["STREAMSTAGE_QUALITY"] == "good"


def test_unknown_event_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event 'alarms'"):
        Event("alarms")
    assert set(EVENT_NAMES) == {"alarm", "stage_change", "epoch", "sleep_onset", "signal_lost", "signal_back"}


def test_alarm_events_carry_the_kind() -> None:
    config = AlarmConfig(time=time(0, 30))
    smart = simulate(config, CLOCK, epochs_from_hypnogram([W] * 10 + [N2] * 200))[-1]
    event = Event.from_alarm(smart)
    assert (event.name, event.extra["kind"], event.stage) == ("alarm", "smart", "N2")
    assert event.time_s == smart.epoch.end_s and event.env()["STREAMSTAGE_KIND"] == "smart"
    fallback = simulate(config, CLOCK, [])[-1]
    event = Event.from_alarm(fallback)
    assert (event.extra["kind"], event.epoch, event.stage) == ("fallback", None, None)
    assert event.wall == "2024-05-02T00:30:00" + event.wall[19:]
    assert event.env()["STREAMSTAGE_STAGE"] == ""  # set but empty, so `set -u` scripts still run


def test_sleep_onset_after_three_sleep_epochs_placed_at_the_first() -> None:
    events = detect([W, W, N1, W, N1, N1, REM, N1, N2], epoch_events=False)
    (onset,) = [event for event in events if event.name == "sleep_onset"]
    assert (onset.epoch, onset.extra["onset_epoch"], onset.extra["onset_s"]) == (6, 4, 120.0)


def test_sleep_onset_on_the_first_n2_even_without_three_epochs() -> None:
    events = detect([W, W, N1, N2, W, W], epoch_events=False)
    (onset,) = [event for event in events if event.name == "sleep_onset"]
    assert (onset.epoch, onset.extra["onset_epoch"]) == (3, 2)
    assert names(events) == ["stage_change", "sleep_onset", "stage_change", "stage_change"]


def test_sleep_onset_needs_good_epochs_and_comes_once() -> None:
    qualities = ["good", "flat", "good", "good", "good", "good"] + ["good"] * 4
    events = detect([N1, N2, N1, N1, W, N1, N1, N1, N2, N2], qualities, onset_epochs=3, epoch_events=False)
    onsets = [event for event in events if event.name == "sleep_onset"]
    assert len(onsets) == 1 and onsets[0].extra["onset_epoch"] == 5


def test_stage_changes_skip_bad_epochs() -> None:
    qualities = ["good", "good", "flat", "good", "good"]
    events = detect([N2, N2, W, N2, N3], qualities, epoch_events=False)
    changes = [
        (event.epoch, event.extra["from"], event.extra["to"])
        for event in events
        if event.name == "stage_change"
    ]
    assert changes == [(4, "N2", "N3")]


def test_signal_lost_and_back_from_missing_epochs_or_from_the_inlet() -> None:
    detector = EventDetector(to_wall=CLOCK.wall, epoch_events=False)
    epochs = epochs_from_hypnogram([W] * 6, qualities=["good", "missing", "missing", "good", "good", "good"])
    per_epoch = [names(detector.update(epoch)) for epoch in epochs[:4]]
    assert per_epoch == [[], ["signal_lost"], [], ["signal_back"]]
    assert detector.set_signal(False, 125.0)[0].wall.startswith("2024-05-01T23:02:05")
    assert detector.set_signal(False, 126.0) == []
    assert names(detector.update(epochs[4])) == []  # it started before the loss: no news about the signal
    assert names(detector.update(epochs[5])) == ["signal_back"]


def test_epoch_events_every_epoch_with_wall_time() -> None:
    events = detect([W, W, W], to_wall=CLOCK.wall)
    assert names(events) == ["epoch"] * 3
    assert events[2].wall.startswith("2024-05-01T23:01:00")


def test_state_round_trip_continues_identically() -> None:
    epochs = epochs_from_hypnogram(
        [W, W, N1, N1, N2, N2, N3, REM, N2, W, N1], qualities=["good"] * 5 + ["missing"] + ["good"] * 5
    )
    whole = EventDetector()
    expected = [event for epoch in epochs for event in whole.update(epoch)]
    first = EventDetector()
    got = [event for epoch in epochs[:4] for event in first.update(epoch)]
    resumed = EventDetector()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    got += [event for epoch in epochs[4:] for event in resumed.update(epoch)]
    assert got == expected
