"""`vedette run` as a real subprocess: hot reload of watchlists and config, SIGHUP, /healthz,
/metrics, and a clean SIGTERM exit."""

from __future__ import annotations

import json
import signal
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from support import Item, log_events, rss, start_daemon, wait_until, write_config

pytestmark = pytest.mark.slow


class RunningDaemon:
    def __init__(self, config: Path, tmp_path: Path) -> None:
        self.log = tmp_path / "daemon.log"
        self.config = config
        with self.log.open("w") as sink, (tmp_path / "console.txt").open("w") as console:
            self.process = start_daemon(config, stdout=console, stderr=sink)

    def events(self, name: str, **fields: str) -> list[dict[str, Any]]:
        return log_events(self.log, name, **fields)

    def wait_for(self, name: str, *, count: int = 1, timeout_s: float = 20, **fields: str) -> None:
        wait_until(
            lambda: len(self.events(name, **fields)) >= count,
            timeout_s=timeout_s,
            what=f"{count}× {name} {fields}",
        )

    def get(self, path: str) -> tuple[int, bytes]:
        port = self.events("http_listening")[0]["address"].rsplit(":", 1)[1]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


@pytest.fixture
def feed(httpserver: HTTPServer) -> Iterator[list[Item]]:
    items = [
        Item("Wagner claims Soledar", "https://news.example/1", "Soledar", "1"),
        Item("Бої за Бахмут тривають", "https://news.example/2", "", "2"),
    ]

    def handler(request: Request) -> Response:
        return Response(rss(items), content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    httpserver.expect_request("/second").respond_with_handler(handler)
    yield items


def alert_titles(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [json.loads(p)["title"] for (p,) in db.execute("SELECT payload FROM alerts")]


def test_running_daemon_reloads_watchlists_and_config(
    httpserver: HTTPServer, tmp_path: Path, feed: list[Item]
) -> None:
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    config.write_text(
        config.read_text()
        .replace("http: null", "http: {listen: '127.0.0.1:0'}")
        .replace("feeds:", "defaults: {interval: 1s, jitter: 0s}\nfeeds:")
    )
    daemon = RunningDaemon(config, tmp_path)
    try:
        daemon.wait_for("alert_sent", count=2)
        assert daemon.get("/healthz") == (200, b"ok\n")
        status, metrics = daemon.get("/metrics")
        assert status == 200 and b"vedette_polls_total" in metrics
        assert b'vedette_alerts{status="sent"} 2.0' in metrics
        assert b"vedette_feeds_failing 0.0" in metrics

        # Saving a watchlist takes effect without a restart.
        (tmp_path / "watchlists" / "bakhmut.yaml").write_text(
            "terms:\n  energy: [energy grid]\n", encoding="utf-8"
        )
        feed.append(Item("Energy grid repairs in Kyiv", "https://news.example/3", "", "3"))
        database = tmp_path / "data" / "vedette.db"
        wait_until(lambda: "Energy grid repairs in Kyiv" in alert_titles(database), what="new list")

        # A broken save is reported with file:line and the last good version stays.
        (tmp_path / "watchlists" / "bakhmut.yaml").write_text("terms: [\n", encoding="utf-8")
        daemon.wait_for("watchlist_invalid")
        (event,) = daemon.events("watchlist_invalid")
        assert event["file"].endswith("bakhmut.yaml") and event["line"] == "2"
        feed.append(Item("Energy grid attacked again", "https://news.example/4", "", "4"))
        wait_until(lambda: "Energy grid attacked again" in alert_titles(database), what="kept list")

        # Editing the config adds a feed; SIGHUP reloads too.
        with config.open("a") as out:
            out.write(f"  - {{name: second, url: '{httpserver.url_for('/second')}', tags: [x]}}\n")
        daemon.wait_for("poll_done", feed="second")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("config_reloaded", count=2)

        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=10) == 0
        assert daemon.events("daemon_stopped")
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
