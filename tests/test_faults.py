"""Faults at the source, end to end: every misbehaving feed at once through one `poll_once`.

Each fault ends as stored articles or as a failing feed whose `last_error` says what went wrong;
none stops the others; the backoff is bounded (at most 12 h), grows with the error count and
honours Retry-After; and once the fault clears the feed recovers (status ok, error_count 0).
Well-behaved HTTP comes from pytest-httpserver, misbehaving peers from raw sockets
(`support.RawHTTPServer`). Hanging handlers wait on an Event that teardown sets; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.config import Settings, load_settings
from daemon.fetch import Fetcher
from daemon.models import FetchResult
from daemon.parse import parse_feed
from daemon.pipeline import MAX_BACKOFF_S, Pipeline, PollOutcome, backoff_s
from daemon.service import Runtime, poll_once
from daemon.store import Store
from daemon.watchlists import WatchlistSet
from support import (
    Item,
    RawHandler,
    RawHTTPServer,
    hang_after_headers,
    hang_before_headers,
    respond,
    rss,
    trickle,
    write_config,
)

RECENT = datetime.now(UTC) - timedelta(hours=1)
TIMEOUT_S = 1.0
INTERVAL_S = 600.0
GOOD = [
    Item("Бої за Бахмут тривають", "https://news.example/good/1", "Оборона", "good-1", RECENT),
    Item("Energy grid repairs", "https://news.example/good/2", "Kyiv", "good-2", RECENT),
]
FEED_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def good_body() -> bytes:
    return rss(GOOD).encode()


def cyrillic_cp1251(declared: bool) -> bytes:
    prolog = '<?xml version="1.0" encoding="windows-1251"?>' if declared else ""
    text = (
        f'{prolog}<rss version="2.0"><channel><title>Новини</title><item><title>Бахмут під '
        "обстрілом</title><link>https://news.example/cp/1</link><guid>cp-1</guid></item>"
        "</channel></rss>"
    )
    return text.encode("cp1251")


# --- raw-socket faults --------------------------------------------------------------------------


def close_mid_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<rss version='2.0'><chan")


def not_http(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def endless_body(conn: socket.socket, stop: threading.Event) -> None:
    """A body without Content-Length that never ends: the cap must stop it while streaming."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n\r\n"
    )
    chunk = b"<item><title>spam</title></item>" * 2048
    while not stop.is_set():
        conn.sendall(chunk)


