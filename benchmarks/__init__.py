"""The benchmark harness: what the streaming Mamba stack costs per epoch and overnight, against baselines
that recompute or cache attention over the whole night, and peers (YASA). It lives beside the package, not
in it (the wheel ships none of it): run ``python -m benchmarks`` or ``tools/bench.py`` from a checkout, or
``streamstage bench`` with the checkout installed ``-e``. The other scripts here run on their own."""

SECTIONS: tuple[str, ...] = (
    "live",
    "mamba",
    "transformer",
    "batching",
    "lab",
    "file",
    "lsl",
    "yasa",
    "archive",
    "startup",
)
"""Every section the harness can run, in the order it runs them (here, so that the parser needs no torch)."""
