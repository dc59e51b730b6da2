from __future__ import annotations

import urllib.error
import urllib.request

from daemon.metrics import Metrics
from daemon.web import WebServer


async def fetch(port: int, path: str) -> tuple[int, bytes]:
    import asyncio

    def get() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return await asyncio.to_thread(get)


async def test_health_reports_reason_and_metrics_refresh_gauges() -> None:
    problem: list[str] = []
    metrics = Metrics()
    scraped: list[int] = []
    server = WebServer(
        "127.0.0.1:0",
        metrics,
        lambda: problem[0] if problem else None,
        lambda: scraped.append(1) or metrics.observe_state({"queued": 3}, 2),
    )
    await server.start()
    try:
        assert await fetch(server.port, "/healthz") == (200, b"ok\n")
        problem.append("database is not writable: disk I/O error")
        assert await fetch(server.port, "/healthz") == (
            503,
            b"database is not writable: disk I/O error\n",
        )
        status, body = await fetch(server.port, "/metrics")
        assert status == 200 and scraped
        assert b'vedette_alerts{status="queued"} 3.0' in body
        assert b"vedette_feeds_failing 2.0" in body
        assert (await fetch(server.port, "/nope"))[0] == 404
    finally:
        await server.stop()
