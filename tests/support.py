"""Test helpers: real loopback servers, feed builders, and waiting on conditions (never sleep)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape


def wait_until(predicate: Callable[[], object], *, timeout_s: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until it is truthy or the deadline passes (then fail the test)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        threading.Event().wait(0.02)  # a short, bounded pause between checks
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")


def start_daemon(
    config: Path,
    *,
    stdout: IO[str] | int,
    stderr: IO[str],
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`vedette run` as a real process, JSON log lines on `stderr`, output unbuffered."""
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(config), *options,
         "--log-format", "json", "run"],
        stdout=stdout,
        stderr=stderr,
        env=os.environ | dict(env or {}) | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def log_events(log: Path, name: str, **fields: str) -> list[dict[str, Any]]:
    """The JSON log lines of event `name` (with these field values) a daemon has written."""
    entries = map(json.loads, log.read_text(encoding="utf-8").splitlines())
    return [
        e
        for e in entries
        if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
    ]


@dataclass
class Item:
    title: str
    link: str = ""
    description: str = ""
    guid: str | None = None
    published: datetime | None = None


def rss(items: Sequence[Item], *, title: str = "Test feed") -> str:
    parts = []
    for item in items:
        guid = f"<guid>{escape(item.guid)}</guid>" if item.guid else ""
        date = f"<pubDate>{format_datetime(item.published)}</pubDate>" if item.published else ""
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
            f"<description>{escape(item.description)}</description>{guid}{date}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link><description>t</description>"
        + "".join(parts)
        + "</channel></rss>"
    )


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records JSON bodies; `status` makes it fail."""

    url: str = ""
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if receiver.status == 200:
                with receiver.lock:
                    receiver.bodies.append(json.loads(body or b"{}"))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


BAKHMUT_WATCHLIST = """\
title: Bakhmut
terms:
  places:
    Bakhmut: [Artemivsk, Бахмут]
    Soledar: [Соледар]
  units:
    Wagner Group: [Wagner, ЧВК Вагнер]
match: places or units
exclude: [Richard Wagner, opera]
"""


def write_config(
    folder: Path,
    *,
    feeds: Sequence[tuple[str, str]] = (),
    extra: str = "",
    watchlists: dict[str, str] | None = None,
) -> Path:
    """A config file with its own database and watchlist folder under `folder`."""
    lists = folder / "watchlists"
    lists.mkdir(exist_ok=True)
    for name, text in (
        watchlists if watchlists is not None else {"bakhmut": BAKHMUT_WATCHLIST}
    ).items():
        (lists / f"{name}.yaml").write_text(text, encoding="utf-8")
    feed_lines = "".join(f"  - {{name: {n}, url: '{u}', tags: [test]}}\n" for n, u in feeds)
    config = folder / "vedette.yaml"
    config.write_text(
        "database: data/vedette.db\nwatchlists: watchlists\nalert_backlog: all\nhttp: null\n"
        + extra
        + ("feeds:\n" + feed_lines if feeds else ""),
        encoding="utf-8",
    )
    return config


RawHandler = Callable[[socket.socket, threading.Event], None]


class RawHTTPServer:
    """A loopback TCP server for peers that misbehave below HTTP: it reads the request head and
    hands the connection to the handler registered for the request path (else to `default`,
    else 404).

    Handlers that hang wait on `stop`, which `close()` sets, so nothing ever sleeps. Each request
    path is counted in `hits`.
    """

    def __init__(self, default: RawHandler | None = None) -> None:
        self.stop = threading.Event()
        self.routes: dict[str, RawHandler] = {}
        self.default = default
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn, contextlib.suppress(OSError):  # clients hang up first, by design
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            with self._lock:
                self.hits[path] = self.hits.get(path, 0) + 1
            handler = self.routes.get(path, self.default)
            if handler is None:
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            handler(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self._acceptor.join(timeout=2)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2)


def respond(
    body: bytes, *, status: str = "200 OK", headers: Sequence[tuple[str, str]] = ()
) -> RawHandler:
    """A raw handler sending one complete response and closing."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        conn.sendall(head.encode("latin-1") + b"\r\n" + body)

    return handler


# Raw handlers for fetches that never finish: each waits on `stop`, never on a clock.


def hang_before_headers(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def hang_after_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<rss version='2.0'>")
    stop.wait()


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """A byte every 50 ms: every read succeeds, so only the overall deadline stops it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.05):
        conn.sendall(b" ")
