"""Whole-night throughput of the live path through LSL: a night replayed at maximum speed into the inlet,
the timestamp regularizer and the staging pipeline, as a multiple of real time.

Both buffers (the replay's outlet and the inlet) hold the whole night, so a consumer slower than the
replay falls behind without losing samples; the result counts what arrived, so a loss would show. The
caller must have configured LSL (``configure_lsl(loopback_only=True)``) before: nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from streamstage.bench.measure import latency_summary
from streamstage.lsl.inlet import LslInlet, StreamChunk
from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.resolve import resolve_stream
from streamstage.lsl.sources import EdfSource
from streamstage.lsl.timing import make_regularizer
from streamstage.model.checkpoint import StagingModel
from streamstage.pipeline import StagingPipeline

LINGER_S = 600.0
"""The outlet stays up until the consumer has staged everything (then it is stopped), at most this long."""
IDLE_AFTER_DONE_S = 2.0
"""Once the replay has pushed everything, this long without a chunk means the night is through."""


def bench_lsl_replay(model: StagingModel, path: Path, channel: str, stream_name: str) -> dict[str, Any]:
    """Replay ``path`` as LSL stream ``stream_name`` at maximum speed and stage it as live."""
    source = EdfSource(path, [channel])
    buffer_s = source.duration_s + 60.0
    replay = ReplayThread(
        source, 0, name=stream_name, wait_for_consumer_s=30.0, linger_s=LINGER_S, buffer_s=buffer_s
    ).start()
    try:
        inlet = LslInlet(
            resolve_stream(name=stream_name, timeout_s=10.0), lost_after_s=60.0, buffer_s=buffer_s
        )
        started = time.perf_counter()
        result = _stage_stream(model, inlet, replay, round(source.duration_s * source.sfreq_hz))
        seconds = time.perf_counter() - started
        inlet.close()
    finally:
        replay.stop()
        replay.join()
    return {
        "hours": source.duration_s / 3600,
        "sfreq_hz": source.sfreq_hz,
        "seconds": seconds,
        "x_realtime": source.duration_s / seconds,
        "samples_sent": replay.samples_sent,
        **result,
    }


def _stage_stream(
    model: StagingModel, inlet: LslInlet, replay: ReplayThread, n_samples: int
) -> dict[str, Any]:
    """Poll chunks until all ``n_samples`` are staged, or the replay is done and the stream has gone quiet."""
    layout = inlet.layout
    regularizer = make_regularizer(layout.n_channels, layout.sfreq_hz)
    pipeline = StagingPipeline(model, layout.sfreq_hz)
    latencies: list[float] = []
    quiet_since = time.monotonic()
    while regularizer.counters.samples_in < n_samples:
        item = inlet.poll(0.1)
        if isinstance(item, StreamChunk):
            grid = regularizer.push(item.samples, item.timestamps)
            latencies.extend(epoch.latency_s for epoch in pipeline.push(grid.samples, grid.missing))
            quiet_since = time.monotonic()
        elif replay.done.is_set() and time.monotonic() - quiet_since > IDLE_AFTER_DONE_S:
            break
    latencies.extend(epoch.latency_s for epoch in pipeline.finish())  # the night is over, as in a file
    counters = regularizer.counters
    return {
        "epochs": len(latencies),
        "samples_expected": n_samples,
        "samples_received": counters.samples_in,
        "slots_filled": counters.filled + counters.drift_filled,
        "samples_dropped": counters.dropped,
        "epoch_latency_ms": latency_summary(latencies),
    }
