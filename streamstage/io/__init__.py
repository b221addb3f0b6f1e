"""Files in and out: EDF/BDF recordings, hypnograms in the formats scorers use, the Sleep-EDF dataset."""

from __future__ import annotations

from streamstage.io.edf import EdfRecording, TruncatedFileWarning
from streamstage.io.hypnogram import (
    UNKNOWN,
    Hypnogram,
    HypnogramLengthWarning,
    read_hypnogram,
    write_hypnogram_csv,
    write_hypnogram_edf,
)
from streamstage.io.sleepedf import (
    PHYSIONET_SLEEP_CASSETTE,
    RecordingPair,
    download_sleep_cassette,
    find_edf_pairs,
)

__all__ = [
    "PHYSIONET_SLEEP_CASSETTE",
    "UNKNOWN",
    "EdfRecording",
    "Hypnogram",
    "HypnogramLengthWarning",
    "RecordingPair",
    "TruncatedFileWarning",
    "download_sleep_cassette",
    "find_edf_pairs",
    "read_hypnogram",
    "write_hypnogram_csv",
    "write_hypnogram_edf",
]
