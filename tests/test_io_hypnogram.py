"""Hypnograms: each format read to AASM codes, written and read back, fitted to a recording's length."""

from __future__ import annotations

import tempfile
from pathlib import Path

import edfio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import HypnogramError
from streamstage.io.hypnogram import (
    UNKNOWN,
    Hypnogram,
    HypnogramLengthWarning,
    read_hypnogram,
    write_hypnogram_csv,
    write_hypnogram_edf,
)


def write_text(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hypnogram_is_a_read_only_int8_record() -> None:
    hypnogram = Hypnogram([0, 1, 2, -1], epoch_s=20.0, start_s=40.0)
    assert hypnogram.stages.dtype == np.int8
    assert len(hypnogram) == 4 and hypnogram.duration_s == 80.0
    assert hypnogram.stage_names == ["W", "N1", "N2", "?"]
    with pytest.raises(ValueError, match="read-only"):
        hypnogram.stages[0] = 3
    with pytest.raises(ValueError, match="stage codes"):
        Hypnogram([0, 5])
    with pytest.raises(ValueError, match="epoch_s"):
        Hypnogram([0], epoch_s=0.0)


def test_codes_and_names_one_per_line(tmp_path: Path) -> None:
    path = write_text(
        tmp_path,
        "h.txt",
        "# scored by hand\n0\n1\n\n2\n3\n4\n-1\nW\nn1\nN2\nN3\nR\nREM\nS1\nS2\nS3\nS4\n?\nMT\n",
    )
    hypnogram = read_hypnogram(path)
    expected = [0, 1, 2, 3, 4, -1, 0, 1, 2, 3, 4, 4, 1, 2, 3, 3, UNKNOWN, UNKNOWN]
    np.testing.assert_array_equal(hypnogram.stages, expected)
    assert hypnogram.epoch_s == 30.0 and hypnogram.start_s == 0.0


def test_bad_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(HypnogramError, match=r"h.txt line 3: 'N5' is not a sleep stage"):
        read_hypnogram(write_text(tmp_path, "h.txt", "W\nN1\nN5\n"))


def test_dreams_five_second_codes_become_epochs(tmp_path: Path) -> None:
    # epoch 1: all W; epoch 2: S3 then S4 (both N3); epoch 3: S2 with one S1 step; epoch 4: REM; tail dropped
    codes = [5] * 6 + [1, 1, 1, 0, 0, 0] + [2, 2, 3, 2, 2, 2] + [4] * 6 + [2, 2]
    path = write_text(tmp_path, "Hypnogram_x.txt", "[Hypnogram]\n" + "\n".join(map(str, codes)) + "\n")
    np.testing.assert_array_equal(read_hypnogram(path).stages, [0, 3, UNKNOWN, 4])
    np.testing.assert_array_equal(
        read_hypnogram(path, epoch_s=10.0).stages, [0, 0, 0, 3, 3, 3, 2, UNKNOWN, 2, 4, 4, 4, 2]
    )
    with pytest.raises(HypnogramError, match="multiple of 5"):
        read_hypnogram(path, epoch_s=12.0)


def test_dreams_unknown_codes_are_unknown(tmp_path: Path) -> None:
    path = write_text(tmp_path, "Hypnogram_y.txt", "[Hypnogram]\n" + "-2\n" * 6 + "7\n" * 6)
    np.testing.assert_array_equal(read_hypnogram(path).stages, [UNKNOWN, UNKNOWN])
    with pytest.raises(HypnogramError, match=r"line 3: 'W' is not a DREAMS stage code"):
        read_hypnogram(write_text(tmp_path, "bad.txt", "[Hypnogram]\n5\nW\n"))


def test_csv_with_stage_column_names_or_codes(tmp_path: Path) -> None:
    path = write_text(tmp_path, "h.csv", "epoch;stage;confidence\n0;W;0.9\n1;2;0.8\n2;REM;0.7\n")
    hypnogram = read_hypnogram(path)
    np.testing.assert_array_equal(hypnogram.stages, [0, 2, 4])
    assert hypnogram.start_s == 0.0


def test_csv_onsets_place_epochs_on_the_grid(tmp_path: Path) -> None:
    path = write_text(tmp_path, "h.csv", "start_s,stage\n60,W\n90,N1\n150,N2\n")
    hypnogram = read_hypnogram(path)
    assert hypnogram.start_s == 60.0
    np.testing.assert_array_equal(hypnogram.stages, [0, 1, UNKNOWN, 2])
    with pytest.raises(HypnogramError, match="not increasing on a 30-s grid"):
        read_hypnogram(write_text(tmp_path, "off.csv", "onset_s,stage\n0,W\n45,N1\n"))
    with pytest.raises(HypnogramError, match=r"row 3 has 1 fields, not 2"):
        read_hypnogram(write_text(tmp_path, "short.csv", "onset_s,stage\n0,W\n30\n"))


def test_csv_round_trip_with_probabilities(tmp_path: Path) -> None:
    hypnogram = Hypnogram([0, 0, 1, 2, UNKNOWN, 3, 4], start_s=90.0)
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=len(hypnogram))
    path = tmp_path / "out.csv"
    write_hypnogram_csv(path, hypnogram, probs)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,start_s,stage,p_W,p_N1,p_N2,p_N3,p_REM"
    assert lines[5].startswith("4,210.0,?,")
    back = read_hypnogram(path)
    np.testing.assert_array_equal(back.stages, hypnogram.stages)
    assert back.start_s == 90.0
    read_probs = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(3, 8))
    np.testing.assert_allclose(read_probs, probs, atol=5e-7)
    with pytest.raises(ValueError, match="shape"):
        write_hypnogram_csv(path, hypnogram, probs[:3])


