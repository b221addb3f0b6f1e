"""The models shipped with streamstage (``<name>.pt`` in this folder; see MODEL_CARD.md), by the name
``--model`` takes. Kept apart from :mod:`streamstage.model`, so that naming them (a command's ``--help``)
does not import torch."""

BUNDLED_MODELS: dict[str, str] = {
    "default": "one frontal EEG channel (Fpz-Cz; on a headband the nearest frontal derivation)",
    "psg": "PSG: Fpz-Cz + Pz-Oz + horizontal EOG",
    "raw": "raw-signal Mamba over the 100-Hz samples of Fpz-Cz, under the default's epoch network",
}
"""Every shipped model by name, with what it stages."""
DEFAULT_MODEL = "default"