def gzip_bomb_handler(bomb: bytes) -> RawHandler:
    return respond(bomb, headers=[("Content-Encoding", "gzip"), ("Content-Type", "text/xml")])


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """100 MB of zeros inside about 100 KB of gzip."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1_000_000)
    return b"".join([*(compressor.compress(zeros) for _ in range(100)), compressor.flush()])


@pytest.fixture
def raw() -> Iterator[RawHTTPServer]:
    server = RawHTTPServer()
    yield server
    server.close()


# --- the farm -----------------------------------------------------------------------------------


@dataclass
class Expect:
    """What one fault must end as: stored articles (`articles`) or a failing feed (`error`)."""

    error: str | None = None  # a fragment of last_error for a failing feed
    articles: int | None = None  # articles stored after the first poll
    warning: str | None = None  # a fragment of last_error for a usable but odd feed
    retry_after_s: float | None = None  # next_poll must honour this
    first_title: str | None = None


@dataclass
class Farm:
    """Every fault on one of two loopback servers; `heal()` makes each path serve a good feed."""

    http: HTTPServer
    raw: RawHTTPServer
    healthy: set[str] = field(default_factory=set)  # faults cleared for now
    feeds: list[tuple[str, str]] = field(default_factory=list)
    expect: dict[str, Expect] = field(default_factory=dict)

    def add_http(
        self,
        name: str,
        handler: Callable[[Request], Response],
        expect: Expect,
        *,
        heals: bool | None = None,
    ) -> None:
        """Serve `handler` at /name; once healed, a good feed instead (if `expect` is a fault)."""
        path = f"/{name}"
        heals = expect.error is not None if heals is None else heals

        def serve(request: Request) -> Response:
            if heals and name in self.healthy:
                return Response(good_body(), headers=FEED_HEADERS)
            return handler(request)

        self.http.expect_request(path).respond_with_handler(serve)
        self.feeds.append((name, self.http.url_for(path)))
        self.expect[name] = expect

    def add_raw(self, name: str, handler: RawHandler, expect: Expect) -> None:
        path = f"/{name}"
        healthy = respond(good_body(), headers=list(FEED_HEADERS.items()))

        def serve(conn: socket.socket, stop: threading.Event) -> None:
            (healthy if name in self.healthy else handler)(conn, stop)

        self.raw.routes[path] = serve
        self.feeds.append((name, self.raw.url(path)))
        self.expect[name] = expect

    def redirect(self, path: str, status: int, to: str) -> None:
        self.http.expect_request(path).respond_with_data(
            "", status=status, headers={"Location": to}
        )

    def heal(self, names: set[str] | None = None) -> None:
        """Clear the faults of `names` (all when None); the others come back."""
        self.healthy = set(self.expect) if names is None else names


def data(body: bytes | str, status: int = 200, **headers: str) -> Callable[[Request], Response]:
    merged = FEED_HEADERS | {k.replace("_", "-"): v for k, v in headers.items()}
    return lambda request: Response(body, status=status, headers=merged)


def build_farm(httpserver: HTTPServer, raw: RawHTTPServer, bomb: bytes, retry_date: str) -> Farm:
    farm = Farm(httpserver, raw)
    timed_out = f"timed out after {TIMEOUT_S:g}s"
    # The network misbehaves.
    farm.add_raw("hang-before-headers", hang_before_headers, Expect(error=timed_out))
    farm.add_raw("hang-after-headers", hang_after_headers, Expect(error=timed_out))
    farm.add_raw("trickle", trickle, Expect(error=timed_out))
    farm.add_raw("close-mid-body", close_mid_body, Expect(error="127.0.0.1 broke the HTTP"))
    farm.add_raw("not-http", not_http, Expect(error="127.0.0.1 broke the HTTP exchange"))
    farm.add_raw("gzip-bomb", gzip_bomb_handler(bomb), Expect(error="body exceeds max_bytes 5MB"))
    farm.add_raw("endless-body", endless_body, Expect(error="body exceeds max_bytes 5MB"))
    # HTTP statuses, with and without Retry-After.
    farm.add_http("status-500", data("oops", 500), Expect(error="HTTP 500 Internal Server Error"))
    farm.add_http("status-404", data("", 404), Expect(error="HTTP 404 Not Found"))
    farm.add_http(
        "status-503-retry-seconds",
        data("", 503, Retry_After="7200"),
        Expect(error="HTTP 503 Service Unavailable (retry after 7200s)", retry_after_s=7200),
    )
    farm.add_http(
        "status-429-retry-date",
        data("", 429, Retry_After=retry_date),
        Expect(error="HTTP 429 Too Many Requests (retry after ", retry_after_s=3 * 3600),
    )
    farm.add_http(
        "status-429-retry-forever",
        data("", 429, Retry_After="99999999"),
        Expect(
            error="HTTP 429 Too Many Requests (retry after 43200s)", retry_after_s=MAX_BACKOFF_S
        ),
    )
    # Redirects: chains are followed, loops and long chains are refused.
    for hop, status in enumerate((301, 302, 308)):
        farm.redirect(f"/chain/{hop}", status, f"/chain/{hop + 1}")
    httpserver.expect_request("/chain/3").respond_with_data(good_body(), headers=FEED_HEADERS)
    farm.feeds.append(("redirect-chain", httpserver.url_for("/chain/0")))
    farm.expect["redirect-chain"] = Expect(articles=2)
    farm.redirect("/moved", 301, "/moved/1")
    farm.redirect("/moved/1", 308, "/moved/final")
    httpserver.expect_request("/moved/final").respond_with_data(good_body(), headers=FEED_HEADERS)
    farm.feeds.append(("redirect-permanent", httpserver.url_for("/moved")))
    farm.expect["redirect-permanent"] = Expect(articles=2)
    farm.add_http(
        "redirect-loop",
        data("", 302, Location="/loop-back"),
        Expect(error="redirect loop: "),
    )
    farm.redirect("/loop-back", 301, "/redirect-loop")
    farm.add_http(
        "redirect-too-many", data("", 302, Location="/hop/1"), Expect(error="too many redirects")
    )
    for hop in range(1, 8):
        farm.redirect(f"/hop/{hop}", 307, f"/hop/{hop + 1}")
    # 304s: to a request without validators (a broken cache), and without validators of its own.
    farm.add_http(
        "not-modified-unasked",
        data("", 304),
        Expect(error="HTTP 304 Not Modified to a request without validators"),
    )

    def etag_then_bare_304(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)  # RFC 9110 says SHOULD resend the ETag; this one does not
        return Response(good_body(), headers=FEED_HEADERS | {"ETag": '"v1"'})

    farm.add_http("bare-304", etag_then_bare_304, Expect(articles=2))
    # Content types and charsets that lie or are missing.
    farm.add_http(
        "type-octet-stream",
        data(good_body(), Content_Type="application/octet-stream"),
        Expect(articles=2, warning="application/octet-stream is not an XML media type"),
    )
    farm.add_http(
        "type-text-plain", data(good_body(), Content_Type="text/plain"), Expect(articles=2)
    )
    farm.add_http("type-text-html", data(good_body(), Content_Type="text/html"), Expect(articles=2))
    farm.add_http(
        "charset-wrong",  # a server default (ISO-8859-1) over a document that declares its own
        data(cyrillic_cp1251(True), Content_Type="application/rss+xml; charset=iso-8859-1"),
        Expect(articles=1, first_title="Бахмут під обстрілом"),
    )
    farm.add_http(
        "charset-missing",
        data(cyrillic_cp1251(True), Content_Type="text/xml"),
        Expect(articles=1, first_title="Бахмут під обстрілом"),
    )
    farm.add_http(
        "charset-undeclared",  # nothing says cp1251: stored as decoded, with a warning
        data(cyrillic_cp1251(False), Content_Type="application/rss+xml"),
        Expect(articles=1, warning="parsed as windows-1252"),
    )
    # Bodies that are not feeds.
    farm.add_http(
        "html-page",
        data("<!doctype html><html><body>Moved to our app</body></html>", Content_Type="text/html"),
        Expect(error="HTML page, not a feed (content-type text/html)"),
    )
    farm.add_http(
        "html-as-xml",
        data("<html><head><title>x</title></head><body><p>hi</p></body></html>"),
        Expect(error="HTML page, not a feed (the body starts with <html>)"),
    )
    farm.add_http(
        "truncated-gzip",
        data(gzip.compress(good_body())[:-12], Content_Encoding="gzip"),
        Expect(error="truncated gzip body"),
    )
    farm.add_http("empty-body", data(b""), Expect(error="empty body: the server sent no feed"))
    farm.add_http(
        "billion-laughs",
        data((Path(__file__).parent / "data/feeds/billion_laughs.xml").read_bytes()),
        Expect(error="refused: the DTD entity"),
    )
    # Big, repetitive and badly dated feeds: stored, sanely.
    many = rss(
        [Item(f"Routine item {i}", f"https://n.example/{i}", "", f"n{i}") for i in range(10_000)]
    )

    def ten_thousand(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"big"':
            return Response(status=304, headers={"ETag": '"big"'})
        return Response(many, headers=FEED_HEADERS | {"ETag": '"big"'})

    farm.add_http("ten-thousand-items", ten_thousand, Expect(articles=10_000))
    duplicates = [
        Item(f"Copy {n}", f"https://d.example/{n}", "", f"dup-{n // 2}") for n in range(6)
    ]
    farm.add_http(
        "duplicate-guids", data(rss(duplicates)), Expect(articles=3, first_title="Copy 0")
    )
    dated = [
        Item(
            "From the future", "https://t.example/f", "", "future", datetime(2100, 1, 1, tzinfo=UTC)
        ),
        Item("From 1970", "https://t.example/e", "", "epoch", datetime(1970, 1, 1, tzinfo=UTC)),
    ]
    farm.add_http("absurd-dates", data(rss(dated)), Expect(articles=2))
    return farm


HANGING = ("hang-before-headers", "hang-after-headers", "trickle")


def farm_config(tmp_path: Path, feeds: list[tuple[str, str]], extra: str = "") -> Path:
    """The hanging peers get the short timeout they are tested with; the rest a generous one,
    so a loaded machine cannot turn another fault into a timeout."""
    config = write_config(
        tmp_path,
        feeds=feeds,
        extra="defaults: {timeout: 10s, max_bytes: 5MB, interval: 10m}\n"
        "feed_failing_after: 30d\n" + extra,
    )
    text = config.read_text(encoding="utf-8")
    for name in HANGING:
        text = text.replace(f"{{name: {name}, ", f"{{name: {name}, timeout: {TIMEOUT_S:g}s, ")
    config.write_text(text, encoding="utf-8")
    return config


def open_runtime(config: Path) -> Runtime:
    return Runtime.open(load_settings(config, environ={}), console=io.StringIO())


async def test_every_fault_at_once_then_recovery(
    httpserver: HTTPServer, raw: RawHTTPServer, tmp_path: Path, gzip_bomb: bytes
) -> None:
    retry_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    farm = build_farm(httpserver, raw, gzip_bomb, format_datetime(retry_at, usegmt=True))
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    farm.feeds.append(("refused", f"http://127.0.0.1:{refused.getsockname()[1]}/feed"))
    farm.expect["refused"] = Expect(error="connection refused by 127.0.0.1:")
    runtime = open_runtime(farm_config(tmp_path, farm.feeds))
    store = runtime.store
    try:
        before = datetime.now(UTC).replace(microsecond=0)  # the store keeps whole seconds
        started = time.monotonic()
        outcomes, _ = await poll_once(runtime)
        elapsed = time.monotonic() - started
        after = datetime.now(UTC)

        assert sorted(o.feed for o in outcomes) == sorted(farm.expect)
        assert elapsed < 30  # hanging peers cost their timeout, nothing more
        counts = dict(store.db.execute("SELECT feed, count(*) FROM articles GROUP BY feed"))
        problems = []
        for name, want in farm.expect.items():
            state = store.feed_state(name)
            if want.error is not None:
                got = (state.status, state.error_count, want.error in (state.last_error or ""))
                if got != ("failing", 1, True) or counts.get(name):
                    problems.append(f"{name}: {state.status} {state.last_error!r}")
                assert state.next_poll is not None
                assert state.next_poll <= after + timedelta(seconds=MAX_BACKOFF_S)
                if want.retry_after_s is not None:
                    earliest = before + timedelta(seconds=want.retry_after_s - 30)
                    assert earliest <= state.next_poll, name
                else:
                    assert before + timedelta(seconds=0.9 * INTERVAL_S) <= state.next_poll, name
                    assert state.next_poll <= after + timedelta(seconds=1.1 * INTERVAL_S), name
            else:
                if (state.status, state.error_count, counts.get(name)) != ("ok", 0, want.articles):
                    problems.append(
                        f"{name}: {state.status} {counts.get(name)} {state.last_error!r}"
                    )
                if want.warning is not None and want.warning not in (state.last_error or ""):
                    problems.append(f"{name}: warning {state.last_error!r}")
            if want.first_title is not None:
                (title,) = store.db.execute(
                    "SELECT title FROM articles WHERE feed = ? ORDER BY id LIMIT 1", [name]
                ).fetchone()
                if title != want.first_title:
                    problems.append(f"{name}: first title {title!r}")
        assert problems == []

        # A permanent chain moves the feed; a temporary hop in the chain does not.
        assert store.feed_state("redirect-permanent").url == httpserver.url_for("/moved/final")
        assert store.feed_state("redirect-chain").url == httpserver.url_for("/chain/0")
        # Absurd dates become the fetch time rather than 1970 or 2100.
        for (published,) in store.db.execute(
            "SELECT published FROM articles WHERE feed = 'absurd-dates'"
        ):
            assert before - timedelta(seconds=1) <= datetime.fromisoformat(published) <= after
        assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

        # The faults clear: every feed comes back on the next poll.
        farm.heal()
        outcomes, _ = await poll_once(runtime)
        by_feed = {o.feed: o for o in outcomes}
        assert by_feed["bare-304"].outcome == "not_modified"
        assert store.feed_state("bare-304").etag == '"v1"'  # kept across a bare 304
        assert by_feed["ten-thousand-items"].outcome == "not_modified"
        still = {
            name: store.feed_state(name).last_error
            for name in farm.expect
            if name != "refused"
            and (store.feed_state(name).status, store.feed_state(name).error_count) != ("ok", 0)
        }
        assert still == {}
        for name, want in farm.expect.items():
            if want.error is not None and name != "refused":
                assert by_feed[name].new == 2, name
        assert store.feed_state("refused").error_count == 2  # still down, still counted
    finally:
        refused.close()
        runtime.close()


# --- backoff ------------------------------------------------------------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class HighRandom(random.Random):
    """Always the top of the jitter range: the worst case for the cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


