"""Where a batch's files are staged: a local process pool, or the workers of a Dask cluster.

Both take the same :class:`~streamstage.archive.night.FileJob` list and yield one
:class:`~streamstage.archive.night.FileResult` per job as each finishes. A file's own failure is already
its ``failed`` row (:func:`~streamstage.archive.night.stage_file` catches it); what is caught here is the
worker itself being lost (killed, out of memory), which fails only the files it held.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Protocol

from streamstage.archive.night import FileJob, FileResult, stage_file
from streamstage.errors import ConfigError, StreamstageError

DASK_MISSING = (
    "--scheduler needs Dask's distributed scheduler, which is not installed; "
    "install it with `pip install 'streamstage[dask]'` (on this machine and on the workers)."
)


class Runner(Protocol):
    def describe(self) -> str: ...

    def run(self, jobs: Sequence[FileJob]) -> Iterator[FileResult]: ...


def worker_failure(job: FileJob, error: BaseException) -> FileResult:
    """The row of a file whose worker, not the file, failed (killed, out of memory, no streamstage)."""
    return FileResult(
        str(job.recording),
        str(job.folder),
        "failed",
        error=f"its worker failed ({type(error).__name__}: {error}); the file itself may be fine",
    )


@dataclass(frozen=True)
class LocalPool:
    """``workers`` processes on this machine. Started by spawning, not forking: a fork of a process that
    holds PyTorch's thread pools can hang."""

    workers: int

    def describe(self) -> str:
        return f"a local pool of {self.workers} worker process{'es' if self.workers != 1 else ''}"

    def run(self, jobs: Sequence[FileJob]) -> Iterator[FileResult]:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=context)
        try:
            futures = {pool.submit(stage_file, job): job for job in jobs}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # BrokenProcessPool: a worker died
                    yield worker_failure(futures[future], error)
        finally:  # on Ctrl-C, files not yet started are dropped rather than staged first
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class DaskCluster:
    """The workers of the Dask scheduler at ``address``. Each worker needs streamstage installed and the
    recordings and output folder at the same paths as here (a shared file system)."""

    address: str
    connect_timeout_s: float = 30.0

    def describe(self) -> str:
        return f"the Dask cluster at {self.address}"

    def run(self, jobs: Sequence[FileJob]) -> Iterator[FileResult]:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError:
            raise ConfigError(DASK_MISSING) from None
        if not jobs:
            return
        try:
            client = Client(self.address, timeout=self.connect_timeout_s)
        except (OSError, TimeoutError) as error:
            raise StreamstageError(
                f"cannot reach the Dask scheduler at {self.address} ({error}); check the address "
                "(e.g. tcp://host:8786) and that the scheduler is running."
            ) from None
        with client:
            futures = client.map(stage_file, list(jobs), pure=False)
            by_future = dict(zip(futures, jobs, strict=True))
            for future in dask_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # KilledWorker, or a worker without streamstage
                    yield worker_failure(by_future[future], error)
