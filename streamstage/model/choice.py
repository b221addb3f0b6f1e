"""Which model stages a night, and why: one sentence `run` and `stage` print before staging.

A user with a PSG (Fpz-Cz, Pz-Oz and horizontal EOG) gets more from the ``psg`` model; a headband user from
the single-channel ``default``. The choice is the user's (``--model``); the sentence says what was chosen,
on what grounds, and points at the other model where the recording could use it.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamstage.errors import ChannelError
from streamstage.model.checkpoint import BUNDLED_MODELS, DEFAULT_MODEL, StagingModel
from streamstage.signal.channels import resolve_derivation

PSG_MODEL = "psg"
PSG_CHANNELS: tuple[str, ...] = ("Fpz-Cz", "Pz-Oz", "EOG horizontal")
"""What the psg model stages, in the order it reads them (Sleep-EDF labels; pass --channel otherwise)."""


def _has_channels(labels: Sequence[str], wanted: Sequence[str]) -> bool:
    try:
        for name in wanted:
            resolve_derivation(labels, name)
    except ChannelError:
        return False
    return True


def model_choice(requested: object, model: StagingModel, labels: Sequence[str] = ()) -> str:
    """``model: ... (why)``, for the start of a night or of a file; ``requested`` is what ``--model`` got
    (None when it was not given)."""
    requested = None if requested is None else str(requested)
    members = model.config.n_members
    what = f"{model.source}, {', '.join(model.channels)}" + (
        f", ensemble of {members}" if members > 1 else ""
    )
    if requested is None:
        why = "the default: one frontal channel, the model that measured best across labs (MODEL_CARD.md)"
    elif requested in BUNDLED_MODELS:
        why = f"as asked: {BUNDLED_MODELS[requested]}"
    else:
        why = "as asked (--model)"
    note = f"model: {what} ({why})"
    if requested in (None, DEFAULT_MODEL) and labels and _has_channels(labels, PSG_CHANNELS):
        note += f"; this recording has {', '.join(PSG_CHANNELS)}: --model {PSG_MODEL} stages all three"
    return note
