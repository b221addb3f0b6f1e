"""Benchmarks, the same as ``streamstage bench`` (see docs/benchmarks.md).

python tools/bench.py              # full sizes, about 2 minutes on 2 cores
python tools/bench.py --quick      # smoke run
.venv-bench/bin/python tools/bench.py --sections file,yasa   # with YASA beside ours
"""

from __future__ import annotations

import argparse
import sys

from streamstage.commands import bench
from streamstage.errors import StreamstageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bench.py", description=bench.DESCRIPTION)
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return bench.run(args)
    except StreamstageError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
