"""Hooks run off the staging thread: dispatch never waits, hangs time out, queues stay bounded."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

from streamstage.hooks import CallableHook, Event, Hook, HookDispatcher, HookSpec, Outcome, build_hook

ALL = ("alarm", "stage_change", "epoch", "sleep_onset", "signal_lost", "signal_back")


def event(name: str, index: int) -> Event:
    return Event(name=name, time_s=index * 30.0, epoch=index)


class Recorder:
    """A Python hook that keeps what it gets and can be held at a gate to play a slow hook."""

    def __init__(self, gated: bool = False) -> None:
        self.events: list[Event] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.done = threading.Condition()
        if not gated:
            self.gate.set()

    def __call__(self, event: Event) -> None:
        self.entered.set()
        self.gate.wait(30)
        with self.done:
            self.events.append(event)
            self.done.notify_all()

    def wait_for(self, count: int) -> list[Event]:
        with self.done:
            assert self.done.wait_for(lambda: len(self.events) >= count, timeout=20), self.events
        return self.events

    def hook(self, name: str = "recorder", events: tuple[str, ...] = ALL, timeout_s: float = 20) -> Hook:
        return CallableHook(HookSpec(name, events, "callable", "tests:recorder", timeout_s), self)


def test_a_hanging_command_neither_delays_dispatch_nor_the_next_events(tmp_path: Path) -> None:
    started = tmp_path / "started"
    sleeper = tmp_path / "sleep30.py"
    sleeper.write_text(
        f"#!{sys.executable}\nimport pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(30)\n"
    )
    sleeper.chmod(0o755)
    hanging = build_hook(HookSpec("sleeper", ("alarm", "epoch"), "command", (str(sleeper),), timeout_s=0.5))
    recorder = Recorder()
    dispatcher = HookDispatcher([hanging, recorder.hook()])
    sent = [event("alarm", 1), event("epoch", 2), event("epoch", 3)]
    for item in sent:
        dispatcher.dispatch(item)
    assert recorder.wait_for(3) == sent  # delivered while the command hangs
    results = dispatcher.close(timeout_s=20)
    timed_out = [r for r in results if r.hook == "sleeper"]
    assert [(r.status, r.epoch) for r in timed_out] == [("timed_out", 1), ("timed_out", 2), ("timed_out", 3)]
    assert "still running after 0.5 s" in timed_out[0].detail
    assert started.exists()
    assert dispatcher.counts == {"ok": 3, "failed": 0, "timed_out": 3, "dropped": 0}
    assert results[0].to_dict()["event"] == "hook_result"


def test_dispatch_returns_while_the_hook_is_still_busy() -> None:
    slow = Recorder(gated=True)
    dispatcher = HookDispatcher([slow.hook()])
    dispatcher.dispatch(event("alarm", 1))
    assert slow.entered.wait(20)  # the hook is running and held at its gate, yet dispatch has returned
    assert slow.events == []
    dispatcher.dispatch(event("alarm", 2))  # and dispatching more does not wait either
    slow.gate.set()
    assert [e.epoch for e in slow.wait_for(2)] == [1, 2]
    dispatcher.close()


def test_each_hook_sees_its_events_in_order_and_only_those_it_asked_for() -> None:
    everything, alarms_only = Recorder(), Recorder()
    dispatcher = HookDispatcher([everything.hook("all"), alarms_only.hook("alarms", events=("alarm",))])
    sent = [event("epoch" if i % 5 else "alarm", i) for i in range(40)]
    for item in sent:
        dispatcher.dispatch(item)
    dispatcher.close(timeout_s=20)
    assert everything.events == sent
    assert alarms_only.events == [item for item in sent if item.name == "alarm"]


def test_a_full_queue_drops_epoch_events_first_then_others_but_alarms_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = Recorder(gated=True)
    dispatcher = HookDispatcher([slow.hook()], max_pending=3)
    dispatcher.dispatch(event("alarm", 0))
    assert slow.entered.wait(20)  # the worker holds event 0; the queue is empty
    names = ["epoch", "stage_change", "epoch", "alarm", "alarm", "alarm", "alarm"]
    with caplog.at_level(logging.WARNING, logger="streamstage.hooks"):
        for index, name in enumerate(names, start=1):
            dispatcher.dispatch(event(name, index))
        dropped = dispatcher.drain_results()
    assert [(r.event, r.epoch, r.status) for r in dropped] == [
        ("epoch", 1, "dropped"),
        ("epoch", 3, "dropped"),
        ("stage_change", 2, "dropped"),
        ("alarm", 4, "dropped"),
    ]
    assert sum("dropped" in message and "behind" in message for message in caplog.messages) == 4
    slow.gate.set()
    dispatcher.close(timeout_s=20)
    assert [e.epoch for e in slow.events] == [0, 5, 6, 7]
    assert dispatcher.counts["dropped"] == 4 and dispatcher.counts["ok"] == 4


class Broken(Hook):
    def deliver(self, event: Event) -> Outcome:
        if event.epoch == 1:
            raise ZeroDivisionError("bug in a hook")
        return Outcome("ok", "fine")


def test_a_hook_that_raises_is_reported_and_its_worker_goes_on() -> None:
    dispatcher = HookDispatcher([Broken(HookSpec("broken", ALL, "callable", "x:y"))])
    dispatcher.dispatch(event("epoch", 1))
    dispatcher.dispatch(event("epoch", 2))
    results = dispatcher.close(timeout_s=20)
    assert [(r.epoch, r.status) for r in results] == [(1, "failed"), (2, "ok")]
    assert "ZeroDivisionError" in results[0].detail


def test_close_gives_up_on_a_stuck_hook_and_reports_what_was_left() -> None:
    stuck = Recorder(gated=True)
    dispatcher = HookDispatcher([stuck.hook()])
    for index in range(3):
        dispatcher.dispatch(event("sleep_onset", index))
    assert stuck.entered.wait(20)
    results = dispatcher.close(timeout_s=0.1)
    assert [(r.epoch, r.status) for r in results] == [(1, "dropped"), (2, "dropped")]
    assert "stopped" in results[0].detail
    with pytest.raises(RuntimeError, match="after close"):
        dispatcher.dispatch(event("alarm", 9))
    stuck.gate.set()
