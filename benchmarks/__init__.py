"""Benchmarks: what the streaming Mamba stack costs per epoch and overnight, against baselines that
recompute or cache attention over the whole night."""

SECTIONS: tuple[str, ...] = ("live", "mamba", "transformer", "batching", "file", "lsl", "yasa", "startup")
"""Every section ``streamstage bench`` can run, in the order it runs them (here, so that the command's
parser needs no torch)."""
