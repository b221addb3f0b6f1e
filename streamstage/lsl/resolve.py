"""Find one stream by name, type or source id, and say which streams exist when it is not there.

A failed search is the most common first-night problem (bridge not running, other computer, typo in the
name), so the error lists every stream that *is* visible, in the form the options take.
"""

from __future__ import annotations

import time
from typing import Any

from streamstage.errors import StreamError
from streamstage.lsl.meta import StreamLayout

DEFAULT_TYPES: tuple[str, ...] = ("EEG", "eeg")
"""Matched when no criterion is given: the XDF convention, and mne-lsl's lower-case type."""
AMBIGUITY_WAIT_S = 0.6
"""How long to listen for a second matching stream once one has answered (one discovery wave)."""
_POLL_S = 0.02


def stream_predicate(name: str | None = None, type: str | None = None, source_id: str | None = None) -> str:
    """An LSL (XPath) predicate matching every given field; an EEG type (either case) when none is given."""
    fields = {"name": name, "type": type, "source_id": source_id}
    if not any(fields.values()):
        return " or ".join(f"type={xpath_literal(kind)}" for kind in DEFAULT_TYPES)
    return " and ".join(f"{key}={xpath_literal(value)}" for key, value in fields.items() if value)


def resolve_stream(
    name: str | None = None, type: str | None = None, source_id: str | None = None, timeout_s: float = 5.0
) -> Any:
    """The one ``pylsl.StreamInfo`` matching the criteria, or :class:`StreamError` listing what is visible."""
    import pylsl

    predicate = stream_predicate(name, type, source_id)
    found = _watch(pylsl.ContinuousResolver(pred=predicate), timeout_s, settle_s=AMBIGUITY_WAIT_S)
    if len(found) == 1:
        return found[0]
    if found:
        listed = "; ".join(StreamLayout.from_info(info).describe() for info in found)
        raise StreamError(
            f"{len(found)} LSL streams match {predicate}: {listed}; pick one with --name or --source-id."
        )
    seen = list_streams(wait_s=min(timeout_s, 1.0))
    listed = "; ".join(layout.describe() for layout in seen) if seen else "none"
    raise StreamError(
        f"no LSL stream matches {predicate} after {timeout_s:g} s (streams seen: {listed}); start the "
        "headband's bridge, pick a stream with --name, --type or --source-id, or widen --lsl-scope."
    )


def list_streams(wait_s: float = 1.0) -> list[StreamLayout]:
    """Every stream visible within ``wait_s``, sorted by name (descriptions are not fetched: no labels)."""
    import pylsl

    layouts = [StreamLayout.from_info(info) for info in _watch(pylsl.ContinuousResolver(), wait_s)]
    return sorted(layouts, key=lambda layout: (layout.name, layout.type, layout.source_id))


def _watch(resolver: Any, timeout_s: float, settle_s: float | None = None) -> list[Any]:
    """Streams a continuous resolver reports within ``timeout_s``, or ``settle_s`` after the first one.

    A continuous resolver rather than liblsl's one-shot resolve, whose timeout is not always kept (a short
    resolve right after a long one can take seconds more).
    """
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        found.update((info.uid(), info) for info in resolver.results())
        if found and settle_s is not None:
            deadline = min(deadline, time.monotonic() + settle_s) if len(found) == 1 else time.monotonic()
            settle_s = None
        if time.monotonic() >= deadline:
            return list(found.values())
        time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def xpath_literal(value: str) -> str:
    """Quote a value for an XPath 1.0 predicate, which has no escape character."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    pieces: list[str] = []
    for i, part in enumerate(value.split("'")):
        if i:
            pieces.append('"\'"')
        if part:
            pieces.append(f"'{part}'")
    return f"concat({', '.join(pieces)})"
