"""A tiny HTTP server for `/healthz` and `/metrics` on the daemon's own event loop.

Two read-only endpoints do not justify a web framework; asyncio's streams are enough.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from daemon.metrics import Metrics

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], str | None]  # None when healthy, else the reason
BeforeScrape = Callable[[], None]


class WebServer:
    def __init__(
        self,
        listen: str,
        metrics: Metrics,
        health: HealthCheck,
        before_scrape: BeforeScrape | None = None,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.metrics = metrics
        self.health = health
        self.before_scrape = before_scrape
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets: list[Any] = list(self._server.sockets or [])
        if sockets:
            self.port = sockets[0].getsockname()[1]
        logger.info("http_listening address=%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            status, content_type, body = self._respond(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass  # a broken or slow client is its own problem; nothing to report
        finally:
            writer.close()

    def _respond(self, path: str) -> tuple[str, str, bytes]:
        if path == "/healthz":
            problem = self.health()
            if problem is None:
                return "200 OK", "text/plain; charset=utf-8", b"ok\n"
            return "503 Service Unavailable", "text/plain; charset=utf-8", f"{problem}\n".encode()
        if path == "/metrics":
            if self.before_scrape is not None:
                self.before_scrape()
            return "200 OK", self.metrics.content_type, self.metrics.render()
        return (
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found: try /healthz or /metrics\n",
        )
