"""What the bench's two loopback servers (`farm.py`, `sink.py`) share: a threaded HTTP/1.1 server
bound to 127.0.0.1 only, a bounded lifetime, and the ways to stop it.

A server started by `run.py` stops by itself in three ways, whichever comes first: its
`--max-lifetime` runs out, its standard input closes (the parent died or let go), or someone
calls `/shutdown`. The first line it prints is a JSON banner with its URL, so the parent never
has to guess the port.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long an idle keep-alive connection may sit before the server closes it; the server's
# threads are daemon threads, so none of them can keep the process alive past its lifetime.
IDLE_CONNECTION_S = 30.0


def check_loopback(host: str) -> str:
    """Refuse anything but a loopback address: the bench must never serve the network."""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing to listen on {host}: use a loopback address such as 127.0.0.1")
    return host


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # 16+ keep-alive clients connect at once on a cold poll

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its keep-alive connection is normal; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) handler with quiet logs and a JSON helper."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_S

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, payload: object, status: int = 200) -> None:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_until_stopped(
    server: LoopbackServer,
    *,
    banner: dict[str, Any],
    max_lifetime_s: float,
    exit_on_stdin_eof: bool,
    stop: threading.Event,
) -> None:
    """Print the banner, serve in a thread, and return when any stop condition is met."""
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    worker.daemon = True
    worker.start()
    if exit_on_stdin_eof:
        threading.Thread(target=_stop_on_stdin_eof, args=(stop,), daemon=True).start()
    print(json.dumps(banner), flush=True)
    deadline = time.monotonic() + max_lifetime_s
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


def _stop_on_stdin_eof(stop: threading.Event) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()
