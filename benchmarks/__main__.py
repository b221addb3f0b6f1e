"""``python -m benchmarks`` from the repository root: the whole harness (see docs/benchmarks.md)."""

import sys

from benchmarks.cli import main

sys.exit(main())