def build_pipeline(
    config: Path, clock: Clock, fetcher: Fetcher, rng: random.Random | None = None
) -> tuple[Pipeline, Store, Settings]:
    settings = load_settings(config, environ={})
    store = Store.open(settings.database, clock=clock)
    store.sync_feeds(list(settings.feeds))
    watchlists = WatchlistSet(settings.watchlists_dir)
    pipeline = Pipeline(
        settings=settings, store=store, fetcher=fetcher, watchlists=watchlists, clock=clock, rng=rng
    )
    return pipeline, store, settings


@pytest.mark.parametrize("interval", ["10m", "6h", "2d"])
async def test_backoff_grows_and_stays_within_12h_however_long_the_outage(
    httpserver: HTTPServer, tmp_path: Path, interval: str
) -> None:
    httpserver.expect_request("/feed").respond_with_data("down", status=500)
    config = write_config(
        tmp_path,
        feeds=[("down", httpserver.url_for("/feed"))],
        extra=f"defaults: {{interval: {interval}}}\nfeed_failing_after: 30d\n",
    )
    clock = Clock(datetime(2024, 1, 1, tzinfo=UTC))
    async with Fetcher(user_agent="t") as fetcher:
        pipeline, store, settings = build_pipeline(config, clock, fetcher, HighRandom())
        (feed,) = settings.feeds
        delays = []
        for _ in range(12):
            outcome = await pipeline.poll_feed(feed)
            assert outcome.outcome == "failed"
            state = store.feed_state(feed.name)
            assert state.next_poll is not None
            delays.append((state.next_poll - clock.now).total_seconds())
            assert await pipeline.poll_feed(feed) == PollOutcome(feed.name, "skipped")
            clock.now = state.next_poll  # the scheduler's next chance
        store.close()
    assert all(delay <= MAX_BACKOFF_S for delay in delays), delays
    assert delays == sorted(delays)  # never shrinks while the outage goes on
    assert delays[-1] == MAX_BACKOFF_S  # and reaches the cap


