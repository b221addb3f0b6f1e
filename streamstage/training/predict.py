"""Stage whole nights through the streaming model, epoch by epoch, exactly as live.

Nights are padded and stepped together as one batch (the stack is batched: independent streams step
together), so evaluating many nights costs one step per epoch of the longest night. Padding sits at the end
and the model is causal, so it never touches a real epoch's output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from streamstage.model.stager import StagingNet


@torch.no_grad()
def predict_nights(net: StagingNet, nights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Normalised inputs ``(n_epochs, n_channels, n_features)`` per night -> probabilities ``(n_epochs, 5)``.

    A bidirectional (offline reference) model sees each whole night at once instead.
    """
    net.eval()
    if not nights:
        return []
    if net.config.bidirectional:
        return [
            torch.softmax(net(torch.from_numpy(night).unsqueeze(0)), dim=-1)[0].numpy() for night in nights
        ]
    longest = max(len(n) for n in nights)
    padded = np.zeros((len(nights), longest, *nights[0].shape[1:]), dtype=np.float32)
    for row, night in enumerate(nights):
        padded[row, : len(night)] = night
    inputs = torch.from_numpy(padded)
    state = net.init_state(len(nights))
    probs = np.empty((len(nights), longest, len(net.config.stages)), dtype=np.float32)
    for epoch in range(longest):
        logits, state = net.step(inputs[:, epoch : epoch + 1], state)
        probs[:, epoch] = torch.softmax(logits[:, 0], dim=-1).numpy()
    return [probs[row, : len(night)] for row, night in enumerate(nights)]
