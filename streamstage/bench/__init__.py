"""Benchmarks: what the streaming Mamba stack costs per epoch and overnight, against baselines that
recompute or cache attention over the whole night."""
