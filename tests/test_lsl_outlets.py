"""Stage outlets on loopback: a JSON marker and five probabilities per epoch, stamped at its start."""

from __future__ import annotations

import json
import time

import numpy as np
import pylsl

from streamstage import STAGES
from streamstage.lsl.meta import StreamLayout
from streamstage.lsl.outlets import PROBS_STREAM, STAGES_STREAM, StageOutlets
from streamstage.records import StagedEpoch


def open_inlet(name: str, source_id: str) -> pylsl.StreamInlet:
    infos = pylsl.resolve_bypred(f"name='{name}' and source_id='{source_id}'", 1, 2.0)
    assert infos, f"no stream {name}"
    inlet = pylsl.StreamInlet(infos[0], processing_flags=pylsl.proc_clocksync)
    inlet.open_stream(2.0)
    return inlet


def pull(inlet: pylsl.StreamInlet, count: int) -> tuple[list[list], list[float]]:
    samples, stamps = [], []
    deadline = time.monotonic() + 5.0
    while len(samples) < count and time.monotonic() < deadline:
        sample, stamp = inlet.pull_sample(timeout=0.05)
        if sample is not None:
            samples.append(sample)
            stamps.append(stamp)
    return samples, stamps


def test_each_epoch_is_published_as_json_and_as_probabilities() -> None:
    source_id = f"test-outlets-{time.monotonic_ns()}"
    t0 = pylsl.local_clock()
    epochs = [
        StagedEpoch(0, t0, 2, (0.05, 0.1, 0.7, 0.1, 0.05), latency_s=0.4),
        StagedEpoch(1, t0 + 30.0, 4, (0.0, 0.1, 0.1, 0.0, 0.8), quality="flat", latency_s=0.3),
    ]
    with StageOutlets(source_id) as outlets:
        markers = open_inlet(STAGES_STREAM, f"{STAGES_STREAM}@{source_id}")
        probs = open_inlet(PROBS_STREAM, f"{PROBS_STREAM}@{source_id}")
        layout = StreamLayout.from_info(probs.info(2.0))
        for epoch in epochs:
            outlets.push(epoch)
        texts, marker_stamps = pull(markers, 2)
        values, prob_stamps = pull(probs, 2)
    records = [json.loads(text) for (text,) in texts]
    assert records == [epoch.to_dict() for epoch in epochs]
    assert records[1]["stage"] == "REM" and records[1]["quality"] == "flat"
    assert records[0]["probs"] == dict(zip(STAGES, (0.05, 0.1, 0.7, 0.1, 0.05), strict=True))
    np.testing.assert_allclose(values, [e.probs for e in epochs], rtol=1e-6)
    np.testing.assert_allclose(marker_stamps, [e.start_s for e in epochs], atol=2e-3)
    np.testing.assert_allclose(prob_stamps, [e.start_s for e in epochs], atol=2e-3)
    assert layout.labels == STAGES and layout.channel_format == "float32" and layout.sfreq_hz == 0.0


def test_push_after_close_is_ignored() -> None:
    outlets = StageOutlets(f"test-outlets-closed-{time.monotonic_ns()}")
    outlets.close()
    outlets.push(StagedEpoch(0, 1.0, 0, (1.0, 0.0, 0.0, 0.0, 0.0)))  # a sink that is done drops late epochs
