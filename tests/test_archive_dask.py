"""Archive staging on a Dask cluster bound to 127.0.0.1: the same nights as the local pool, failures in
the summary, and clear errors without Dask or without a scheduler."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from test_archive import NIGHTS, hypnogram_rows, write_night_edf

from streamstage.archive import DaskCluster, FileJob, LocalPool, StagingOptions, stage_archive
from streamstage.cli import main
from streamstage.errors import ConfigError, StreamstageError

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # a cluster of two worker processes, each importing PyTorch


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _archive(folder: Path) -> Path:
    for seed, (name, hypnogram) in enumerate(NIGHTS.items()):
        write_night_edf(folder / name, hypnogram, seed)
    (folder / "cut.edf").write_bytes((folder / "s03.edf").read_bytes()[:300])
    return folder


def _quiet() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_a_dask_cluster_stages_the_nights_the_local_pool_does(scheduler_address: str, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "archive")
    on_dask = stage_archive(
        [archive], tmp_path / "dask", StagingOptions(), DaskCluster(scheduler_address), _quiet()
    )
    on_pool = stage_archive([archive], tmp_path / "pool", StagingOptions(), LocalPool(2), _quiet())
    assert [r.status for r in on_dask] == ["failed", "staged", "staged", "staged"]  # cut.edf sorts first
    assert "cut.edf" in on_dask[0].error
    for dask_night, pool_night in zip(on_dask[1:], on_pool[1:], strict=True):
        assert dask_night.stage_min == pool_night.stage_min
        assert hypnogram_rows(Path(dask_night.folder)) == hypnogram_rows(Path(pool_night.folder))


def test_the_cli_takes_a_scheduler_address(scheduler_address: str, tmp_path: Path) -> None:
    night = write_night_edf(tmp_path / "in" / "a.edf", NIGHTS["s03.edf"], seed=3)
    write_night_edf(tmp_path / "in" / "b.edf", NIGHTS["s03.edf"], seed=4)
    out = tmp_path / "out"
    assert main(["stage", str(tmp_path / "in"), "--out", str(out), "--scheduler", scheduler_address]) == 0
    with open(out / "summary.csv", newline="") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["staged", "staged"]
    assert main(["stage", str(night), "--out", str(tmp_path / "alone")]) == 0
    assert hypnogram_rows(out / "a") == hypnogram_rows(tmp_path / "alone")


def test_without_dask_the_scheduler_option_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    job = FileJob(tmp_path / "a.edf", tmp_path / "a", StagingOptions())
    with pytest.raises(ConfigError, match=r"pip install 'streamstage\[dask\]'"):
        list(DaskCluster("tcp://127.0.0.1:1").run([job]))


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    job = FileJob(tmp_path / "a.edf", tmp_path / "a", StagingOptions())
    with pytest.raises(StreamstageError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        list(DaskCluster("tcp://127.0.0.1:9", connect_timeout_s=1.0).run([job]))
