"""streamstage: real-time sleep staging from a live EEG headband.

Data flows one way: source (LSL inlet | EDF file | replay) -> signal (filter, resample, quality)
-> model (Mamba, step mode) -> decisions (stage, smart alarm) -> sinks (dashboard, files, LSL, hooks).
"""

__version__ = "0.1.0"

STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
"""AASM stage names, in the order of the model's five outputs."""
