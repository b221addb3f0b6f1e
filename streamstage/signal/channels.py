"""Pick the channels to stage from a source's labels, and derive bipolar channels.

Sources name the same electrode differently ("EEG Fpz-Cz", "Fpz-Cz", "FPZ-CZ-REF", "AF7"), and headbands
such as the Muse only carry referential channels, so "AF7-TP9" must be built from two of them. Resolution
happens once, when the source opens; applying a derivation is then a cheap column operation per chunk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamstage.errors import ChannelError

_TYPE_PREFIX = re.compile(r"^(eeg|eog|emg|ecg|ekg)[\s_:]+")
_REF_SUFFIX = re.compile(r"[\s_-]*ref$")
_SEPARATORS = re.compile(r"[\s_]+")


def normalise_label(label: str) -> str:
    """The comparable form of a label: lower case, no type prefix, no "-REF" suffix, no spaces/underscores."""
    text = _TYPE_PREFIX.sub("", label.strip().lower())
    text = _REF_SUFFIX.sub("", text)
    return _SEPARATORS.sub("", text)


@dataclass(frozen=True)
class Derivation:
    """One output channel: source column ``positive`` minus column ``reference`` (if any)."""

    label: str
    positive: int
    reference: int | None = None

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """``(n, n_source_channels)`` -> ``(n,)`` float64; NaN in either input stays NaN (missing)."""
        data = np.asarray(samples, dtype=np.float64)
        if self.reference is None:
            return data[:, self.positive].copy()
        return data[:, self.positive] - data[:, self.reference]


@dataclass(frozen=True)
class Montage:
    """Several derivations applied together, in order: ``(n, n_source)`` -> ``(n, n_out)``."""

    derivations: tuple[Derivation, ...]

    @classmethod
    def resolve(cls, labels: Sequence[str], wanted: Sequence[str]) -> Montage:
        """Resolve each wanted label (or "A-B" derivation) against the source's labels."""
        return cls(tuple(resolve_derivation(labels, name) for name in wanted))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(derivation.label for derivation in self.derivations)

    def apply(self, samples: np.ndarray) -> np.ndarray:
        data = np.asarray(samples, dtype=np.float64)
        out = data[:, [d.positive for d in self.derivations]]
        for column, derivation in enumerate(self.derivations):
            if derivation.reference is not None:
                out[:, column] -= data[:, derivation.reference]
        return out


def _matches(labels: Sequence[str], wanted: str) -> list[int]:
    exact = [index for index, label in enumerate(labels) if label == wanted]
    if exact:
        return exact
    key = normalise_label(wanted)
    return [index for index, label in enumerate(labels) if normalise_label(label) == key]


def _unique(labels: Sequence[str], wanted: str, found: list[int]) -> int:
    if len(found) > 1:
        names = ", ".join(repr(labels[index]) for index in found)
        raise ChannelError(f"channel '{wanted}' is ambiguous, it matches {names}; pass the exact label.")
    return found[0]


def _no_such_channel(labels: Sequence[str], wanted: str) -> ChannelError:
    available = ", ".join(repr(label) for label in labels) or "(none)"
    return ChannelError(
        f"no channel '{wanted}' in the source; available: {available} "
        "(use one of these, or 'A-B' for a bipolar derivation)."
    )


def resolve_channel(labels: Sequence[str], wanted: str) -> int:
    """Index of the one source channel called ``wanted`` (case and alias insensitive)."""
    found = _matches(labels, wanted)
    if not found:
        raise _no_such_channel(labels, wanted)
    return _unique(labels, wanted, found)


def resolve_derivation(labels: Sequence[str], wanted: str, reference: str | None = None) -> Derivation:
    """A :class:`Derivation` for ``wanted``, or for ``wanted`` minus ``reference`` when one is given.

    A label "A-B" that is not itself a channel is read as channel A minus channel B, trying every "-" in
    the label so that channels whose own names contain "-" still resolve.
    """
    if reference is not None:
        positive = resolve_channel(labels, wanted)
        return Derivation(f"{wanted}-{reference}", positive, resolve_channel(labels, reference))
    found = _matches(labels, wanted)
    if found:
        return Derivation(wanted, _unique(labels, wanted, found))
    for split in (match.start() for match in re.finditer("-", wanted)):
        left, right = wanted[:split].strip(), wanted[split + 1 :].strip()
        if not left or not right:
            continue
        left_found, right_found = _matches(labels, left), _matches(labels, right)
        if left_found and right_found:
            return Derivation(wanted, _unique(labels, left, left_found), _unique(labels, right, right_found))
    raise _no_such_channel(labels, wanted)
