"""A loopback webhook receiver that counts what Apprise's `json://` target POSTs to it.

    .venv/bin/python bench/sink.py                     # prints {"url": "http://127.0.0.1:PORT"}
    curl -s http://127.0.0.1:PORT/stats                # {"posts": 12, "first": ..., "last": ...}

Every POST is read in full and answered 200, or 500 while the sink is in reject mode (`/reject`,
undone by `/accept`; `--reject` starts in it), which is how `run.py` fills Vedette's outbox with
alerts that are still queued. `/stats` reports the accepted and rejected POSTs, their body bytes
and the monotonic times of the first and last accepted one; `/stats?reset=1` zeroes them.
Stops by itself like the farm: `--max-lifetime`, stdin closing, or `/shutdown`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import JsonHandler, LoopbackServer, check_loopback, serve_until_stopped


class Sink:
    def __init__(self, *, reject: bool) -> None:
        self.lock = threading.Lock()
        self.reject = reject
        self._reset()

    def _reset(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.body_bytes = 0
        self.first: float | None = None
        self.last: float | None = None

    def record(self, size: int) -> bool:
        """Count one POST; True when it is accepted."""
        with self.lock:
            self.body_bytes += size
            if self.reject:
                self.rejected += 1
                return False
            now = time.monotonic()
            self.first = now if self.first is None else self.first
            self.last = now
            self.accepted += 1
            return True

    def stats(self, *, reset: bool) -> dict[str, Any]:
        with self.lock:
            stats = {
                "accepted": self.accepted,
                "rejected": self.rejected,
                "body_bytes": self.body_bytes,
                "first": self.first,
                "last": self.last,
                "reject": self.reject,
            }
            if reset:
                self._reset()
            return stats


def make_handler(sink: Sink, stop: threading.Event) -> type[JsonHandler]:
    class SinkHandler(JsonHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            accepted = sink.record(length)
            self.send_json({"ok": accepted}, 200 if accepted else 500)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/stats":
                self.send_json(sink.stats(reset=query.get("reset") == "1"))
            elif url.path in ("/accept", "/reject"):
                with sink.lock:
                    sink.reject = url.path == "/reject"
                self.send_json({"reject": sink.reject})
            elif url.path == "/shutdown":
                self.send_json({"stopping": True})
                stop.set()
            else:
                self.send_json({"error": "not found"}, 404)

    return SinkHandler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", type=check_loopback)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reject", action="store_true", help="answer 500 until /accept")
    parser.add_argument("--max-lifetime", type=float, default=3600.0, help="seconds")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args(argv)
    stop = threading.Event()
    sink = Sink(reject=args.reject)
    server = LoopbackServer((args.host, args.port), make_handler(sink, stop))
    serve_until_stopped(
        server,
        banner={"url": f"http://{args.host}:{server.server_address[1]}"},
        max_lifetime_s=args.max_lifetime,
        exit_on_stdin_eof=args.exit_on_stdin_eof,
        stop=stop,
    )


if __name__ == "__main__":
    main()
