"""A loopback stand-in for PhysioNet's Sleep-EDF folder: the files it lists and the HTTP servers that
serve them (with Range, breaking once, ignoring Range), for the tests of the downloader and of
``streamstage datasets``."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import edfio
import numpy as np

# subject 0 both nights, subject 13 night 1 only (as in Sleep-EDF), subject 21 night 1; scorer letters vary
REMOTE_FILES = (
    "SC4001E0-PSG.edf",
    "SC4001EC-Hypnogram.edf",
    "SC4002E0-PSG.edf",
    "SC4002EC-Hypnogram.edf",
    "SC4131E0-PSG.edf",
    "SC4131EC-Hypnogram.edf",
    "SC4211E0-PSG.edf",
    "SC4211EJ-Hypnogram.edf",
)


def write_psg(path: Path, seconds: int = 60) -> None:
    signal = edfio.EdfSignal(
        np.sin(np.arange(100 * seconds) / 7.0) * 50,
        100.0,
        label="EEG Fpz-Cz",
        physical_dimension="uV",
        physical_range=(-200, 200),
    )
    edfio.Edf([signal]).write(path)


def write_hypnogram(path: Path, seconds: int = 60) -> None:
    edfio.Edf([], annotations=[edfio.EdfAnnotation(0, seconds, "Sleep stage W")]).write(path)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder as PhysioNet does, ``Range: bytes=N-`` included (SimpleHTTPRequestHandler ignores
    Range), and keeps the Range header of every request it saw."""

    ranges: list[str | None]  # set per server by ``serve``

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.ranges.append(self.headers.get("Range"))
        path = Path(self.translate_path(self.path))
        if not path.is_file() or self.headers.get("Range") is None:
            super().do_GET()
            return
        payload = path.read_bytes()
        start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        if start >= len(payload):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(payload)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        self.send_header("Content-Length", str(len(payload) - start))
        self.end_headers()
        self.wfile.write(payload[start:])


class BreaksOnceHandler(QuietHandler):
    """The first transfer of each PSG file announces its whole length, sends a third and drops the
    connection, like a network that fails mid-file; later requests are served whole."""

    broken: set[str]  # set per server by ``serve``

    def do_GET(self) -> None:
        if not self.path.endswith("PSG.edf") or self.path in self.broken:
            super().do_GET()
            return
        self.broken.add(self.path)
        self.ranges.append(self.headers.get("Range"))
        payload = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 3])
        self.close_connection = True


class NoRangeHandler(QuietHandler):
    """A server that ignores Range (answers 200 with the whole file), as plain static servers do."""

    def do_GET(self) -> None:
        self.ranges.append(self.headers.get("Range"))
        http.server.SimpleHTTPRequestHandler.do_GET(self)


@contextmanager
def serve(folder: Path, handler: type[QuietHandler], ranges: list[str | None] | None = None) -> Iterator[str]:
    """A loopback HTTP server listing ``folder`` the way PhysioNet lists its files; ``ranges`` collects
    the Range header of each request (None where there was none)."""
    handler = type(
        handler.__name__, (handler,), {"ranges": [] if ranges is None else ranges, "broken": set()}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sleep-cassette/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def physionet_folder(root: Path) -> Path:
    """``root/physionet/sleep-cassette`` holding :data:`REMOTE_FILES` (and a file that is no recording)."""
    folder = root / "physionet" / "sleep-cassette"
    folder.mkdir(parents=True)
    for name in REMOTE_FILES:
        (write_psg if name.endswith("PSG.edf") else write_hypnogram)(folder / name)
    (folder / "index.txt").write_text("not a recording")
    return folder
