"""Smart alarm: the wake-up rule, the clock it runs on, and the sleep-onset definition it shares."""

from streamstage.alarm.clock import ClockMap, next_occurrence, parse_clock_time, parse_duration_s
from streamstage.alarm.onset import SleepOnsetTracker
from streamstage.alarm.rule import AlarmConfig, AlarmDecision, SmartAlarm
from streamstage.alarm.simulate import epochs_from_hypnogram, simulate

__all__ = [
    "AlarmConfig",
    "AlarmDecision",
    "ClockMap",
    "SleepOnsetTracker",
    "SmartAlarm",
    "epochs_from_hypnogram",
    "next_occurrence",
    "parse_clock_time",
    "parse_duration_s",
    "simulate",
]
