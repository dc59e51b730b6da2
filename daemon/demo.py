"""`vedette demo`: an offline tour. Serves the bundled sample feeds on 127.0.0.1, polls them
twice (the second poll shows conditional GET at work), and prints the alerts to the console."""

from __future__ import annotations

import asyncio
import functools
import http.server
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from daemon.config import load_settings
from daemon.service import Runtime, poll_once

DEMO_DIR = Path(__file__).parent / "data" / "demo"
DEMO_FEEDS = {
    "demo-en-wire.xml": ("wire-en", ["en"]),
    "demo-uk.xml": ("novyny-uk", ["uk"]),
    "demo-ru.xml": ("vesti-ru", ["ru"]),
    "demo-atom.xml": ("analysis-atom", ["en"]),
}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo prints its own summary


@contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """A static file server on 127.0.0.1 (Last-Modified and 304s included)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(out: TextIO) -> int:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="vedette-demo-") as tmp,
        serve_directory(DEMO_DIR) as base,
    ):
        feeds = "\n".join(
            f"  - {{name: {name}, url: '{base}/{file}', tags: {tags}}}"
            for file, (name, tags) in DEMO_FEEDS.items()
        )
        config = Path(tmp) / "vedette.yaml"
        config.write_text(
            f"database: {tmp}/demo.db\nwatchlists: {DEMO_DIR / 'watchlists'}\n"
            f"alert_backlog: all\nhttp: null\nfeeds:\n{feeds}\n",
            encoding="utf-8",
        )
        runtime = Runtime.open(load_settings(config, environ={}), console=out)
        try:
            out.write(f"Vedette demo: {len(DEMO_FEEDS)} sample feeds served on {base}\n")
            first, drained = asyncio.run(poll_once(runtime))
            second, _ = asyncio.run(poll_once(runtime))
            matched = runtime.store.db.execute("SELECT count(*) FROM matches").fetchone()[0]
        finally:
            runtime.close()
    articles = sum(o.new for o in first)
    unchanged = sum(o.outcome == "not_modified" for o in second)
    out.write(
        f"{'─' * 72}\nfirst poll: {articles} articles stored, {matched} matches, "
        f"{drained.sent} alerts printed above\n"
        f"second poll: {unchanged} of {len(second)} feeds answered 304 Not Modified; "
        f"{sum(o.new for o in second)} new articles\n"
        f"done in {time.monotonic() - started:.1f} s\n"
    )
    failed = [o for o in first if o.outcome == "failed"]
    return 1 if failed or drained.sent == 0 else 0
