#!/usr/bin/env python3
"""Append each streamstage event (JSON on stdin) as one line to a file: ``log_event.py [PATH]``.

A minimal hook showing the contract: read the event from stdin, do one small thing, exit 0 on success.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "streamstage-events.jsonl")
    event = json.load(sys.stdin)
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(event, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
