"""The smart alarm on real scored nights (Sleep-EDF SC4001, a 6-h YASA night), against a plain oracle."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import edfio
import numpy as np
import pytest

from streamstage.alarm import AlarmConfig, ClockMap, epochs_from_hypnogram, simulate
from streamstage.io.hypnogram import UNKNOWN, read_hypnogram

W, N1, N2, N3, REM = range(5)


def staged(path: Path) -> tuple[list[int], list[str]]:
    """Scored stages, unknown epochs ("?", movement) as W of quality "artifact" so the alarm ignores them."""
    stages = np.asarray(read_hypnogram(path).stages)
    qualities = ["artifact" if code == UNKNOWN else "good" for code in stages]
    return [W if code == UNKNOWN else int(code) for code in stages], qualities


def oracle(codes: list[int], good: list[bool], alarm_s: float, config: AlarmConfig) -> tuple[str, int | None]:
    """The rule written out plainly for confident scored epochs: ('smart', epoch) or ('fallback', None)."""
    onset = first_n2 = None
    run_start = None
    for i, code in enumerate(codes):
        if first_n2 is None and good[i] and code == N2:
            first_n2 = i
        if onset is None:
            run_start = (run_start if run_start is not None else i) if good[i] and code != W else None
            if run_start is not None and (code == N2 or i - run_start + 1 >= config.onset_epochs):
                onset = run_start
        end_s = (i + 1) * 30.0
        if end_s >= alarm_s:
            return "fallback", None
        if end_s < alarm_s - config.window_s or first_n2 is None or onset is None:
            continue
        recent = range(i - config.consecutive + 1, i + 1)
        light = i + 1 >= config.consecutive and all(good[j] and codes[j] in (N1, N2) for j in recent)
        if light and end_s - onset * 30.0 >= config.min_sleep_s:
            return "smart", i
    return "fallback", None


def check_night(codes: list[int], qualities: list[str], clock: ClockMap, alarm_times: list[time]) -> set[str]:
    kinds = set()
    good = [quality == "good" for quality in qualities]
    for at in alarm_times:
        config = AlarmConfig(time=at)
        decisions = simulate(config, clock, epochs_from_hypnogram(codes, qualities=qualities))
        (ring,) = [d for d in decisions if d.fired]
        alarm_s = clock.stream(clock.next_occurrence(at))
        kind, index = oracle(codes, good, alarm_s, config)
        assert (ring.kind, None if ring.kind == "fallback" else ring.epoch.index) == (kind, index), at
        if kind == "smart":
            assert ring.epoch.stage in (N1, N2) and ring.epoch.stage_name in ("N1", "N2")
            assert codes[index - 1] in (N1, N2)
            assert clock.next_occurrence(at) - timedelta(minutes=30) <= ring.wall < clock.next_occurrence(at)
        else:
            assert ring.wall == clock.next_occurrence(at)
        kinds.add(kind)
    return kinds


def every(start: str, stop: str, minutes: int) -> list[time]:
    now, end = datetime.fromisoformat(f"2000-01-01T{start}"), datetime.fromisoformat(f"2000-01-02T{stop}")
    times = []
    while now <= end:
        times.append(now.time())
        now += timedelta(minutes=minutes)
    return times


def test_yasa_night_rings_like_the_oracle_for_alarms_all_night(shared_data: Path) -> None:
    codes, qualities = staged(shared_data / "hypnograms/yasa-full-6hrs-hypno-30s.txt")
    assert len(codes) == 720
    clock = ClockMap.from_start_clock("23:00", day=date(2024, 5, 1))
    # 23:10 is before sleep (fallback), the night ends at 05:00 (later alarms ring from check_time).
    assert check_night(codes, qualities, clock, every("23:10", "05:40", 10)) == {"smart", "fallback"}


def test_yasa_night_waits_through_deep_sleep_for_light_sleep(shared_data: Path) -> None:
    codes, qualities = staged(shared_data / "hypnograms/yasa-full-6hrs-hypno-30s.txt")
    clock = ClockMap.from_start_clock("23:00", day=date(2024, 5, 1))
    decisions = simulate(
        AlarmConfig(time=time(3, 30)), clock, epochs_from_hypnogram(codes, qualities=qualities)
    )
    ring = decisions[-1]
    assert ring.kind == "smart" and ring.epoch.stage_name in ("N1", "N2")
    rejected = [d for d in decisions if d.action == "rejected"]
    assert rejected and {d.epoch.stage_name for d in rejected} <= {"W", "N3", "REM"}
    assert all(d.wall >= datetime(2024, 5, 2, 3, 0).astimezone() for d in decisions)


def test_sleep_edf_night_on_its_own_clock(shared_data: Path) -> None:
    path = shared_data / "hypnograms/SC4001EC-Hypnogram.edf"
    codes, qualities = staged(path)
    header = edfio.read_edf(path)
    clock = ClockMap(0.0, datetime.combine(header.startdate, header.starttime))  # lights on at 16:13
    kinds = check_night(codes, qualities, clock, every("17:00", "10:00", 20))
    assert kinds == {"smart", "fallback"}
    seven = simulate(AlarmConfig(time=time(7, 0)), clock, epochs_from_hypnogram(codes, qualities=qualities))
    assert seven[-1].kind == "smart"
    assert seven[-1].wall.date() == date(1989, 4, 25)  # crossed midnight: next morning's 07:00 window


@pytest.mark.parametrize("name", ["yasa-full-6hrs-hypno-30s.txt", "SC4001EC-Hypnogram.edf"])
def test_no_ring_before_the_first_n2_on_real_nights(shared_data: Path, name: str) -> None:
    codes, qualities = staged(shared_data / "hypnograms" / name)
    first_n2 = codes.index(N2)
    clock = ClockMap.from_start_clock("22:00", day=date(2024, 5, 1))
    alarm_at = clock.wall((first_n2 + 1) * 30.0 + 10 * 60)  # window covers falling asleep
    config = AlarmConfig(time=alarm_at.time().replace(second=0, microsecond=0), min_sleep_s=0)
    decisions = simulate(config, clock, epochs_from_hypnogram(codes, qualities=qualities))
    ring = decisions[-1]
    assert ring.fired and (ring.kind == "fallback" or ring.epoch.index >= first_n2)
    before = [d for d in decisions if d.epoch is not None and d.epoch.index < first_n2]
    assert any(d.epoch.stage == N1 for d in before)  # dozing off inside the window
    assert all(d.reason == ("not_asleep" if d.epoch.stage == N1 else "not_light") for d in before)
