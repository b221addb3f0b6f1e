"""Whole-night throughput of the live path through LSL: a night replayed at maximum speed and staged by
:func:`streamstage.night.run_night`, what ``streamstage run`` runs (the inlet, the session's intake, the
pipeline and every sink of a night: the hypnogram, the raw recording, the LSL outlets, the events, the
state saved for a resume), as a multiple of real time.

The replay runs in its own process, as a real source does (in this one, its pushes would compete with the
consumer for the interpreter). Both buffers (the replay's outlet and the inlet) hold the whole night, so a
consumer slower than the replay falls behind without losing samples; a sink of the bench's own counts what
reached the signal path (a missing sample arrives as NaN), so a loss would show, and ends the night once
every sample is in (the session then stages its held-back epoch, as at the end of a stream). The caller
must have configured LSL (``configure_lsl(loopback_only=True)``) before; the replay process is configured
the same way: nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import cProfile
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import latency_summary
from streamstage.lsl.sources import EdfSource
from streamstage.model.checkpoint import StagingModel
from streamstage.night import NightPlan, StreamQuery, run_night
from streamstage.sinks import Delivery, Journal, NightSink, NightStart, SignalBlock

LOST_AFTER_S = 10.0
"""This long without a chunk ends the night (only a loss makes it wait that long: every sample in ends it
at once; generous for a loaded machine)."""
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


class _Arrivals(NightSink):
    """The bench's own sink: when the night started, what reached the signal path, the epochs; it sets
    ``stop`` once all ``n_samples`` are in."""

    def __init__(self, n_samples: int, profiler: cProfile.Profile | None) -> None:
        self.n_samples = n_samples
        self.profiler = profiler
        self.stop = threading.Event()
        self.started = 0.0
        self.received = 0
        self.missing = 0
        self.latencies: list[float] = []

    def start(self, night: NightStart, journal: Journal) -> None:
        self.started = time.perf_counter()
        if self.profiler is not None:
            self.profiler.enable()

    def on_block(self, block: SignalBlock) -> None:
        missing = int(np.isnan(block.samples_uv[:, 0]).sum())
        self.missing += missing
        self.received += len(block.samples_uv) - missing
        if self.received >= self.n_samples:
            self.stop.set()

    def on_epoch(self, delivery: Delivery) -> None:
        self.latencies.append(delivery.epoch.latency_s)


def bench_lsl_replay(
    model: StagingModel,
    path: Path,
    channel: str,
    stream_name: str,
    chunk_s: float | None = None,
    night_dir: Path | None = None,
    profiler: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Replay ``path`` as LSL stream ``stream_name`` at maximum speed and stage it as a live night.

    ``chunk_s`` is how much the replay pushes at once (None: its live default, 1 s); the inlet pulls as
    ``streamstage run`` does (what has arrived, up to its catch-up bound). The night folder is a temporary
    one in ``night_dir`` (default: the system's temporary folder). ``seconds`` run from the night's first
    sample to the night closed (everything written), the stream's resolution before it not counted;
    ``profiler`` (this thread's) runs over the same span.
    """
    source = EdfSource(path, [channel])
    buffer_s = source.duration_s + 60.0
    n_samples = round(source.duration_s * source.sfreq_hz)
    replay = _ReplayProcess(path, channel, stream_name, chunk_s, buffer_s)
    arrivals = _Arrivals(n_samples, profiler)
    query = StreamQuery(
        name=stream_name, resolve_timeout_s=60.0, lost_after_s=LOST_AFTER_S, buffer_s=buffer_s
    )
    with tempfile.TemporaryDirectory(prefix="streamstage-bench-night-", dir=night_dir) as folder:
        plan = NightPlan(out=Path(folder) / "night", exit_after_lost_s=0.0, report=False)
        try:
            night = run_night(query, model, plan, [arrivals], say=lambda _: None, stop=arrivals.stop)
            seconds = time.perf_counter() - arrivals.started
        finally:
            if profiler is not None:
                profiler.disable()
            replay.close()
    return {
        "hours": source.duration_s / 3600,
        "sfreq_hz": source.sfreq_hz,
        "chunk_s": chunk_s,
        "night_dir": str(night_dir) if night_dir else tempfile.gettempdir(),
        "seconds": seconds,
        "x_realtime": source.duration_s / seconds,
        "samples_sent": replay.samples_sent,
        "samples_expected": n_samples,
        "samples_received": arrivals.received,
        "slots_filled": arrivals.missing,
        "samples_lost": n_samples - arrivals.received,
        "epochs": night.epochs,
        "epoch_latency_ms": latency_summary(arrivals.latencies),
    }
