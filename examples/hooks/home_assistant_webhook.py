#!/usr/bin/env python3
"""Forward a streamstage event (JSON on stdin) to a Home Assistant webhook:
``home_assistant_webhook.py http://homeassistant.local:8123/api/webhook/<id>`` (or set HA_WEBHOOK_URL).

streamstage can POST to a URL by itself (a ``url`` hook); this script is for when you want to reshape the
payload first: here it sends only what an automation needs (event, stage, kind, time).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HA_WEBHOOK_URL", "")
    if not url:
        print(
            "home_assistant_webhook: give the webhook URL as argument or in HA_WEBHOOK_URL", file=sys.stderr
        )
        return 2
    event = json.load(sys.stdin)
    payload = {
        "event": event.get("event"),
        "stage": event.get("stage"),
        "kind": event.get("extra", {}).get("kind"),
        "time": event.get("wall"),
    }
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            print(f"home_assistant_webhook: HTTP {reply.status}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as error:
        print(f"home_assistant_webhook: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
