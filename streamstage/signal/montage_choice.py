"""Which channel of a live stream to stage.

A model names the derivation it was trained on (Fpz-Cz). A PSG stream may carry it; a headband does not, so
when the user names no channel the nearest frontal derivation the stream offers is chosen, and said.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamstage.errors import ChannelError
from streamstage.signal.channels import Montage, resolve_derivation

FRONTAL_FALLBACKS: tuple[str, ...] = (
    "Fpz-Cz",
    "Fpz",
    "AF7-TP9",
    "AF8-TP10",
    "Fp1",
    "Fp2",
    "F3",
    "F4",
    "AF7",
    "AF8",
)
"""Tried in order for a one-channel model when its own channel is absent (Muse: AF7-TP9)."""


def pick_montage(
    labels: Sequence[str],
    model_channels: Sequence[str],
    wanted: Sequence[str] | None = None,
    reference: str | None = None,
) -> Montage:
    """The user's ``--channel``/``--reference``, else the model's channels, else a frontal fallback."""
    if wanted:
        if len(wanted) != len(model_channels):
            raise ChannelError(
                f"the model stages {len(model_channels)} channel(s) ({', '.join(model_channels)}), "
                f"but {len(wanted)} were given; pass one --channel per model channel."
            )
        return Montage(tuple(resolve_derivation(labels, name, reference) for name in wanted))
    try:
        return Montage.resolve(labels, model_channels)
    except ChannelError:
        if len(model_channels) != 1:
            raise
    for candidate in FRONTAL_FALLBACKS:
        try:
            return Montage((resolve_derivation(labels, candidate),))
        except ChannelError:
            continue
    raise ChannelError(
        f"the stream has none of the channels the model expects ({', '.join(model_channels)}) nor a frontal "
        f"channel; its channels are {', '.join(labels)}: choose one with --channel (and --reference)."
    )
