"""Sleep-EDF loader: pairing recordings with hypnograms; downloads from a loopback stand-in for PhysioNet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamstage.errors import InputFileError
from streamstage.io.edf import EdfRecording
from streamstage.io.hypnogram import read_hypnogram
from streamstage.io.sleepedf import RecordingPair, download_sleep_cassette, find_edf_pairs
from tests.physionet import (
    REMOTE_FILES,
    BreaksOnceHandler,
    NoRangeHandler,
    QuietHandler,
    physionet_folder,
    serve,
    write_psg,
)


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


class Recorder:
    """A download listener that writes down what it heard."""

    def __init__(self) -> None:
        self.planned: list[str] = []
        self.started: list[tuple[str, int | None, int]] = []
        self.received = 0
        self.finished: list[tuple[str, bool]] = []

    def files_planned(self, names: list[str]) -> None:
        self.planned = list(names)

    def file_started(self, name: str, size_bytes: int | None, offset_bytes: int) -> None:
        self.started.append((name, size_bytes, offset_bytes))

    def bytes_received(self, n_bytes: int) -> None:
        self.received += n_bytes

    def file_finished(self, name: str, fetched: bool) -> None:
        self.finished.append((name, fetched))

    @property
    def fetched(self) -> list[str]:
        return [name for name, fetched in self.finished if fetched]


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return physionet_folder(tmp_path)


@pytest.fixture
def base_url(remote: Path) -> Iterator[str]:
    with serve(remote.parent, QuietHandler) as url:
        yield url


def test_sleep_edf_names_pair_by_their_first_six_characters(tmp_path: Path) -> None:
    touch(
        tmp_path, "SC4002E0-PSG.edf", "SC4002EC-Hypnogram.edf", "SC4011E0-PSG.edf", "SC4011EH-Hypnogram.edf"
    )
    touch(tmp_path, "SC4021E0-PSG.edf", "ST7011J0-PSG.edf", "ST7011JP-Hypnogram.edf")  # 4021 has no hypnogram
    assert find_edf_pairs(tmp_path) == [
        RecordingPair(0, 2, tmp_path / "SC4002E0-PSG.edf", tmp_path / "SC4002EC-Hypnogram.edf"),
        RecordingPair(1, 1, tmp_path / "SC4011E0-PSG.edf", tmp_path / "SC4011EH-Hypnogram.edf"),
        RecordingPair(1, 1, tmp_path / "ST7011J0-PSG.edf", tmp_path / "ST7011JP-Hypnogram.edf"),
    ]


def test_generic_names_pair_with_their_hypnograms(tmp_path: Path) -> None:
    touch(tmp_path, "alice.edf", "alice-hypnogram.csv", "bob.bdf", "bob.txt", "carol.edf")
    touch(tmp_path, "excerpt3.edf", "excerpt3.txt", "Hypnogram_excerpt3.txt")  # DREAMS: the .txt is the EEG
    assert find_edf_pairs(tmp_path) == [
        RecordingPair(None, None, tmp_path / "alice.edf", tmp_path / "alice-hypnogram.csv"),
        RecordingPair(None, None, tmp_path / "bob.bdf", tmp_path / "bob.txt"),
        RecordingPair(None, None, tmp_path / "excerpt3.edf", tmp_path / "Hypnogram_excerpt3.txt"),
    ]


def test_two_hypnograms_for_one_recording_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4001EH-Hypnogram.edf")
    with pytest.raises(InputFileError, match="SC4001 has 2 hypnograms"):
        find_edf_pairs(tmp_path)


def test_pairs_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="is not a folder"):
        find_edf_pairs(tmp_path / "nowhere")


def test_download_fetches_the_requested_pairs(tmp_path: Path, remote: Path, base_url: str) -> None:
    folder = tmp_path / "data"
    heard = Recorder()
    pairs = download_sleep_cassette(folder, subjects=[0, 13], base_url=base_url, listener=heard)
    assert [(p.subject, p.night) for p in pairs] == [(0, 1), (0, 2), (13, 1)]
    assert sorted(heard.fetched) == sorted(heard.planned) == sorted(REMOTE_FILES[:6])
    sizes = {name: (remote / name).stat().st_size for name in REMOTE_FILES}
    assert sorted(heard.started) == sorted((name, sizes[name], 0) for name in REMOTE_FILES[:6])
    assert heard.received == sum(sizes[name] for name in REMOTE_FILES[:6])
    assert sorted(p.name for p in folder.iterdir()) == sorted(REMOTE_FILES[:6])  # no temporary file left
    for pair in pairs:
        assert pair.psg_path.read_bytes() == (remote / pair.psg_path.name).read_bytes()
    recording = EdfRecording.open(pairs[0].psg_path)
    hypnogram = read_hypnogram(pairs[0].hypnogram_path)
    assert len(hypnogram.aligned_to_duration(recording.duration_s)) == 2


def test_download_skips_files_already_present(tmp_path: Path, base_url: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_psg(folder / "SC4211E0-PSG.edf")
    heard = Recorder()
    pairs = download_sleep_cassette(folder, subjects=[21], nights=[1], base_url=base_url, listener=heard)
    assert heard.finished == [("SC4211E0-PSG.edf", False), ("SC4211EJ-Hypnogram.edf", True)]
    assert pairs == [RecordingPair(21, 1, folder / "SC4211E0-PSG.edf", folder / "SC4211EJ-Hypnogram.edf")]


def test_download_of_a_night_that_does_not_exist(tmp_path: Path, base_url: str) -> None:
    with pytest.raises(InputFileError, match=r"lists no Sleep-EDF file for subjects \[13\] and nights \[2\]"):
        download_sleep_cassette(tmp_path, subjects=[13], nights=[2], base_url=base_url)


def test_a_broken_download_keeps_its_part_and_the_next_run_resumes_it(tmp_path: Path, remote: Path) -> None:
    folder = tmp_path / "data"
    psg = "SC4211E0-PSG.edf"
    ranges: list[str | None] = []
    with serve(remote.parent, BreaksOnceHandler, ranges) as base_url:
        with pytest.raises(InputFileError, match=r"stopped .*run the command again to resume it from"):
            download_sleep_cassette(folder, subjects=[21], base_url=base_url, retries=0)
        part = folder / f"{psg}.part"
        size = (remote / psg).stat().st_size
        assert part.stat().st_size == size // 3 and not (folder / psg).exists()  # nothing looks whole
        heard = Recorder()
        ranges.clear()
        pairs = download_sleep_cassette(folder, subjects=[21], base_url=base_url, retries=0, listener=heard)
    assert ranges[-2:] == [f"bytes={size // 3}-", None]  # the rest of the PSG, then the hypnogram
    assert heard.started[0] == (psg, size, size // 3)
    assert (folder / psg).read_bytes() == (remote / psg).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [psg, "SC4211EJ-Hypnogram.edf"]
    assert [(p.subject, p.night) for p in pairs] == [(21, 1)]


def test_a_broken_connection_is_resumed_within_the_same_run(tmp_path: Path, remote: Path) -> None:
    ranges: list[str | None] = []
    with serve(remote.parent, BreaksOnceHandler, ranges) as base_url:
        download_sleep_cassette(tmp_path, subjects=[21], base_url=base_url, retries=1)
    size = (remote / "SC4211E0-PSG.edf").stat().st_size
    assert ranges[1:3] == [None, f"bytes={size // 3}-"]  # after the listing: broken, then resumed
    assert (tmp_path / "SC4211E0-PSG.edf").read_bytes() == (remote / "SC4211E0-PSG.edf").read_bytes()


def test_a_server_without_ranges_restarts_the_file(tmp_path: Path, remote: Path) -> None:
    psg = "SC4211E0-PSG.edf"
    (tmp_path / f"{psg}.part").write_bytes(b"stale bytes of another version")
    ranges: list[str | None] = []
    with serve(remote.parent, NoRangeHandler, ranges) as base_url:
        download_sleep_cassette(tmp_path, subjects=[21], base_url=base_url)
    assert ranges[1] == "bytes=30-"  # asked to resume, was sent the whole file
    assert (tmp_path / psg).read_bytes() == (remote / psg).read_bytes()


def test_a_whole_part_left_by_a_crash_before_its_rename_is_not_fetched_again(
    tmp_path: Path, remote: Path
) -> None:
    psg = "SC4211E0-PSG.edf"
    (tmp_path / f"{psg}.part").write_bytes((remote / psg).read_bytes())
    heard = Recorder()
    with serve(remote.parent, QuietHandler) as base_url:
        download_sleep_cassette(tmp_path, subjects=[21], base_url=base_url, listener=heard)
    assert (tmp_path / psg).read_bytes() == (remote / psg).read_bytes()
    assert [name for name, _, _ in heard.started] == ["SC4211EJ-Hypnogram.edf"]


def test_a_missing_file_on_the_server_is_a_clear_error(tmp_path: Path, remote: Path) -> None:
    class MissingPsgHandler(QuietHandler):
        def do_GET(self) -> None:
            if self.path.endswith("PSG.edf"):
                self.send_error(404)
                return
            super().do_GET()

    with (
        serve(remote.parent, MissingPsgHandler) as base_url,
        pytest.raises(InputFileError, match=r"cannot download .*SC4211E0-PSG\.edf \(404 Not Found\)"),
    ):
        download_sleep_cassette(tmp_path, subjects=[21], base_url=base_url)


def test_unreachable_server_is_a_clear_error(tmp_path: Path, remote: Path) -> None:
    with serve(remote.parent, QuietHandler) as base_url:
        dead_url = base_url  # the server is gone once the block ends
    with pytest.raises(InputFileError, match=r"cannot list .*check the internet connection"):
        download_sleep_cassette(tmp_path, base_url=dead_url, timeout_s=5.0)
