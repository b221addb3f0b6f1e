"""XDF in: the EEG stream of a LabRecorder-style file staged as its EDF twin is, stage markers read back as a
hypnogram with the file's clock offsets applied.

The files are written here by a small writer of the XDF chunk layout (magic ``XDF:``, then chunks of
length, tag and content: 1 file header, 2 stream header, 3 samples, 4 clock offset, 6 stream footer; see
https://github.com/sccn/xdf/wiki/Specifications).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import edfio
import numpy as np
import pytest

from streamstage import STAGES
from streamstage.cli import main
from streamstage.errors import ChannelError, InputFileError
from streamstage.io.edf import EdfRecording
from streamstage.io.xdf import StreamChoice, XdfRecording
from streamstage.sim import SyntheticEEG

pytest.importorskip("pyxdf")
SFREQ = 100.0
NIGHT = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 0])
T0 = 3000.0


def _varlen(n: int) -> bytes:
    return b"\x01" + struct.pack("<B", n) if n < 256 else b"\x04" + struct.pack("<I", n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _header_xml(name: str, kind: str, labels, rate: float, fmt: str, source_id: str) -> bytes:
    channels = "".join(
        f"<channel><label>{label}</label><unit>microvolts</unit><type>EEG</type></channel>"
        for label in labels
    )
    return (
        f'<?xml version="1.0"?><info><name>{name}</name><type>{kind}</type>'
        f"<channel_count>{len(labels)}</channel_count><nominal_srate>{rate}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><source_id>{source_id}</source_id>"
        f"<created_at>0</created_at><desc><channels>{channels}</channels></desc></info>"
    ).encode()


def _samples(stream_id: int, stamps, values, fmt: str) -> bytes:
    body = struct.pack("<I", stream_id) + _varlen(len(stamps))
    for stamp, value in zip(stamps, values, strict=True):
        body += b"\x08" + struct.pack("<d", stamp)
        if fmt == "string":
            text = value.encode()
            body += _varlen(len(text)) + text
        else:
            body += struct.pack(f"<{len(value)}d", *value)
    return _chunk(3, body)


def write_xdf(path: Path, streams: list[dict]) -> None:
    """Each stream: name, type, labels, rate, format (double64 or string), source_id, stamps, values and
    the clock offset (seconds added to its stamps to reach the recorder's clock)."""
    out = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    for sid, s in enumerate(streams, start=1):
        xml = _header_xml(s["name"], s["type"], s["labels"], s["rate"], s["format"], s["source_id"])
        out += _chunk(2, struct.pack("<I", sid) + xml)
    for sid, s in enumerate(streams, start=1):
        for first in range(0, len(s["stamps"]), 500):
            part = slice(first, first + 500)
            out += _samples(sid, s["stamps"][part], s["values"][part], s["format"])
        for at in (s["stamps"][0], s["stamps"][-1]):
            out += _chunk(4, struct.pack("<Idd", sid, at - s["offset"], s["offset"]))
    for sid, s in enumerate(streams, start=1):
        footer = (
            f'<?xml version="1.0"?><info><first_timestamp>{s["stamps"][0]}</first_timestamp>'
            f"<last_timestamp>{s['stamps'][-1]}</last_timestamp><sample_count>{len(s['stamps'])}"
            "</sample_count></info>"
        )
        out += _chunk(6, struct.pack("<I", sid) + footer.encode())
    path.write_bytes(out)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, Path]:
    """An EDF of a synthetic night and an XDF holding exactly its samples (as µV doubles), with the stage
    markers of that night stamped in a clock 250 s behind the recorder's and a decoy Markers stream."""
    folder = tmp_path_factory.mktemp("xdf")
    eeg = SyntheticEEG(NIGHT, SFREQ, seed=2).generate()[0]
    edf = folder / "night.edf"
    signal = edfio.EdfSignal(
        eeg, SFREQ, label="Fpz-Cz", physical_dimension="uV", physical_range=(-3000, 3000)
    )
    edfio.Edf([signal]).write(edf)
    samples = EdfRecording.open(edf).read_uv("Fpz-Cz")
    stamps = T0 + np.arange(len(samples)) / SFREQ
    markers = [json.dumps({"index": i, "stage": STAGES[code]}) for i, code in enumerate(NIGHT)]
    marker_stamps = T0 - 250.0 + 30.0 * np.arange(len(NIGHT))
    write_xdf(
        folder / "night.xdf",
        [
            dict(name="streamstage-stages", type="Markers", labels=["stage"], rate=0, format="string",
                 source_id="stages", stamps=marker_stamps, values=markers, offset=250.0),
            dict(name="headband", type="EEG", labels=["Fpz-Cz"], rate=SFREQ, format="double64",
                 source_id="hb-1", stamps=stamps, values=samples[:, None], offset=0.0),
            dict(name="buttons", type="Markers", labels=["button"], rate=0, format="string",
                 source_id="buttons", stamps=stamps[:2], values=["a", "b"], offset=0.0),
        ],
    )  # fmt: skip
    return edf, folder / "night.xdf"