def test_backoff_is_capped_after_jitter_and_honours_retry_after() -> None:
    rng = HighRandom()
    for errors in [*range(1, 40), 1025, 10**6]:  # a feed is never given up on
        for interval in (60.0, 600.0, 86400.0, 30 * 86400.0):
            assert backoff_s(errors, interval, None, rng) <= MAX_BACKOFF_S
            assert backoff_s(errors, interval, 10 * MAX_BACKOFF_S, rng) == MAX_BACKOFF_S
    assert backoff_s(1, 600.0, 5000.0, rng) == 5000.0  # Retry-After wins over a shorter delay
    assert backoff_s(5, 600.0, 10.0, random.Random(1)) > 600.0  # but never shortens the backoff


async def test_polling_resumes_after_retry_after_and_the_feed_recovers(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    state = {"down": True}

    def handler(request: Request) -> Response:
        if state["down"]:
            return Response("busy", status=503, headers={"Retry-After": "3600"})
        return Response(good_body(), headers=FEED_HEADERS)

    httpserver.expect_request("/feed").respond_with_handler(handler)
    config = write_config(tmp_path, feeds=[("busy", httpserver.url_for("/feed"))])
    clock = Clock(datetime(2024, 1, 1, tzinfo=UTC))
    async with Fetcher(user_agent="t") as fetcher:
        pipeline, store, settings = build_pipeline(config, clock, fetcher)
        (feed,) = settings.feeds
        assert (await pipeline.poll_feed(feed)).outcome == "failed"
        failing = store.feed_state("busy")
        assert failing.next_poll == clock.now + timedelta(hours=1)
        requests = len(httpserver.log)
        clock.now += timedelta(minutes=59)
        assert (await pipeline.poll_feed(feed)).outcome == "skipped"
        assert len(httpserver.log) == requests  # Retry-After is honoured: no request at all
        state["down"] = False
        clock.now += timedelta(minutes=1)
        outcome = await pipeline.poll_feed(feed)
        recovered = store.feed_state("busy")
        store.close()
    assert (outcome.outcome, outcome.new) == ("changed", 2)
    assert (recovered.status, recovered.error_count, recovered.last_error) == ("ok", 0, None)
    assert recovered.first_failed is None


# --- GUIDs that change on every poll ------------------------------------------------------------


async def test_guids_that_change_every_poll_do_not_pile_up_or_realert(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Dedupe is by guid, so a feed minting fresh guids for the same items would add a copy of
    every item on every poll. An unknown guid whose content (title, text, link) is already stored
    for the feed is the same article: skipped, so neither articles nor alerts grow."""
    polls = {"n": 0}
    items = [
        ("Бої за Бахмут тривають", "https://news.example/a"),
        ("Weather", "https://w.example/"),
    ]

    def handler(request: Request) -> Response:
        polls["n"] += 1
        fresh = [Item(t, link, "", f"{link}#{polls['n']}-{random.random()}") for t, link in items]
        return Response(rss(fresh), headers=FEED_HEADERS)

    httpserver.expect_request("/feed").respond_with_handler(handler)
    runtime = open_runtime(write_config(tmp_path, feeds=[("churn", httpserver.url_for("/feed"))]))
    try:
        outcomes = [(await poll_once(runtime))[0][0] for _ in range(4)]
        assert [o.new for o in outcomes] == [2, 0, 0, 0]
        assert [o.alerts for o in outcomes] == [1, 0, 0, 0]
        db = runtime.store.db
        assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == 2
        # A real edit under a fresh guid is a new article (the feed says it is another entry).
        items[1] = ("Weather: storm warning", "https://w.example/")
        (outcome,), _ = await poll_once(runtime)
        assert (outcome.new, outcome.updated) == (1, 0)
    finally:
        runtime.close()


# --- charsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "declared", "title"),
    [
        ("application/rss+xml; charset=iso-8859-1", True, "Бахмут під обстрілом"),
        ("text/xml; charset=ISO_8859-1", True, "Бахмут під обстрілом"),
        ('application/xml; charset="us-ascii"', True, "Бахмут під обстрілом"),
        # Nothing to prefer: the header is all there is, so its (wrong) charset is used.
        ("application/rss+xml; charset=iso-8859-1", False, "Áàõìóò ï³ä îáñòð³ëîì"),
        # A charset other than a server default was chosen on purpose and is respected.
        ("application/rss+xml; charset=windows-1252", True, "Áàõìóò ï³ä îáñòð³ëîì"),
    ],
)
def test_server_default_charset_loses_to_the_xml_declaration(
    content_type: str, declared: bool, title: str
) -> None:
    parsed = parse_feed(
        cyrillic_cp1251(declared),
        {"Content-Type": content_type},
        url="https://news.example/rss",
        fetched_at=RECENT,
    )
    assert parsed.articles[0].title == title


# --- redirects behind a busy host ---------------------------------------------------------------


async def test_queueing_for_the_host_between_redirect_hops_does_not_count(
    raw: RawHTTPServer,
) -> None:
    """Each hop takes a per-host slot again. Waiting for it behind another feed of the same host
    used to count against the deadline, so a plain http -> https style redirect timed out
    whenever the host was busy (per_host 2 and many feeds on one site)."""
    served_first_hop = threading.Event()
    release_busy = threading.Event()

    def first_hop(conn: socket.socket, stop: threading.Event) -> None:
        served_first_hop.set()
        respond(b"", status="301 Moved Permanently", headers=[("Location", "/new")])(conn, stop)

    def busy(conn: socket.socket, stop: threading.Event) -> None:
        release_busy.wait(10)  # holds the host's only slot while the redirect waits for it
        respond(good_body(), headers=list(FEED_HEADERS.items()))(conn, stop)

    raw.routes["/old"] = first_hop
    raw.routes["/new"] = respond(good_body(), headers=list(FEED_HEADERS.items()))
    raw.routes["/busy"] = busy

    def release_later() -> None:
        served_first_hop.wait(10)
        threading.Event().wait(1.0)  # the other feed keeps the host busy for a while
        release_busy.set()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    try:
        async with Fetcher(user_agent="t", per_host=1) as fetcher:
            moved, other = await asyncio.gather(
                fetcher.fetch(raw.url("/old"), timeout_s=0.5),
                fetcher.fetch(raw.url("/busy"), timeout_s=5),
            )
    finally:
        release_busy.set()
        releaser.join(timeout=15)
    assert isinstance(moved, FetchResult) and moved.permanent_url == raw.url("/new")
    assert isinstance(other, FetchResult)


# --- soak: faults come and go -------------------------------------------------------------------


@pytest.mark.soak
async def test_faults_coming_and_going_soak(
    httpserver: HTTPServer, raw: RawHTTPServer, tmp_path: Path, gzip_bomb: bytes
) -> None:
    """Forty polls; before each, a random half of the faults clears and the rest returns. Every
    poll ends with every feed either ok (error_count 0) or failing with a last_error and a
    retry at most 12 h away; no article is ever stored twice."""
    retry_at = datetime.now(UTC) + timedelta(hours=3)
    farm = build_farm(httpserver, raw, gzip_bomb, format_datetime(retry_at, usegmt=True))
    faults = sorted(name for name, want in farm.expect.items() if want.error is not None)
    rng = random.Random(8)
    runtime = open_runtime(farm_config(tmp_path, farm.feeds))
    store = runtime.store
    polls = failures = recoveries = 0
    try:
        for _ in range(40):
            farm.heal(set(rng.sample(faults, len(faults) // 2)))
            before = {name: store.feed_state(name).status for name in farm.expect}
            outcomes, _ = await poll_once(runtime)
            polls += len(outcomes)
            assert sorted(o.feed for o in outcomes) == sorted(farm.expect)
            for name in farm.expect:
                state = store.feed_state(name)
                assert state.next_poll is not None
                assert state.next_poll <= datetime.now(UTC) + timedelta(seconds=MAX_BACKOFF_S)
                if state.status == "failing":
                    failures += 1
                    assert state.last_error and state.error_count >= 1, name
                else:
                    assert (state.status, state.error_count) == ("ok", 0), name
                    recoveries += before[name] == "failing"
                    assert name in farm.healthy or farm.expect[name].error is None, name
        duplicates = store.db.execute(
            "SELECT count(*) FROM (SELECT feed, hash FROM articles GROUP BY feed, hash"
            " HAVING count(*) > 1)"
        ).fetchone()[0]
        assert duplicates == 0
        assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        runtime.close()
    print(f"\nfault soak: {polls} polls, {failures} failing ends, {recoveries} recoveries")
    assert recoveries > 100
