"""The sequence model: Mamba layers in pure PyTorch that run over a whole night or one epoch at a time.

``Mamba`` is state-dict compatible with mamba-ssm's block; ``MambaStack`` is the residual stack the stagers
are built on. Every streaming part (the stack, the stagers, the raw front end) is a ``StreamingModule``:
``init_state`` / ``step`` over any chunk / ``forward`` / ``load_state``.
"""

from __future__ import annotations

from streamstage.model.mamba import Mamba, MambaCache
from streamstage.model.scan import selective_scan, selective_scan_ref
from streamstage.model.stack import MambaStack, StackState, StreamingModule

__all__ = [
    "Mamba",
    "MambaCache",
    "MambaStack",
    "StackState",
    "StreamingModule",
    "selective_scan",
    "selective_scan_ref",
]