def _stages(folder: Path) -> list[str]:
    return [line.split(",")[3] for line in (folder / "hypnogram.csv").read_text().splitlines()[1:]]


def test_stage_on_the_xdf_gives_the_stages_of_stage_on_the_edf(recorded, tmp_path):
    edf, xdf = recorded
    assert main(["stage", str(edf), "--out", str(tmp_path / "edf")]) == 0
    assert main(["stage", str(xdf), "--out", str(tmp_path / "xdf")]) == 0
    assert _stages(tmp_path / "xdf") == _stages(tmp_path / "edf") and len(_stages(tmp_path / "edf")) == 10


def test_the_recorded_stage_markers_read_back_as_the_hypnogram(recorded):
    hypnogram = XdfRecording.open(recorded[1]).hypnogram()
    assert np.array_equal(hypnogram.stages, NIGHT) and hypnogram.start_s == 0.0


def test_the_stream_is_chosen_as_run_chooses_one(recorded):
    assert XdfRecording.open(recorded[1], StreamChoice(source_id="hb-1")).labels == ["Fpz-Cz"]
    with pytest.raises(ChannelError, match="headband"):
        XdfRecording.open(recorded[1], StreamChoice(name="muse"))


def test_a_damaged_xdf_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.xdf"
    path.write_bytes(b"XDF:\x01\x05garbage")
    with pytest.raises(InputFileError, match="not a readable XDF file"):
        XdfRecording.open(path)


def test_evaluate_scores_an_xdf_night_against_its_own_stage_markers(recorded, tmp_path):
    folder = tmp_path / "nights"
    folder.mkdir()
    (folder / "night.xdf").write_bytes(recorded[1].read_bytes())
    assert main(["evaluate", "--edf", str(folder), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["n_nights"] == 1 and scores["n_epochs"] == len(NIGHT)


def test_replay_publishes_the_xdf_eeg_stream_with_its_recorded_stages(recorded):
    from streamstage.cli import build_parser
    from streamstage.commands.replay import _open

    args = build_parser("replay").parse_args(["replay", str(recorded[1]), "--xdf-source-id", "hb-1"])
    source, duration_s, hypnogram = _open(args)
    assert source.labels == ("Fpz-Cz",) and source.sfreq_hz == SFREQ and duration_s == 300.0
    chunks = np.concatenate(list(source.iter_chunks(["Fpz-Cz"], 60.0)))
    assert np.array_equal(chunks[:, 0], EdfRecording.open(recorded[0]).read_uv("Fpz-Cz"))
    assert hypnogram is not None and np.array_equal(hypnogram.stages, NIGHT)


def test_a_dropout_in_the_xdf_is_staged_as_missing_samples(recorded, tmp_path):
    samples = EdfRecording.open(recorded[0]).read_uv("Fpz-Cz")
    stamps = T0 + np.arange(len(samples)) / SFREQ
    kept = np.r_[0:9000, 10000 : len(samples)]  # ten seconds lost in transit
    eeg = dict(name="headband", type="EEG", labels=["Fpz-Cz"], rate=SFREQ, format="double64",
               source_id="hb-1", stamps=stamps[kept], values=samples[kept, None], offset=0.0)  # fmt: skip
    write_xdf(tmp_path / "dropout.xdf", [eeg])
    data = XdfRecording.open(tmp_path / "dropout.xdf").data_uv[:, 0]
    assert len(data) == len(samples) and np.isnan(data[9000:10000]).all()
    assert np.array_equal(data[kept], samples[kept])


def test_without_pyxdf_an_xdf_file_says_which_extra_to_install(recorded, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyxdf", None)
    copy = tmp_path / "copy.xdf"
    copy.write_bytes(recorded[1].read_bytes())  # not parsed before, so not cached
    with pytest.raises(InputFileError, match=r"pip install 'streamstage\[xdf\]'"):
        XdfRecording.open(copy)
