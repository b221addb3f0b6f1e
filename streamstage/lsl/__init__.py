"""Lab Streaming Layer transport only: the live input, EDF replay as a stream, and the stage outlets.

Putting samples on a regular grid is signal conditioning and lives in :mod:`streamstage.signal`.

* :mod:`~streamstage.lsl.scope`: how far LSL looks (``configure_lsl``, before any other LSL use);
* :mod:`~streamstage.lsl.resolve` and :mod:`~streamstage.lsl.meta`: finding a stream, its channel layout;
* :mod:`~streamstage.lsl.inlet`: ``LslInlet``, chunks and ``signal_lost``/``signal_back`` events;
* :mod:`~streamstage.lsl.replay` and :mod:`~streamstage.lsl.sources`: a recording published as a stream;
* :mod:`~streamstage.lsl.outlets`: ``StageOutlets``, each staged epoch as a marker and as probabilities.

No module imports ``pylsl`` at import time, so the scope can still be chosen after importing them.
"""
