"""Archive staging on the local process pool: discovery, one folder per file, failures in the summary,
the same hypnograms as staging each file alone, and re-runs that skip finished files."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import edfio
import numpy as np
import pytest
from rich.console import Console

from streamstage.archive import FileResult, LocalPool, StagingOptions, stage_archive
from streamstage.archive.discover import discover_recordings, night_folder_names
from streamstage.archive.progress import ArchiveProgress, expected_epochs
from streamstage.archive.summary import SUMMARY_COLUMNS
from streamstage.cli import main
from streamstage.errors import InputFileError
from streamstage.sim import SyntheticEEG

SFREQ = 100.0
NIGHTS = {  # a few minutes each: the staging is what is under test, not the model
    "s01/night1.edf": [0, 0, 1, 2, 2, 3, 3, 2],
    "s02/night1.edf": [0, 1, 2, 2, 4, 4, 2, 2, 0],
    "s03.edf": [0, 0, 0, 1, 1, 2, 2],
}
COMPARED_COLUMNS = ("epoch", "start_s", "stage", "p_W", "p_N1", "p_N2", "p_N3", "p_REM", "quality")


def write_night_edf(path: Path, hypnogram: list[int], seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = SyntheticEEG(hypnogram, SFREQ, seed=seed).generate()[0].astype(np.float64)
    signal = edfio.EdfSignal(
        samples, SFREQ, label="EEG Fpz-Cz", physical_dimension="uV", physical_range=(-2000, 2000)
    )
    edfio.Edf([signal]).write(path)
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive folder: three nights (two named night1.edf) and one corrupt file."""
    folder = tmp_path / "archive"
    for seed, (name, hypnogram) in enumerate(NIGHTS.items()):
        write_night_edf(folder / name, hypnogram, seed)
    (folder / "s04").mkdir()
    (folder / "s04" / "broken.edf").write_bytes(b"0       " + b"not a header" * 10)
    (folder / "notes.txt").write_text("not a recording")
    return folder


def hypnogram_rows(folder: Path) -> list[tuple[str, ...]]:
    """The staged content of a night: every column but the per-epoch latency (a wall-clock measure)."""
    with open(folder / "hypnogram.csv", newline="") as handle:
        return [tuple(row[c] for c in COMPARED_COLUMNS) for row in csv.DictReader(handle)]


