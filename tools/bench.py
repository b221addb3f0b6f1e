"""Benchmarks, the same as ``streamstage bench`` and ``python -m benchmarks`` (see docs/benchmarks.md).

python tools/bench.py              # full sizes, about 5 minutes on 2 cores
python tools/bench.py --quick      # smoke run
.venv-bench/bin/python tools/bench.py --sections file,yasa   # with YASA beside ours
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness is not installed
    from benchmarks.cli import main

    sys.exit(main(prog="tools/bench.py"))
