"""What a saved night must agree with before it is continued, and what to say when it cannot be.

A state is only worth restoring into the stream, channels and software that wrote it: a model state
carried over onto another recording stages it with a foreign past, silently. And a state that cannot be
read (a torn disk, a full one) must not end the night for good: ``--rebuild-state`` continues it from the
rows already written, with the model started afresh.
"""

from __future__ import annotations

from typing import Any

from streamstage import __version__
from streamstage.errors import ResumeError
from streamstage.lsl.meta import StreamLayout
from streamstage.signal.channels import Montage

STATE_FORMAT = 3
IDENTITY_FIELDS: tuple[str, ...] = ("name", "type", "source_id", "hostname", "labels")
"""What names the stream a night was started on (its uid changes with every restart of the sender)."""


def stream_identity(layout: StreamLayout) -> dict[str, Any]:
    """The fields of :data:`IDENTITY_FIELDS`, as saved in the state (labels as a list)."""
    return {key: getattr(layout, key) for key in IDENTITY_FIELDS} | {"labels": list(layout.labels)}


def check_resumable(
    state: dict[str, Any], layout: StreamLayout, montage: Montage, accept_new_source: bool
) -> None:
    """Refuse a state of another streamstage, another channel or (unless accepted) another stream."""
    if state.get("format") != STATE_FORMAT or state.get("version") != __version__:
        raise ResumeError(
            f"the saved night was written by streamstage {state.get('version')} (state format "
            f"{state.get('format')}), this is {__version__} (format {STATE_FORMAT}); resume it with the "
            "version that started it, or continue it with --rebuild-state."
        )
    if list(state.get("channels", [])) != list(montage.labels):
        raise ResumeError(
            f"the saved night staged {', '.join(state.get('channels', []))}, this run would stage "
            f"{', '.join(montage.labels)}; pass the same --channel."
        )
    saved = state.get("stream", {})
    now = stream_identity(layout)
    differs = [key for key in IDENTITY_FIELDS if key in saved and saved[key] != now[key]]
    if differs and not accept_new_source:
        changes = "; ".join(f"{key} {saved[key]!r} -> {now[key]!r}" for key in differs)
        raise ResumeError(
            f"this is not the stream the night was started on ({changes}); resume on that stream, or pass "
            "--accept-new-source if it really is the same recording."
        )
