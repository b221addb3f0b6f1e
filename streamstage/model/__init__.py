"""The sequence model: Mamba layers in pure PyTorch that run over a whole night or one epoch at a time.

``Mamba`` is state-dict compatible with mamba-ssm's block; ``MambaStack`` is the residual stack the stager
drives through the ``StreamingModel`` interface, carrying a ``StackState`` between epochs.
"""

from __future__ import annotations

from streamstage.model.mamba import Mamba, MambaCache
from streamstage.model.scan import selective_scan, selective_scan_ref
from streamstage.model.stack import MambaStack, StackState, StreamingModel, bidirectional_reference

__all__ = [
    "Mamba",
    "MambaCache",
    "MambaStack",
    "StackState",
    "StreamingModel",
    "bidirectional_reference",
    "selective_scan",
    "selective_scan_ref",
]
