"""Event hooks: what happened (events), who is told (runners), told how without delaying staging."""

from streamstage.hooks.dispatcher import HookDispatcher, HookResult
from streamstage.hooks.events import EVENT_NAMES, Event, EventDetector
from streamstage.hooks.runners import (
    ENTRY_POINT_GROUP,
    HOOK_KINDS,
    CallableHook,
    CommandHook,
    Hook,
    HookSpec,
    HttpHook,
    Outcome,
    build_hook,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "EVENT_NAMES",
    "HOOK_KINDS",
    "CallableHook",
    "CommandHook",
    "Event",
    "EventDetector",
    "Hook",
    "HookDispatcher",
    "HookResult",
    "HookSpec",
    "HttpHook",
    "Outcome",
    "build_hook",
]