def by_file(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def test_discovery_walks_folders_and_globs_keeping_only_recordings(archive: Path) -> None:
    everything = discover_recordings([archive])
    assert [p.relative_to(archive.resolve()).as_posix() for p in everything] == [
        "s01/night1.edf",
        "s02/night1.edf",
        "s03.edf",
        "s04/broken.edf",
    ]
    globbed = discover_recordings([str(archive / "**" / "night*.edf"), archive / "s03.edf"])
    assert [p.name for p in globbed] == ["night1.edf", "night1.edf", "s03.edf"]
    assert discover_recordings([archive / "s03.edf", str(archive / "*.edf")]) == [
        (archive / "s03.edf").resolve()
    ]


def test_xdf_files_are_picked_up_only_where_pyxdf_can_read_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "night.XDF").write_bytes(b"XDF:")
    (tmp_path / "night.edf").write_bytes(b"")
    if importlib.util.find_spec("pyxdf") is not None:
        assert [p.name for p in discover_recordings([tmp_path])] == ["night.XDF", "night.edf"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert [p.name for p in discover_recordings([tmp_path])] == ["night.edf"]


@pytest.mark.parametrize("missing", ["nowhere", "nowhere/*.edf"])
def test_an_input_that_names_nothing_stops_before_staging(archive: Path, missing: str) -> None:
    with pytest.raises(InputFileError, match="nowhere"):
        discover_recordings([archive, str(archive / missing)])


def test_folders_are_named_after_files_and_shared_names_stay_apart(archive: Path) -> None:
    recordings = discover_recordings([archive])
    names = night_folder_names(recordings)
    assert names[(archive / "s03.edf").resolve()] == "s03"
    twins = [names[(archive / f"s0{i}/night1.edf").resolve()] for i in (1, 2)]
    assert len(set(twins)) == 2 and all(name.startswith("night1-") for name in twins)
    assert night_folder_names(list(reversed(recordings))) == names  # the same on every run


def test_a_batch_stages_each_file_as_staging_it_alone_does(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["stage", str(archive), "--out", str(out), "--workers", "2"])
    assert code == 1  # the corrupt file failed, and the exit code says so
    rows = by_file(out)
    assert list(next(iter(rows.values()))) == list(SUMMARY_COLUMNS)
    broken = rows[str((archive / "s04" / "broken.edf").resolve())]
    assert broken["status"] == "failed" and "broken.edf" in broken["error"] and broken["epochs"] == "0"
    for name, hypnogram in NIGHTS.items():
        row = rows[str((archive / name).resolve())]
        alone = tmp_path / "alone" / name
        assert main(["stage", str(archive / name), "--out", str(alone)]) == 0
        assert row["status"] == "staged" and row["channels"] == "Fpz-Cz" and row["error"] == ""
        assert int(row["epochs"]) == len(hypnogram)
        staged_min = sum(float(row[f"{stage}_min"]) for stage in ("W", "N1", "N2", "N3", "REM"))
        assert staged_min + float(row["unknown_min"]) == len(hypnogram) / 2
        assert hypnogram_rows(Path(row["folder"])) == hypnogram_rows(alone)
        assert (Path(row["folder"]) / "done.json").is_file()
    assert not list(out.glob(".*.partial"))  # the failed file left no half-written folder


def _staged(out: Path, options: StagingOptions, inputs: list[Path], force: bool = False) -> list[FileResult]:
    console = Console(file=io.StringIO(), force_terminal=False)
    return stage_archive(inputs, out, options, LocalPool(1), console, force=force)  # 2: see the CLI test


def test_a_second_run_skips_finished_files_and_restages_changed_ones(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    inputs = [archive / "s01", archive / "s03.edf"]
    first = _staged(out, StagingOptions(), inputs)
    assert [r.status for r in first] == ["staged", "staged"]
    night = Path(first[1].folder)
    written = (night / "hypnogram.csv").stat().st_mtime_ns

    second = _staged(out, StagingOptions(), inputs)
    assert [r.status for r in second] == ["skipped", "skipped"]
    assert [r.stage_min for r in second] == [r.stage_min for r in first]  # still reported in full
    assert (night / "hypnogram.csv").stat().st_mtime_ns == written
    assert by_file(out)[first[0].file]["status"] == "skipped"

    write_night_edf(archive / "s03.edf", [0, 0, 1, 1], seed=9)  # the recording changed: stage it again
    third = _staged(out, StagingOptions(), inputs)
    assert [r.status for r in third] == ["skipped", "staged"]
    assert third[1].epochs == 4 and len(hypnogram_rows(night)) == 4

    forced = _staged(out, StagingOptions(), inputs, force=True)
    assert [r.status for r in forced] == ["staged", "staged"]
    assert json.loads((night / "done.json").read_text())["result"]["epochs"] == 4


def test_a_killed_run_leaves_no_folder_that_passes_as_finished(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    partial = out / ".s03.partial"
    partial.mkdir(parents=True)
    (partial / "hypnogram.csv").write_text("epoch,start_s\n0,0.0\n")  # as a killed worker leaves it
    (result,) = _staged(out, StagingOptions(), [archive / "s03.edf"])
    assert result.status == "staged" and not partial.exists()
    assert len(hypnogram_rows(out / "s03")) == len(NIGHTS["s03.edf"])


def test_a_folder_that_is_not_an_archive_night_is_never_replaced(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "s03").mkdir(parents=True)
    (out / "s03" / "mine.txt").write_text("keep me")
    (result,) = _staged(out, StagingOptions(), [archive / "s03.edf"], force=True)
    assert result.failed and "holds no night an archive run finished" in result.error
    assert (out / "s03" / "mine.txt").read_text() == "keep me"


def test_a_wrong_channel_fails_each_file_in_its_row(archive: Path, tmp_path: Path) -> None:
    results = _staged(
        tmp_path / "out", StagingOptions(channels=("C3-A2",)), [archive / "s01", archive / "s03.edf"]
    )
    assert [r.status for r in results] == ["failed", "failed"]
    assert all("C3" in r.error for r in results)


STAGED = FileResult("/a/n1.edf", "/o/n1", "staged", ("Fpz-Cz",), 240, seconds=1.25)
FAILED = FileResult("/a/n2.edf", "/o/n2", "failed", error="n2.edf is cut short")


def test_progress_is_one_plain_line_per_file_when_piped() -> None:
    console = Console(record=True, force_terminal=False, width=200)
    with ArchiveProgress(console, {STAGED.file: 240, FAILED.file: 240}) as progress:
        progress.add(STAGED)
        progress.add(FAILED)
    assert console.export_text().splitlines() == [
        "[1/2] staged n1.edf: 240 epochs (Fpz-Cz) in 1.2 s",
        "[2/2] failed n2.edf: n2.edf is cut short",
    ]


def test_the_terminal_bars_end_full_whatever_the_headers_promised() -> None:
    console = Console(record=True, force_terminal=True, width=120)
    with ArchiveProgress(console, {STAGED.file: 250, FAILED.file: 240}) as progress:
        progress.add(STAGED)
        progress.add(FAILED)
    text = console.export_text()
    assert "recordings" in text and "2/2" in text and "240/240" in text  # both totals corrected
    assert "failed n2.edf: n2.edf is cut short" in text


def test_headers_tell_the_epochs_to_expect(archive: Path) -> None:
    assert expected_epochs(archive / "s03.edf") == len(NIGHTS["s03.edf"])
    assert expected_epochs(archive / "s04" / "broken.edf") == 0


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["stage", "a.edf", "b.edf", "--workers", "0"])
    assert "must be 1 or more" in capsys.readouterr().err


def test_channel_before_the_recording_does_not_swallow_it(archive: Path, tmp_path: Path) -> None:
    """``--channel`` takes one value (comma-separated for several, as ``run``): the file after it is read."""
    night = archive / "s03.edf"
    assert main(["stage", "--channel", "Fpz-Cz", str(night), "--out", str(tmp_path / "a")]) == 0
    assert main(["stage", str(night), "--out", str(tmp_path / "b")]) == 0
    assert hypnogram_rows(tmp_path / "a") == hypnogram_rows(tmp_path / "b")


def test_a_worker_runs_torch_on_one_thread_in_every_thread_it_stages_on(monkeypatch) -> None:
    """``torch.set_num_threads`` holds for its own thread only (OpenMP's default team elsewhere: a model step
    ~50x slower), and a Dask worker stages on threads of its own: each must set it, not only the first."""
    import threading

    import torch

    from streamstage.archive.night import worker_model

    calls: list[tuple[str, int]] = []
    record = lambda n: calls.append((threading.current_thread().name, n))  # noqa: E731
    monkeypatch.setattr(torch, "set_num_threads", record)
    for name in ("first", "second"):
        thread = threading.Thread(target=worker_model, args=(None,), name=name)
        thread.start()
        thread.join()
    assert calls == [("first", 1), ("second", 1)]