def test_edf_annotations_map_rk_to_aasm(tmp_path: Path) -> None:
    annotations = [
        (0, 60, "Sleep stage W"),
        (60, 30, "Sleep stage 1"),
        (90, 30, "Sleep stage 2"),
        (120, 30, "Sleep stage 3"),
        (150, 60, "Sleep stage 4"),
        (210, 30, "Movement time"),
        (210, 0, "Lights on"),
        (240, 30, "Sleep stage R"),
        (300, 30, "Sleep stage ?"),
    ]
    path = tmp_path / "SC4xxx-Hypnogram.edf"
    edfio.Edf([], annotations=[edfio.EdfAnnotation(*a) for a in annotations]).write(path)
    hypnogram = read_hypnogram(path)
    np.testing.assert_array_equal(hypnogram.stages, [0, 0, 1, 2, 3, 3, 3, UNKNOWN, 4, UNKNOWN, UNKNOWN])


def test_edf_annotations_off_the_epoch_grid_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.edf"
    edfio.Edf([], annotations=[edfio.EdfAnnotation(0, 45, "Sleep stage W")]).write(path)
    with pytest.raises(HypnogramError, match="off the 30-s epoch grid"):
        read_hypnogram(path)
    np.testing.assert_array_equal(read_hypnogram(path, epoch_s=15.0).stages, [0, 0, 0])


def test_edf_without_stages_is_not_a_hypnogram(tmp_path: Path) -> None:
    path = tmp_path / "psg.edf"
    edfio.Edf([edfio.EdfSignal(np.zeros(100), 10.0, label="C3")]).write(path)
    with pytest.raises(HypnogramError, match="no 'Sleep stage' annotations"):
        read_hypnogram(path)


def test_edf_round_trip_keeps_stages_and_offset(tmp_path: Path) -> None:
    hypnogram = Hypnogram([UNKNOWN, 0, 0, 1, 2, 2, 2, 3, 4, 4, 0], start_s=300.0)
    path = tmp_path / "out-hypnogram.edf"
    write_hypnogram_edf(path, hypnogram)
    texts = [a.text for a in edfio.read_edf(path).annotations]
    assert texts[:3] == ["Sleep stage ?", "Sleep stage W", "Sleep stage N1"] and "Sleep stage R" in texts
    back = read_hypnogram(path)
    np.testing.assert_array_equal(back.stages, hypnogram.stages)
    assert back.start_s == 300.0


