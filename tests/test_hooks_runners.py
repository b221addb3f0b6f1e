"""Each kind of hook receives the right payload: command, Python callable, entry point, HTTP POST."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streamstage.errors import ConfigError
from streamstage.hooks import Event, HookSpec, build_hook
from streamstage.records import StagedEpoch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "hooks"
EPOCH = StagedEpoch(41, 1230.0, 1, (0.1, 0.7, 0.15, 0.0, 0.05), "good")
EVENT = Event.from_epoch("alarm", EPOCH, None, kind="smart")
received: list[Event] = []


def record(event: Event) -> None:
    """The Python hook the tests point at (``module:function``)."""
    received.append(event)


def explode(event: Event) -> None:
    raise RuntimeError(f"lamp unreachable for {event.name}")


release = threading.Event()


def hang(event: Event) -> None:
    release.wait(30)


def spec(kind: str, target: str | tuple[str, ...], **kwargs: Any) -> HookSpec:
    return HookSpec(name=f"test-{kind}", events=("alarm",), kind=kind, target=target, **kwargs)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def test_command_gets_the_event_in_environment_and_stdin(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    hook_script = script(
        tmp_path,
        "hook.py",
        "import json, os, sys\n"
        "event = json.load(sys.stdin)\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('STREAMSTAGE_')}\n"
        f"open({str(seen)!r}, 'w').write(json.dumps({{'stdin': event, 'env': env, 'argv': sys.argv[1:]}}))\n",
    )
    outcome = build_hook(spec("command", (str(hook_script), "--flag", "two words"))).deliver(EVENT)
    assert outcome.status == "ok", outcome
    got = json.loads(seen.read_text())
    assert got["argv"] == ["--flag", "two words"]  # an argument list, no shell splitting
    assert got["stdin"] == json.loads(EVENT.to_json())
    assert got["stdin"]["extra"] == {"kind": "smart"}
    env = got["env"]
    assert (env["STREAMSTAGE_EVENT"], env["STREAMSTAGE_STAGE"], env["STREAMSTAGE_EPOCH"]) == (
        "alarm",
        "N1",
        "41",
    )
    assert (env["STREAMSTAGE_KIND"], env["STREAMSTAGE_TIME_S"]) == ("smart", "1230.0")


def test_failing_command_reports_its_exit_code_and_stderr(tmp_path: Path) -> None:
    hook_script = script(tmp_path, "fail.py", "import sys\nsys.exit(sys.argv[1])\n")
    outcome = build_hook(spec("command", f"{hook_script} 'no speaker found'")).deliver(EVENT)
    assert outcome.status == "failed"
    assert "exited with 1" in outcome.detail and "no speaker found" in outcome.detail


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_command_timeout_ends_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    hook_script = script(
        tmp_path,
        "slow.py",
        "import subprocess, sys\n"
        "child = subprocess.Popen(['sleep', '30'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "child.wait()\n",
    )
    outcome = build_hook(spec("command", (str(hook_script),), timeout_s=0.5)).deliver(EVENT)
    assert outcome.status == "timed_out"
    child = int(pid_file.read_text())
    ended = threading.Event()
    for _ in range(100):
        if _dead(child):
            ended.set()
            break
        ended.wait(0.05)
    assert ended.is_set(), "the command's child survived the timeout"


def test_missing_command_is_a_config_error_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"hook 'test-command'.*not an executable file or on PATH"):
        build_hook(spec("command", ("no-such-player-here", "--loud")))


def test_callable_gets_the_event_object() -> None:
    received.clear()
    outcome = build_hook(spec("callable", f"{__name__}:record")).deliver(EVENT)
    assert outcome.status == "ok"
    assert received == [EVENT]


def test_callable_failures_and_hangs_are_reported() -> None:
    failing = build_hook(spec("callable", f"{__name__}:explode")).deliver(EVENT)
    assert failing.status == "failed" and "lamp unreachable for alarm" in failing.detail
    release.clear()
    hanging = build_hook(spec("callable", f"{__name__}:hang", timeout_s=0.2))
    assert hanging.deliver(EVENT).status == "timed_out"
    assert "previous call has not returned" in hanging.deliver(EVENT).detail  # never two stuck threads
    release.set()


@pytest.mark.parametrize(
    "target", ["nomodule_xyz:func", f"{__name__}:nothing_here", "no-colon", f"{__name__}:EVENT"]
)
def test_bad_callables_are_config_errors(target: str) -> None:
    with pytest.raises(ConfigError, match="hook 'test-callable'"):
        build_hook(spec("callable", target))


def test_entry_point_hook_is_found_in_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        asked.append(group)
        return [importlib.metadata.EntryPoint("lights", f"{__name__}:record", group)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    received.clear()
    assert build_hook(spec("entry_point", "lights")).deliver(EVENT).status == "ok"
    assert received == [EVENT] and asked == ["streamstage.hooks"]
    with pytest.raises(ConfigError, match=r"no entry point 'hue'.*known: lights"):
        build_hook(spec("entry_point", "hue"))


class Server(ThreadingHTTPServer):
    """Answers POSTs with the next of ``statuses`` (then 200) and keeps what it received in ``requests``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.requests: list[tuple[str, str, object]] = []
        self.statuses: list[int] = []


