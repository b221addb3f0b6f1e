"""Channel resolution, bipolar derivations and unit scales."""

from __future__ import annotations

import numpy as np
import pytest

from streamstage.errors import ChannelError
from streamstage.signal import Derivation, Montage, normalise_label, resolve_derivation, scale_to_uv

SLEEP_EDF = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "Resp oro-nasal", "EMG submental"]
MUSE = ["TP9", "AF7", "AF8", "TP10", "Right AUX"]
REFERENTIAL = ["EEG C3-REF", "EEG O1-Ref", "EEG A2-REF", "EOG_Left"]


@pytest.mark.parametrize(
    ("label", "expected"),
    [("EEG Fpz-Cz", "fpz-cz"), ("EEG C3-REF", "c3"), ("EOG_Left", "left"), ("Right AUX", "rightaux")],
)
def test_normalise_label_drops_type_prefix_ref_suffix_and_separators(label: str, expected: str) -> None:
    assert normalise_label(label) == expected


@pytest.mark.parametrize(
    ("labels", "wanted", "expected"),
    [
        (SLEEP_EDF, "fpz-cz", Derivation("fpz-cz", 0)),
        (SLEEP_EDF, "EEG Pz-Oz", Derivation("EEG Pz-Oz", 1)),
        (MUSE, "AF7", Derivation("AF7", 1)),
        (MUSE, "af8", Derivation("af8", 2)),
        (REFERENTIAL, "C3", Derivation("C3", 0)),
        (REFERENTIAL, "o1", Derivation("o1", 1)),
    ],
)
def test_resolves_single_channels_case_and_alias_insensitively(
    labels: list[str], wanted: str, expected: Derivation
) -> None:
    assert resolve_derivation(labels, wanted) == expected


def test_builds_bipolar_derivation_from_two_referential_channels() -> None:
    assert resolve_derivation(MUSE, "AF7-TP9") == Derivation("AF7-TP9", 1, 0)
    assert resolve_derivation(REFERENTIAL, "C3-A2") == Derivation("C3-A2", 0, 2)


def test_existing_hyphenated_channel_wins_over_a_derivation() -> None:
    labels = ["Fpz-Cz", "Fpz", "Cz"]
    assert resolve_derivation(labels, "fpz-cz") == Derivation("fpz-cz", 0)


def test_explicit_reference_pair() -> None:
    assert resolve_derivation(MUSE, "tp10", reference="TP9") == Derivation("tp10-TP9", 3, 0)


def test_unknown_channel_lists_the_available_labels() -> None:
    with pytest.raises(ChannelError) as caught:
        resolve_derivation(MUSE, "Cz")
    message = str(caught.value)
    assert "'Cz'" in message
    assert all(repr(label) in message for label in MUSE)


def test_unknown_reference_is_an_error() -> None:
    with pytest.raises(ChannelError, match="TP11"):
        resolve_derivation(MUSE, "AF7", reference="TP11")


def test_ambiguous_label_is_an_error() -> None:
    with pytest.raises(ChannelError, match="ambiguous"):
        resolve_derivation(["EEG C3", "C3"], "c3")


def test_derivation_and_montage_apply_columns() -> None:
    samples = np.array([[1.0, 10.0, 100.0, 1000.0], [2.0, 20.0, np.nan, 2000.0]])
    assert np.array_equal(resolve_derivation(MUSE, "AF7").apply(samples), [10.0, 20.0])
    montage = Montage.resolve(MUSE, ["AF7-TP9", "TP10", "AF8-TP10"])
    assert montage.labels == ("AF7-TP9", "TP10", "AF8-TP10")
    derived = montage.apply(samples)
    assert derived.shape == (2, 3)
    assert np.array_equal(derived[:, :2], [[9.0, 1000.0], [18.0, 2000.0]])
    assert derived[0, 2] == -900.0
    assert np.isnan(derived[1, 2])  # a missing input keeps the derived sample missing
    assert np.array_equal(derived[:, 0], montage.derivations[0].apply(samples))


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("V", 1e6),
        ("volts", 1e6),
        ("mV", 1e3),
        ("MilliVolts", 1e3),
        ("uV", 1.0),
        ("µV", 1.0),
        ("μV", 1.0),
        ("UV", 1.0),
        ("microvolts", 1.0),
        ("nV", 1e-3),
    ],
)
def test_known_units_scale_to_microvolts(unit: str, factor: float) -> None:
    scale = scale_to_uv(unit)
    assert scale.factor == factor
    assert not scale.assumed


@pytest.mark.parametrize("unit", [None, "", "  ", "counts"])
def test_unknown_units_assume_microvolts_visibly(unit: str | None) -> None:
    scale = scale_to_uv(unit)
    assert scale.factor == 1.0
    assert scale.assumed
