"""``streamstage datasets sleep-edf`` against a loopback stand-in for PhysioNet: subjects and ranges,
progress lines when piped, resume after a broken download, clear errors offline; no PyTorch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from streamstage.cli import main
from streamstage.commands.datasets import DownloadProgress, describe_start
from tests.physionet import REMOTE_FILES, BreaksOnceHandler, QuietHandler, physionet_folder, serve


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return physionet_folder(tmp_path)


def test_subject_ranges_and_nights_pick_the_files(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sleep-edf"
    with serve(remote.parent, QuietHandler) as base_url:
        argv = ["datasets", "sleep-edf", "--out", str(out), "--base-url", base_url]
        assert main([*argv, "--subjects", "0-1,13", "--nights", "1"]) == 0
        assert sorted(p.name for p in out.iterdir()) == sorted(REMOTE_FILES[i] for i in (0, 1, 4, 5))
        err = capsys.readouterr().err
        assert "fetching SC4001E0-PSG.edf (0.0 MB)" in err
        assert f"2 recordings with hypnograms in {out}" in err
        assert main([*argv, "--subjects", "0", "13"]) == 0  # night 2 of subject 0 is new
    err = capsys.readouterr().err
    assert "SC4001E0-PSG.edf: already there" in err and "fetching SC4002E0-PSG.edf" in err


def test_a_broken_download_resumes_on_the_next_run(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sleep-edf"
    psg = remote / "SC4211E0-PSG.edf"
    with serve(remote.parent, BreaksOnceHandler) as base_url:
        argv = ["datasets", "sleep-edf", "--out", str(out), "--subjects", "21", "--base-url", base_url]
        assert main([*argv, "--retries", "0"]) == 1
        assert "run the command again to resume" in capsys.readouterr().err
        assert main(argv) == 0
    resumed_at = psg.stat().st_size // 3
    assert f"resuming at {resumed_at / 1e6:.1f} MB" in capsys.readouterr().err
    assert (out / psg.name).read_bytes() == psg.read_bytes()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--subjects", "83"], "Sleep-EDF has no subject 83; subjects are 0-82."),
        (["--nights", "3"], "Sleep-EDF has no night 3; nights are 1-2."),
    ],
)
def test_numbers_outside_sleep_edf_are_refused(
    tmp_path: Path, option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["datasets", "sleep-edf", "--out", str(tmp_path), *option]) == 1
    assert message in capsys.readouterr().err


def test_a_range_that_runs_backwards_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["datasets", "sleep-edf", "--out", "x", "--subjects", "19-0"])
    assert "runs backwards; write 0-19" in capsys.readouterr().err


def test_offline_is_one_clear_line(tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(remote.parent, QuietHandler) as base_url:
        dead_url = base_url  # the server is gone once the block ends
    assert main(["datasets", "sleep-edf", "--out", str(tmp_path), "--base-url", dead_url]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("streamstage: error: cannot list") and "check the internet connection" in line


def test_the_terminal_bar_counts_files_and_bytes() -> None:
    console = Console(record=True, force_terminal=True, width=100)
    with DownloadProgress(console) as progress:
        progress.files_planned(["a.edf", "b.edf"])
        progress.file_finished("a.edf", fetched=False)
        progress.file_started("b.edf", 2_000_000, 500_000)
        progress.bytes_received(1_500_000)
        progress.file_finished("b.edf", fetched=True)
    text = console.export_text()
    assert "files" in text and "2/2" in text and "b.edf" in text and "2.0/2.0 MB" in text


def test_describe_start() -> None:
    assert describe_start("a.edf", 46_100_000, 12_000_000) == "fetching a.edf (46.1 MB, resuming at 12.0 MB)"
    assert describe_start("a.edf", None, 0) == "fetching a.edf (size not announced)"


def test_the_command_does_not_import_torch(tmp_path: Path, remote: Path) -> None:
    probe = "import sys; from streamstage.cli import main; main(sys.argv[1:]); print('torch' in sys.modules)"
    with serve(remote.parent, QuietHandler) as base_url:
        argv = ["datasets", "sleep-edf", "--out", str(tmp_path), "--subjects", "21", "--base-url", base_url]
        result = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        )
    assert result.stdout.strip() == "False", result.stderr
    assert (tmp_path / "SC4211E0-PSG.edf").is_file()