class _Recorder(BaseHTTPRequestHandler):
    server: Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, self.headers["Content-Type"], json.loads(body)))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url(server: Server, path: str = "/api/webhook/bedroom") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_http_posts_json_and_retries_after_a_500(server: Server) -> None:
    server.statuses += [500]
    outcome = build_hook(spec("url", url(server), backoff_s=0.01)).deliver(EVENT)
    assert (outcome.status, outcome.attempts, outcome.detail) == ("ok", 2, "HTTP 200")
    first, second = server.requests
    assert first == second == ("/api/webhook/bedroom", "application/json", json.loads(EVENT.to_json()))


def test_http_does_not_retry_a_client_error(server: Server) -> None:
    server.statuses += [404]
    outcome = build_hook(spec("url", url(server), backoff_s=0.01)).deliver(EVENT)
    assert (outcome.status, outcome.attempts) == ("failed", 1) and "404" in outcome.detail


def test_http_gives_up_after_its_retries(server: Server) -> None:
    server.statuses += [503, 503, 503, 503]
    outcome = build_hook(spec("url", url(server), retries=2, backoff_s=0.01)).deliver(EVENT)
    assert (outcome.status, outcome.attempts) == ("failed", 3)
    assert "gave up after 3 attempt(s): HTTP 503" in outcome.detail
    assert len(server.requests) == 3


def test_http_to_nobody_fails_cleanly() -> None:
    outcome = build_hook(spec("url", "http://127.0.0.1:9/", retries=1, backoff_s=0.01, timeout_s=2)).deliver(
        EVENT
    )
    assert outcome.status in ("failed", "timed_out") and outcome.attempts >= 1


def test_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="must start with http"):
        build_hook(spec("url", "ftp://example.org/x"))


def test_example_log_event_appends_one_json_line(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    hook = build_hook(spec("command", (str(EXAMPLES / "log_event.py"), str(log))))
    assert hook.deliver(EVENT).status == "ok" and hook.deliver(EVENT).status == "ok"
    lines = log.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(EVENT.to_json())] * 2


def test_example_home_assistant_webhook_posts_the_essentials(server: Server) -> None:
    hook = build_hook(spec("command", (str(EXAMPLES / "home_assistant_webhook.py"), url(server))))
    assert hook.deliver(EVENT).status == "ok"
    ((path, _, payload),) = server.requests
    assert path == "/api/webhook/bedroom"
    assert payload == {"event": "alarm", "stage": "N1", "kind": "smart", "time": None}


def test_example_play_sound_falls_back_to_the_bell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMSTAGE_SOUND", str(tmp_path / "no-such-sound.oga"))
    monkeypatch.setenv("STREAMSTAGE_RINGS", "1")
    outcome = build_hook(spec("command", (str(EXAMPLES / "play_sound.sh"),))).deliver(EVENT)
    assert outcome.status == "ok", outcome
    assert os.access(EXAMPLES / "play_sound.sh", os.X_OK)
