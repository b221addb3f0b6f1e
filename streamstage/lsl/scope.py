"""How far LSL looks for streams, set once per process before liblsl first reads its configuration.

liblsl reads its settings lazily, the first time a stream is created or resolved, and never again. So the
CLI calls :func:`configure_lsl` before anything touches LSL, and every module of ours imports ``pylsl``
inside functions only. Headband bridges usually run on the same computer, so the default is the
``machine`` scope: nothing is announced beyond this host unless ``--lsl-scope`` widens it. A configuration
the user chose through ``LSLAPICFG`` wins over ours.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from streamstage.errors import ConfigError

SCOPES: tuple[str, ...] = ("machine", "link", "site")
"""``machine``: this computer; ``link``: the local network segment; ``site``: what routers forward."""

LOOPBACK_CFG = Path(__file__).with_name("loopback.cfg")
"""Bundled configuration that keeps every packet on 127.0.0.1 (demo and tests)."""

_SCOPE_CFG = """\
; Written by streamstage: LSL resolves streams within the {scope!r} scope.
[multicast]
ResolveScope = {scope}

[log]
level = -2
"""

_applied: str | None = None
"""The configuration text this process handed to liblsl, so a conflicting second call is caught."""


def scope_config(scope: str) -> str:
    """The liblsl configuration text for one of :data:`SCOPES`."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown LSL scope {scope!r}; use one of {', '.join(SCOPES)}.")
    return _SCOPE_CFG.format(scope=scope)


def configure_lsl(scope: str | None = None, loopback_only: bool = False) -> str:
    """Choose LSL's discovery scope for this process and return one line saying which settings apply.

    ``loopback_only`` uses :data:`LOOPBACK_CFG` whatever else is set, because the demo promises that no
    packet leaves the machine. Otherwise a user's ``LSLAPICFG`` is left alone, and ``scope`` (default
    ``machine``) is applied. Call it before any other LSL use; a second call asking for something else
    raises :class:`ConfigError`, since liblsl would silently keep the first.
    """
    if loopback_only:
        return _apply(LOOPBACK_CFG.read_text(), "LSL kept on this machine (127.0.0.1 only)")
    user_cfg = os.environ.get("LSLAPICFG")
    if user_cfg and _applied is None:
        if not Path(user_cfg).is_file():
            raise ConfigError(
                f"LSLAPICFG points at {user_cfg}, which does not exist; fix the path or unset it."
            )
        ignored = f"; --lsl-scope {scope} ignored" if scope else ""
        return f"LSL settings from LSLAPICFG={user_cfg}{ignored}"
    scope = scope or "machine"
    return _apply(scope_config(scope), f"LSL scope: {scope}")


def _apply(content: str, summary: str) -> str:
    global _applied
    if _applied is not None:
        if _applied != content:
            raise ConfigError(
                "LSL was already configured differently in this process; "
                "choose the LSL scope once, before any stream is opened."
            )
        return summary
    import pylsl

    try:
        pylsl.set_config_content(content)
    except (AttributeError, NotImplementedError):  # liblsl < 1.17.7 reads files only: hand it one
        handle, path = tempfile.mkstemp(prefix="streamstage-lsl-", suffix=".cfg")
        with os.fdopen(handle, "w") as file:
            file.write(content)
        os.environ["LSLAPICFG"] = path
    _applied = content
    return summary
