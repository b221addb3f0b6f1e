"""Publish each staged epoch on LSL, for LabRecorder and closed-loop tools.

Two streams: ``streamstage-stages`` (type ``Markers``, one JSON string per epoch: ``StagedEpoch.to_dict()``
with stage, probabilities, start, quality and latency) and ``streamstage-probs`` (five float32 channels
labelled W, N1, N2, N3, REM). Both are stamped at the epoch's *start* in the source stream's clock (the
LSL clock of this machine, as the inlet maps it), so a recording lines each stage up with the EEG it
describes; the sample arrives one epoch (plus latency) after its stamp, which the JSON's ``latency_s``
states. Both are irregular-rate: epochs are regular, but a lost signal leaves holes.

With ``provisional=True`` (a raw model) a third, ``streamstage-provisional`` (type ``Markers``), carries
the stage of the epoch still in progress every few seconds: one JSON string per peek,
``ProvisionalStage.to_dict()`` (``index`` and ``start_s`` of the epoch it will be, ``elapsed_s`` into it,
stage, probabilities, ``"provisional": true``), stamped when the peek was taken (``start_s + elapsed_s``).
It is a guess from part of an epoch: the final word on an epoch is always ``streamstage-stages``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from streamstage import STAGES
from streamstage.errors import StreamError
from streamstage.lsl.meta import write_channels
from streamstage.records import ProvisionalStage, StagedEpoch

STAGES_STREAM = "streamstage-stages"
PROBS_STREAM = "streamstage-probs"
PROVISIONAL_STREAM = "streamstage-provisional"


def open_outlet(info: Any, max_buffered_s: float = 360.0) -> Any:
    """A ``pylsl.StreamOutlet`` for ``info``, or StreamError saying why LSL could not publish it."""
    import pylsl

    try:
        return pylsl.StreamOutlet(info, max_buffered=round(max_buffered_s))
    except RuntimeError as error:
        raise StreamError(
            f"LSL could not publish stream {info.name()!r} ({error}); check that no firewall or other "
            "program blocks LSL's network ports."
        ) from error


class StageOutlets:
    """The outlets; ``source_id`` (e.g. the input stream's) keeps a restarted run the same source, and
    ``provisional`` adds the provisional-stage stream."""

    def __init__(self, source_id: str = "streamstage", provisional: bool = False) -> None:
        import pylsl

        markers = pylsl.StreamInfo(
            STAGES_STREAM, "Markers", 1, pylsl.IRREGULAR_RATE, "string", f"{STAGES_STREAM}@{source_id}"
        )
        probs = pylsl.StreamInfo(
            PROBS_STREAM,
            "Probabilities",
            len(STAGES),
            pylsl.IRREGULAR_RATE,
            "float32",
            f"{PROBS_STREAM}@{source_id}",
        )
        write_channels(probs, STAGES, ["probability"] * len(STAGES), ["probability"] * len(STAGES))
        for info in (markers, probs):
            info.desc().append_child_value("stamped_at", "epoch start")
        self._markers: Any = open_outlet(markers)
        self._probs: Any = open_outlet(probs)
        self._provisional: Any = None
        if provisional:
            info = pylsl.StreamInfo(
                PROVISIONAL_STREAM,
                "Markers",
                1,
                pylsl.IRREGULAR_RATE,
                "string",
                f"{PROVISIONAL_STREAM}@{source_id}",
            )
            info.desc().append_child_value("stamped_at", "peek time (start_s + elapsed_s)")
            self._provisional = open_outlet(info)

    def push(self, epoch: StagedEpoch) -> None:
        """Publish one epoch on both streams, stamped at ``epoch.start_s``; an unknown epoch (no data) has
        stage ``"unknown"`` in the JSON and NaN probabilities, so no closed-loop tool acts on a guess."""
        if self._markers is None:
            return
        self._markers.push_sample([json.dumps(epoch.to_dict())], epoch.start_s)
        probs = list(epoch.probs) if epoch.known else [math.nan] * len(STAGES)
        self._probs.push_sample(probs, epoch.start_s)

    def push_provisional(self, provisional: ProvisionalStage) -> None:
        """Publish one provisional stage, stamped when it was taken; nothing without ``provisional=True``."""
        if self._provisional is None:
            return
        self._provisional.push_sample([json.dumps(provisional.to_dict())], provisional.at_s)

    def close(self) -> None:
        self._markers = self._probs = self._provisional = None

    def __enter__(self) -> StageOutlets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