@settings(max_examples=30, deadline=None)
@given(
    stages=st.lists(st.integers(-1, 4), min_size=1, max_size=60),
    start_epochs=st.integers(0, 10**6),
    epoch_s=st.sampled_from([20.0, 30.0]),
)
def test_both_writers_round_trip(stages: list[int], start_epochs: int, epoch_s: float) -> None:
    hypnogram = Hypnogram(stages, epoch_s=epoch_s, start_s=start_epochs * epoch_s)
    with tempfile.TemporaryDirectory() as folder:
        for name, write in (("h.csv", write_hypnogram_csv), ("h.edf", write_hypnogram_edf)):
            write(Path(folder) / name, hypnogram)
            back = read_hypnogram(Path(folder) / name, epoch_s=epoch_s)
            np.testing.assert_array_equal(back.stages, hypnogram.stages)
            assert back.start_s == hypnogram.start_s and back.epoch_s == epoch_s


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "holds no stages"),
        (b"# only a comment\n\n", "holds no stages"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "neither text nor EDF"),
        (b"stage\n", "holds no stages"),
    ],
    ids=["empty", "comments", "png", "header-only"],
)
def test_unreadable_hypnograms(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "h.txt"
    path.write_bytes(payload)
    with pytest.raises(HypnogramError, match=message):
        read_hypnogram(path)


def test_missing_hypnogram(tmp_path: Path) -> None:
    with pytest.raises(HypnogramError, match="does not exist"):
        read_hypnogram(tmp_path / "nope.txt")


def test_alignment_tolerates_one_epoch_and_drops_trailing_unknowns() -> None:
    hypnogram = Hypnogram([0, 1, 2, 2, UNKNOWN, UNKNOWN, UNKNOWN])
    np.testing.assert_array_equal(hypnogram.aligned_to(4).stages, [0, 1, 2, 2])
    np.testing.assert_array_equal(hypnogram.aligned_to(3).stages, [0, 1, 2])  # one scored epoch past the end
    np.testing.assert_array_equal(hypnogram.aligned_to(8).stages, [0, 1, 2, 2, -1, -1, -1, -1])
    assert len(hypnogram.aligned_to_duration(3 * 30 + 29.0)) == 3


def test_alignment_is_strict_by_default_and_fits_on_request() -> None:
    hypnogram = Hypnogram([0, 1, 2, 3, 4, 4])
    with pytest.raises(
        HypnogramError, match=r"2 scored epochs fall outside the recording.*on_mismatch='fit'"
    ):
        hypnogram.aligned_to(4)
    with pytest.raises(HypnogramError, match="3 recording epochs come after its end"):
        hypnogram.aligned_to(9)
    with pytest.warns(HypnogramLengthWarning, match="cropped and padded"):
        np.testing.assert_array_equal(hypnogram.aligned_to(4, on_mismatch="fit").stages, [0, 1, 2, 3])
    with pytest.warns(HypnogramLengthWarning):
        assert len(hypnogram.aligned_to(9, on_mismatch="fit")) == 9


def test_alignment_places_a_late_start_on_the_recording_grid() -> None:
    aligned = Hypnogram([2, 3], start_s=60.0).aligned_to(4)
    np.testing.assert_array_equal(aligned.stages, [UNKNOWN, UNKNOWN, 2, 3])
    assert aligned.start_s == 0.0
    with pytest.raises(HypnogramError, match="off its 30-s epoch grid"):
        Hypnogram([2, 3], start_s=45.0).aligned_to(4)


def test_real_sleep_edf_hypnogram(shared_data: Path) -> None:
    hypnogram = read_hypnogram(shared_data / "hypnograms/SC4001EC-Hypnogram.edf")
    assert len(hypnogram) == 86400 // 30 and hypnogram.start_s == 0.0
    assert hypnogram.stages[0] == 0 and hypnogram.stages[30630 // 30] == 1
    aligned = hypnogram.aligned_to_duration(79500.0)  # the PSG's length; the hypnogram runs on with "?"
    assert len(aligned) == 2650 and np.all(aligned.stages >= 0)
    assert set(np.unique(aligned.stages)) == {0, 1, 2, 3, 4}


def test_real_yasa_text_hypnogram(shared_data: Path) -> None:
    hypnogram = read_hypnogram(shared_data / "hypnograms/yasa-full-6hrs-hypno-30s.txt")
    assert len(hypnogram) == 720 and hypnogram.duration_s == 6 * 3600
    assert set(np.unique(hypnogram.stages)) == {0, 1, 2, 3, 4}


def test_real_dreams_hypnogram(shared_data: Path) -> None:
    hypnogram = read_hypnogram(shared_data / "dreams-spindles-dev/Hypnogram_excerpt1.txt")
    assert len(hypnogram) == 60  # 30 min of 5-s codes
    codes = np.loadtxt(shared_data / "dreams-spindles-dev/Hypnogram_excerpt1.txt", skiprows=1, dtype=int)
    aasm = np.array([{5: 0, 4: 4, 3: 1, 2: 2, 1: 3, 0: 3}.get(c, UNKNOWN) for c in codes]).reshape(60, 6)
    single_stage = np.all(aasm == aasm[:, :1], axis=1) & (aasm[:, 0] != UNKNOWN)
    np.testing.assert_array_equal(hypnogram.stages >= 0, single_stage)
    np.testing.assert_array_equal(hypnogram.stages[single_stage], aasm[single_stage, 0])
