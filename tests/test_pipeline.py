"""End to end through the real stages: feeds from a loopback HTTP server, a SQLite file in
tmp_path, alerts to a loopback webhook through Apprise's json:// target."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config import load_settings
from daemon.service import Runtime, poll_once
from support import Item, Receiver, rss, webhook_receiver, write_config

RECENT = datetime.now(UTC) - timedelta(hours=1)
OLD = datetime.now(UTC) - timedelta(days=30)

ITEMS = [
    Item(
        "Wagner claims capture of Soledar",
        "https://news.example/1",
        "Fighting in Soledar",
        "1",
        RECENT,
    ),
    Item("Бої за Бахмут тривають", "https://news.example/2", "ЗСУ тримають оборону", "2", RECENT),
    Item(
        "Richard Wagner opera opens in Kyiv",
        "https://news.example/3",
        "An opera review",
        "3",
        RECENT,
    ),
    Item("Energy grid repairs in Kyiv", "https://news.example/4", "Unrelated", "4", RECENT),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def serve_with_etag(
    httpserver: HTTPServer, path: str, body: str, etag: str = '"v1"'
) -> list[Request]:
    """Serve `body` with an ETag and answer 304 to a matching If-None-Match."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type="application/rss+xml", headers={"ETag": etag})

    httpserver.expect_request(path).respond_with_handler(handler)
    return seen


def open_runtime(config: Path) -> Runtime:
    return Runtime.open(load_settings(config, environ={}))


async def test_poll_store_match_alert_then_conditional_get(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    seen = serve_with_etag(httpserver, "/feed", rss(ITEMS))
    config = write_config(
        tmp_path,
        feeds=[("wire", httpserver.url_for("/feed"))],
        extra=f"apprise_urls: ['json://{receiver.url}/hook']\n",
    )
    runtime = open_runtime(config)
    (outcome,), drained = await poll_once(runtime)
    assert (outcome.outcome, outcome.new, outcome.alerts) == ("changed", 4, 2)
    assert drained.sent == 2
    titles = sorted(body["message"].splitlines()[0] for body in receiver.received())
    assert titles == ["Wagner claims capture of Soledar", "Бої за Бахмут тривають"]
    assert all("UNCONFIRMED" in b["title"] for b in receiver.received() if "Soledar" in b["title"])
    # Second poll: the server answers 304, nothing new is stored or sent.
    (outcome,), drained = await poll_once(runtime)
    assert outcome.outcome == "not_modified" and drained.sent == 0
    assert seen[-1].headers.get("If-None-Match") == '"v1"'
    assert runtime.store.db.execute("SELECT count(*) FROM articles").fetchone()[0] == 4
    assert len(receiver.received()) == 2
    runtime.close()


async def test_repoll_without_validators_dedupes_and_updates_in_place(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    body = {"text": rss(ITEMS[:2])}
    httpserver.expect_request("/feed").respond_with_handler(
        lambda request: Response(body["text"], content_type="application/rss+xml")
    )
    runtime = open_runtime(write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))]))
    (first,), _ = await poll_once(runtime)
    (second,), _ = await poll_once(runtime)
    assert (first.new, second.new, second.updated) == (2, 0, 0)
    edited = Item(
        ITEMS[0].title, ITEMS[0].link, "Update: Ukraine says fighting goes on", "1", RECENT
    )
    body["text"] = rss([edited, ITEMS[1]])
    (third,), _drained = await poll_once(runtime)
    assert (third.new, third.updated, third.alerts) == (0, 1, 0)  # same story: no second alert
    (row,) = runtime.store.db.execute("SELECT summary FROM articles WHERE entry_id = '1'")
    assert row[0] == "Update: Ukraine says fighting goes on"
    runtime.close()


async def test_broken_feeds_beside_good_ones(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/good").respond_with_data(
        rss(ITEMS), content_type="application/rss+xml"
    )
    httpserver.expect_request("/error").respond_with_data("boom", status=500)
    httpserver.expect_request("/html").respond_with_data(
        "<html><body><p>Not a feed</p></body></html>", content_type="text/html"
    )
    feeds = [(name, httpserver.url_for(f"/{name}")) for name in ("good", "error", "html")]
    feeds.append(("refused", "http://127.0.0.1:9/feed"))
    runtime = open_runtime(write_config(tmp_path, feeds=feeds))
    outcomes, _ = await poll_once(runtime)
    by_feed = {o.feed: o for o in outcomes}
    assert by_feed["good"].new == 4
    for name in ("error", "html", "refused"):
        state = runtime.store.feed_state(name)
        assert by_feed[name].outcome == "failed" and state.status == "failing"
        assert state.last_error and state.error_count == 1
        assert state.next_poll is not None and state.next_poll > datetime.now(UTC)
    assert "500" in (runtime.store.feed_state("error").last_error or "")
    runtime.close()


async def test_watchlist_edit_is_picked_up(httpserver: HTTPServer, tmp_path: Path) -> None:
    feed = {"items": ITEMS[:1]}
    httpserver.expect_request("/feed").respond_with_handler(
        lambda request: Response(rss(feed["items"]), content_type="application/rss+xml")
    )
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    runtime = open_runtime(config)
    await poll_once(runtime)
    watchlist = tmp_path / "watchlists" / "bakhmut.yaml"
    watchlist.write_text("terms:\n  energy: [energy grid]\n", encoding="utf-8")
    feed["items"] = ITEMS
    (outcome,), _ = await poll_once(runtime)
    assert outcome.alerts == 1  # only the energy story matches the edited list
    rows = runtime.store.db.execute("SELECT payload FROM alerts ORDER BY id").fetchall()
    assert "Energy grid repairs" in rows[-1][0]
    # A broken save keeps the last good version active.
    watchlist.write_text("terms:\n  energy: [energy grid]\nmatch: energy and\n", encoding="utf-8")
    runtime.watchlists.refresh()
    assert [w.name for w in runtime.watchlists.active()] == ["bakhmut"]
    assert runtime.watchlists.errors()[0].line == 3
    runtime.close()


async def test_backlog_limits_alerts_on_first_poll(httpserver: HTTPServer, tmp_path: Path) -> None:
    items = [
        Item("Old Bakhmut story", "https://news.example/old", "", "old", OLD),
        Item("New Bakhmut story", "https://news.example/new", "", "new", RECENT),
    ]
    httpserver.expect_request("/feed").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    config.write_text(config.read_text().replace("alert_backlog: all", "alert_backlog: 24h"))
    runtime = open_runtime(config)
    (outcome,), _ = await poll_once(runtime)
    assert (outcome.new, outcome.alerts) == (2, 1)
    assert len(runtime.store.search("Old")) == 1  # stored and searchable, just not alerted
    runtime.close()


async def test_unreachable_channel_keeps_alerts_queued(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss(ITEMS), content_type="application/rss+xml"
    )
    config = write_config(
        tmp_path,
        feeds=[("wire", httpserver.url_for("/feed"))],
        extra=f"apprise_urls: ['json://{receiver.url}/hook']\n",
    )
    runtime = open_runtime(config)
    receiver.status = 503
    _, drained = await poll_once(runtime)
    assert (drained.sent, drained.failed) == (0, 2)
    queued = runtime.store.list_alerts(status="queued")
    assert len(queued) == 2 and all("503" in (a.last_error or "") for a in queued)
    receiver.status = 200
    assert runtime.store.retry_alerts() == 2
    drained = await runtime.outbox().drain()
    assert drained.sent == 2 and len(receiver.received()) == 2
    assert (await runtime.outbox().drain()).sent == 0  # sent once, never again
    runtime.close()
