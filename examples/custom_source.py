"""Feed streamstage from your own device: publish its samples as an LSL stream with channel metadata.

streamstage reads any LSL stream of type EEG. This sketch stands in for a device driver with the synthetic
generator; replace ``read_device`` with your own acquisition. Keep the labels and units (the XDF
convention below) so `streamstage run --name MyHeadband --channel Fp1` finds the channel and its scale; if
your amplifier has a fixed input range, add ``physical_min``/``physical_max`` (in the channel's unit) to each
channel too, and epochs where a channel sits at its rail are flagged as clipped.

    python examples/custom_source.py &
    streamstage run --name MyHeadband --channel Fp1
"""

from __future__ import annotations

import time

import numpy as np
import pylsl

from streamstage.sim import SyntheticEEG, synthetic_hypnogram

SFREQ_HZ = 250.0
LABELS = ("Fp1", "Fp2")


def read_device(eeg: SyntheticEEG):
    """Yield ``(n_samples, n_channels)`` blocks in µV as the device delivers them (here: 40 ms blocks)."""
    for block in eeg.iter_chunks(0.04):
        yield np.repeat(block.T, len(LABELS), axis=1)


def main() -> None:
    info = pylsl.StreamInfo("MyHeadband", "EEG", len(LABELS), SFREQ_HZ, "float32", "myheadband-0001")
    channels = info.desc().append_child("channels")
    for label in LABELS:
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", "microvolts")
        channel.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info)
    eeg = SyntheticEEG(synthetic_hypnogram(8.0, seed=1), SFREQ_HZ, seed=1)
    started, sent = pylsl.local_clock(), 0
    for block in read_device(eeg):
        outlet.push_chunk(block.astype(np.float32).tolist())
        sent += len(block)
        time.sleep(max(0.0, started + sent / SFREQ_HZ - pylsl.local_clock()))  # real time, no drift


if __name__ == "__main__":
    main()
