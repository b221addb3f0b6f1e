"""Whole-night throughput of the live path through LSL: a night replayed at maximum speed into the inlet,
the timestamp regularizer and the staging pipeline, as a multiple of real time.

The replay runs in its own process, as a real source does (in this one, its pushes would compete with the
consumer for the interpreter). Both buffers (the replay's outlet and the inlet) hold the whole night, so a
consumer slower than the replay falls behind without losing samples; the result counts what arrived, so a
loss would show. The caller must have configured LSL (``configure_lsl(loopback_only=True)``) before; the
replay process is configured the same way: nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import latency_summary
from streamstage.lsl.inlet import LslInlet, StreamChunk
from streamstage.lsl.resolve import resolve_stream
from streamstage.lsl.sources import EdfSource
from streamstage.model.checkpoint import StagingModel
from streamstage.pipeline import StagingPipeline
from streamstage.signal.timing import make_regularizer

IDLE_AFTER_DONE_S = 10.0
"""Once the replay has pushed everything, this long without a chunk means the night is through (only
a loss makes it wait that long: it is generous for a loaded machine)."""
_REPLAY = """
import sys
from pathlib import Path
from streamstage.lsl.scope import configure_lsl
configure_lsl(loopback_only=True)
from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.sources import EdfSource
path, channel, name, chunk_s, buffer_s = sys.argv[1:]
replay = ReplayThread(
    EdfSource(Path(path), [channel]), 0, name=name, wait_for_consumer_s=60.0, linger_s=1e9,
    buffer_s=float(buffer_s), chunk_s=float(chunk_s) or None,
).start()
replay.done.wait()
print(replay.samples_sent, flush=True)
sys.stdin.read()  # the outlet stays up until the consumer has staged everything and closes this pipe
replay.stop()
replay.join()
"""
"""The replay process: pushes the night, says how many samples it sent, and waits to be let go."""


class _ReplayProcess:
    """``path`` published at maximum speed by another Python process; :attr:`done` once all is pushed."""

    def __init__(self, path: Path, channel: str, name: str, chunk_s: float | None, buffer_s: float) -> None:
        self.samples_sent = 0
        self.done = threading.Event()
        args = [str(path), channel, name, str(chunk_s or 0.0), str(buffer_s)]
        self._process = subprocess.Popen(
            [sys.executable, "-c", _REPLAY, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read_count, daemon=True).start()

    def _read_count(self) -> None:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        self.samples_sent = int(line) if line.strip() else 0
        self.done.set()

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=30.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()


def bench_lsl_replay(
    model: StagingModel, path: Path, channel: str, stream_name: str, chunk_s: float | None = None
) -> dict[str, Any]:
    """Replay ``path`` as LSL stream ``stream_name`` at maximum speed and stage it as live.

    ``chunk_s`` is how much the replay pushes and the inlet pulls at once; None keeps the live defaults
    (the replay pushes 1-s chunks; the inlet pulls up to 30 s when behind, so it pays the per-chunk costs of
    the signal path, ~0.1 ms each, less often).
    """
    source = EdfSource(path, [channel])
    buffer_s = source.duration_s + 60.0
    replay = _ReplayProcess(path, channel, stream_name, chunk_s, buffer_s)
    try:
        inlet = LslInlet(
            resolve_stream(name=stream_name, timeout_s=60.0),
            lost_after_s=60.0,
            chunk_samples=None if chunk_s is None else round(chunk_s * source.sfreq_hz),
            buffer_s=buffer_s,
        )
        started = time.perf_counter()
        result = _stage_stream(model, inlet, replay, round(source.duration_s * source.sfreq_hz))
        seconds = time.perf_counter() - started
        inlet.close()
    finally:
        replay.close()
    return {
        "hours": source.duration_s / 3600,
        "sfreq_hz": source.sfreq_hz,
        "chunk_s": chunk_s,
        "seconds": seconds,
        "x_realtime": source.duration_s / seconds,
        "samples_sent": replay.samples_sent,
        **result,
    }


def _stage_stream(
    model: StagingModel, inlet: LslInlet, replay: _ReplayProcess, n_samples: int
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
