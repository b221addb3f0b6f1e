"""The four kinds of hook and how each delivers one event within its timeout.

A delivery never raises: it returns an :class:`Outcome` (ok, failed or timed_out) so a broken hook is
reported, not fatal. Building a hook (:func:`build_hook`) is where configuration mistakes surface, as a
:class:`~streamstage.errors.ConfigError` at start-up rather than at 07:00.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import importlib.metadata
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from streamstage import __version__
from streamstage.errors import ConfigError
from streamstage.hooks.events import Event

HOOK_KINDS: tuple[str, ...] = ("command", "callable", "entry_point", "url")
ENTRY_POINT_GROUP = "streamstage.hooks"
_TAIL_CHARS = 300


@dataclass(frozen=True)
class HookSpec:
    """One configured hook. ``target`` is the argument list for ``command`` (a string is split like a shell
    would, but never run by one), ``module:function`` for ``callable``, the entry-point name for
    ``entry_point`` and the address for ``url``."""

    name: str
    events: tuple[str, ...]
    kind: str
    target: str | tuple[str, ...]
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5


class Outcome(NamedTuple):
    status: str  # ok | failed | timed_out
    detail: str
    attempts: int = 1


class Hook:
    """A hook ready to run; subclasses implement :meth:`deliver`."""

    def __init__(self, spec: HookSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def wants(self, event: Event) -> bool:
        return event.name in self.spec.events

    def deliver(self, event: Event) -> Outcome:
        raise NotImplementedError

    def stop(self) -> None:
        """Streamstage is exiting: end whatever this hook still runs, if it can (a thread cannot be)."""


class CommandHook(Hook):
    """Runs an argument list (no shell) with the event in ``STREAMSTAGE_*`` variables and as JSON on stdin.

    The command runs in its own process group, so a timeout also ends whatever it started (a sound player),
    and so does :meth:`stop` when streamstage exits: no hook outlives the night as an orphan.
    """

    def __init__(self, spec: HookSpec) -> None:
        super().__init__(spec)
        self._running: subprocess.Popen | None = None

    def deliver(self, event: Event) -> Outcome:
        argv = list(self.spec.target)
        env = {**os.environ, **event.env()}
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        try:
            with subprocess.Popen(argv, env=env, start_new_session=True, **pipes) as process:
                self._running = process
                try:
                    _, stderr = process.communicate(event.to_json().encode(), timeout=self.spec.timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(process)
                    return Outcome("timed_out", f"{argv[0]} still running after {self.spec.timeout_s:g} s")
                finally:
                    self._running = None
        except OSError as error:
            return Outcome("failed", f"cannot run {argv[0]}: {error}")
        if process.returncode != 0:
            message = stderr.decode(errors="replace").strip()[-_TAIL_CHARS:]
            return Outcome("failed", f"{argv[0]} exited with {process.returncode}: {message}")
        return Outcome("ok", f"{argv[0]} exited with 0")

    def stop(self) -> None:
        process = self._running
        if process is not None:
            _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class CallableHook(Hook):
    """Calls ``function(event)`` in a helper thread so a hang can be timed out.

    A Python thread cannot be killed: a call that overruns is reported as timed out and left to finish, and
    the hook is skipped while it is still running, so a stuck hook holds at most one thread.
    """

    def __init__(self, spec: HookSpec, function: Callable[[Event], Any]) -> None:
        super().__init__(spec)
        self.function = function
        self._running: threading.Thread | None = None

    def deliver(self, event: Event) -> Outcome:
        if self._running is not None and self._running.is_alive():
            return Outcome("failed", "skipped: the previous call has not returned yet", attempts=0)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                self.function(event)
            except Exception as error:
                errors.append(error)

        thread = threading.Thread(target=call, name=f"hook-{self.name}", daemon=True)
        self._running = thread
        thread.start()
        thread.join(self.spec.timeout_s)
        if thread.is_alive():
            return Outcome("timed_out", f"still running after {self.spec.timeout_s:g} s")
        if errors:
            return Outcome("failed", f"raised {errors[0]!r}"[:_TAIL_CHARS])
        return Outcome("ok", "returned")


class HttpHook(Hook):
    """POSTs the event as JSON; retries connection errors, timeouts and 5xx/429 with exponential backoff,
    all within the hook's timeout. Other 4xx answers are not retried: the request itself is wrong."""

    def deliver(self, event: Event) -> Outcome:
        deadline = time.monotonic() + self.spec.timeout_s
        body = event.to_json().encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"streamstage/{__version__}"}
        status, last = "failed", ""
        for attempt in range(1, self.spec.retries + 2):
            request = urllib.request.Request(str(self.spec.target), data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=max(deadline - time.monotonic(), 0.01)) as reply:
                    return Outcome("ok", f"HTTP {reply.status}", attempt)
            except urllib.error.HTTPError as error:
                error.close()
                status, last = "failed", f"HTTP {error.code} {error.reason}"
                if error.code < 500 and error.code != 429:
                    return Outcome("failed", last, attempt)
            except (OSError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                status = "timed_out" if isinstance(reason, TimeoutError) else "failed"
                last = str(reason)
            pause_s = self.spec.backoff_s * 2 ** (attempt - 1)
            if attempt > self.spec.retries or time.monotonic() + pause_s >= deadline:
                break
            time.sleep(pause_s)
        return Outcome(status, f"gave up after {attempt} attempt(s): {last}", attempt)


def build_hook(spec: HookSpec) -> Hook:
    """A runnable hook, checked now: the command exists, the callable imports, the entry point loads."""
    if spec.kind == "command":
        return CommandHook(_with_program(spec))
    if spec.kind == "callable":
        return CallableHook(spec, _import_callable(spec))
    if spec.kind == "entry_point":
        return CallableHook(spec, _load_entry_point(spec))
    if spec.kind == "url":
        if not str(spec.target).startswith(("http://", "https://")):
            raise ConfigError(f"hook {spec.name!r}: url {spec.target!r} must start with http:// or https://.")
        return HttpHook(spec)
    raise ConfigError(f"hook {spec.name!r}: unknown kind {spec.kind!r}; use one of {', '.join(HOOK_KINDS)}.")


def _with_program(spec: HookSpec) -> HookSpec:
    program, *args = shlex.split(spec.target) if isinstance(spec.target, str) else spec.target
    found = shutil.which(program)
    if found is None:
        raise ConfigError(
            f"hook {spec.name!r}: command {program!r} is not an executable file or on PATH; "
            "give its full path or make it executable (chmod +x)."
        )
    return replace(spec, target=(found, *args))


def _import_callable(spec: HookSpec) -> Callable[[Event], Any]:
    module_name, _, attribute = str(spec.target).partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"hook {spec.name!r}: callable {spec.target!r} must look like package.module:function."
        )
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"hook {spec.name!r}: cannot load {spec.target!r} ({error}); check the name."
        ) from error
    return _checked_callable(spec, found)


def _load_entry_point(spec: HookSpec) -> Callable[[Event], Any]:
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    matches = [entry for entry in found if entry.name == spec.target]
    if not matches:
        known = ", ".join(sorted(entry.name for entry in found)) or "none installed"
        raise ConfigError(
            f"hook {spec.name!r}: no entry point {spec.target!r} in group {ENTRY_POINT_GROUP!r} "
            f"(known: {known}); install the package that provides it."
        )
    try:
        loaded = matches[0].load()
    except Exception as error:
        raise ConfigError(
            f"hook {spec.name!r}: entry point {spec.target!r} fails to load: {error!r}."
        ) from error
    return _checked_callable(spec, loaded)


def _checked_callable(spec: HookSpec, found: Any) -> Callable[[Event], Any]:
    if not callable(found):
        raise ConfigError(f"hook {spec.name!r}: {spec.target!r} is not callable; point it at a function.")
    return found
