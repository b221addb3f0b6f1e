"""The provisional stage leaves the pipeline as records that an LSL outlet publishes on its own stream and
the dashboard shows until the epoch is final."""

from __future__ import annotations

import json
import time

import numpy as np
import pylsl
from rich.console import Console

from streamstage.dashboard.panels import stage_panel
from streamstage.dashboard.state import DashboardState
from streamstage.lsl.outlets import PROVISIONAL_STREAM, STAGES_STREAM, StageOutlets
from streamstage.records import ProvisionalStage, StagedEpoch


def _render(renderable: object, width: int = 40) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_provisional_stages_are_published_on_their_own_stream_stamped_when_taken() -> None:
    source_id = f"test-provisional-{time.monotonic_ns()}"
    t0 = pylsl.local_clock()
    peeks = [ProvisionalStage(7, t0, elapsed, 2, (0.1, 0.1, 0.6, 0.1, 0.1)) for elapsed in (5.0, 10.0)]
    with StageOutlets(source_id, provisional=True) as outlets:
        infos = pylsl.resolve_bypred(f"source_id='{PROVISIONAL_STREAM}@{source_id}'", 1, 2.0)
        assert infos and infos[0].type() == "Markers"
        inlet = pylsl.StreamInlet(infos[0], processing_flags=pylsl.proc_clocksync)
        inlet.open_stream(2.0)
        for peek in peeks:
            outlets.push_provisional(peek)
        received, deadline = [], time.monotonic() + 5.0
        while len(received) < 2 and time.monotonic() < deadline:
            sample, stamp = inlet.pull_sample(timeout=0.05)
            if sample is not None:
                received.append((json.loads(sample[0]), stamp))
    assert [record for record, _ in received] == [peek.to_dict() for peek in peeks]
    assert received[0][0]["provisional"] is True and received[0][0]["stage"] == "N2"
    np.testing.assert_allclose([stamp for _, stamp in received], [t0 + 5.0, t0 + 10.0], atol=2e-3)


def test_without_provisional_there_is_no_provisional_stream_and_pushing_is_a_no_op() -> None:
    source_id = f"test-no-provisional-{time.monotonic_ns()}"
    with StageOutlets(source_id) as outlets:
        assert pylsl.resolve_bypred(f"source_id='{STAGES_STREAM}@{source_id}'", 1, 2.0)
        assert not pylsl.resolve_bypred(f"source_id='{PROVISIONAL_STREAM}@{source_id}'", 1, 0.5)
        outlets.push_provisional(ProvisionalStage(0, 0.0, 5.0, 0, (1.0, 0.0, 0.0, 0.0, 0.0)))


def test_the_stage_panel_shows_the_epoch_in_progress_until_it_is_final() -> None:
    state = DashboardState()
    state.add_epoch(StagedEpoch(3, 90.0, 2, (0.0, 0.1, 0.8, 0.1, 0.0)))
    state.set_provisional(ProvisionalStage(4, 120.0, 15.0, 3, (0.0, 0.0, 0.29, 0.71, 0.0)))
    text = _render(stage_panel(state))
    assert "now N3 71% · 15 s in" in text
    state.add_epoch(StagedEpoch(4, 120.0, 3, (0.0, 0.0, 0.2, 0.8, 0.0)))
    assert state.provisional is None
    assert "now" not in _render(stage_panel(state))
