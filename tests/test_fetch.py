"""Tests for daemon.fetch against real servers on 127.0.0.1 (pytest-httpserver or raw sockets)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.errors import FetchError
from daemon.fetch import RETRY_AFTER_CAP_S, Fetcher, parse_retry_after
from daemon.models import FetchResult, NotModified
from support import RawHandler, RawHTTPServer, hang_after_headers, hang_before_headers, trickle

UA = "Vedette-test/1.0 (+https://example.org/contact)"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.fixture
def raw_server() -> Iterator[Callable[[RawHandler], RawHTTPServer]]:
    servers: list[RawHTTPServer] = []

    def start(handler: RawHandler) -> RawHTTPServer:
        servers.append(RawHTTPServer(default=handler))  # every path
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(user_agent=UA) as client:
        yield client


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """50 MB of zeros, gzip-compressed to about 50 KB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1_000_000)
    return b"".join([*(compressor.compress(zeros) for _ in range(50)), compressor.flush()])


async def fetch_error(
    fetcher: Fetcher, url: str, *, timeout_s: float = 20.0, max_bytes: int = 10_000_000
) -> FetchError:
    """Fetch `url`, expecting FetchError; check the error names the feed and formats cleanly."""
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(url, timeout_s=timeout_s, max_bytes=max_bytes)
    assert caught.value.url == url
    assert str(caught.value) == caught.value.message
    return caught.value


# --- 200 and 304 --------------------------------------------------------------------------------


async def test_plain_get_sends_feed_headers_and_returns_result(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        headers = {"ETag": '"v1"', "Last-Modified": LAST_MODIFIED, "Content-Location": "/c"}
        return Response(RSS, headers=headers, content_type="application/rss+xml; charset=utf-8")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    result = await fetcher.fetch(httpserver.url_for("/feed"))

    assert isinstance(result, FetchResult)
    assert (result.status, result.content, result.url) == (200, RSS, httpserver.url_for("/feed"))
    assert (result.etag, result.last_modified, result.permanent_url) == (
        '"v1"',
        LAST_MODIFIED,
        None,
    )
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.headers["content-location"] == "/c"
    assert result.elapsed_s > 0
    request = seen[0]
    assert request.headers["User-Agent"] == UA
    assert request.headers["Accept"].startswith("application/rss+xml, application/atom+xml")
    assert request.headers["Accept-Encoding"] == "gzip, deflate"
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


async def test_conditional_get_sends_both_validators_and_gets_304(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    conditional = {"If-None-Match": '"v1"', "If-Modified-Since": LAST_MODIFIED}
    httpserver.expect_request("/feed", headers=conditional).respond_with_data(
        "", status=304, headers={"ETag": '"v2"'}
    )
    result = await fetcher.fetch(
        httpserver.url_for("/feed"), etag='"v1"', last_modified=LAST_MODIFIED
    )

    assert isinstance(result, NotModified)
    assert result.etag == '"v2"'  # the server's new validator wins
    assert result.last_modified == LAST_MODIFIED  # not resent, so the old one is kept
    assert result.permanent_url is None


async def test_304_without_validators_keeps_the_old_ones(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    httpserver.expect_request("/feed").respond_with_data("", status=304)
    result = await fetcher.fetch(
        httpserver.url_for("/feed"), etag='W/"old"', last_modified=LAST_MODIFIED
    )

    assert result == NotModified(
        url=httpserver.url_for("/feed"),
        etag='W/"old"',
        last_modified=LAST_MODIFIED,
        elapsed_s=result.elapsed_s,
    )


# --- bodies: encodings and the size cap ---------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_compressed_body_is_decoded(
    httpserver: HTTPServer, fetcher: Fetcher, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        encode(RSS * 100), headers={"Content-Encoding": coding}, content_type="text/xml"
    )
    result = await fetcher.fetch(httpserver.url_for("/feed"))

    assert isinstance(result, FetchResult)
    assert result.content == RSS * 100
    assert result.headers["content-type"] == "text/xml"
    assert "content-encoding" not in result.headers  # content is already decoded
    assert "content-length" not in result.headers


async def test_content_length_over_cap_is_refused_before_reading(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"x" * 2_000)
    error = await fetch_error(fetcher, httpserver.url_for("/feed"), max_bytes=1_000)

    assert error.message.startswith("body exceeds max_bytes 1KB (Content-Length is 2,000 bytes)")
    assert not error.retryable


async def test_streamed_body_over_cap_is_refused(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    chunks = (b"x" * 1_000 for _ in range(100))  # no Content-Length: the size is unknown
    httpserver.expect_request("/feed").respond_with_response(Response(chunks))
    error = await fetch_error(fetcher, httpserver.url_for("/feed"), max_bytes=10_000)

    assert error.message.startswith("body exceeds max_bytes 10KB (stopped after ")
    assert not error.retryable


async def test_gzip_bomb_is_refused_without_inflating_it(
    raw_server: Callable[[RawHandler], RawHTTPServer], fetcher: Fetcher, gzip_bomb: bytes
) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(gzip_bomb)}\r\n\r\n"
    server = raw_server(lambda conn, stop: conn.sendall(head.encode() + gzip_bomb))
    tracemalloc.start()
    try:  # not pytest.raises: its bookkeeping allocates MBs and would blur the measurement
        await fetcher.fetch(server.url(), max_bytes=1_000_000)
    except FetchError as exc:
        error, (_, peak) = exc, tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.message.startswith("body exceeds max_bytes 1MB (stopped after 1,000,001 bytes)")
    assert peak < 5_000_000  # inflating a whole 64 KiB read at once would take ~50 MB


async def test_decoded_body_exactly_at_cap_is_accepted(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    body = b"a" * 100_000
    httpserver.expect_request("/feed").respond_with_data(
        gzip.compress(body), headers={"Content-Encoding": "gzip"}
    )
    result = await fetcher.fetch(httpserver.url_for("/feed"), max_bytes=len(body))

    assert isinstance(result, FetchResult)
    assert result.content == body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            gzip.compress(RSS * 50)[:-8],
            f"truncated gzip body: the stream ended after {len(RSS) * 50:,} bytes",
        ),
        (gzip.compress(RSS * 50)[:20], "truncated gzip body"),
        (b"this is not gzip", "corrupt gzip body: Error -3 while decompressing data"),
    ],
)
async def test_broken_gzip_is_a_readable_error(
    httpserver: HTTPServer, fetcher: Fetcher, body: bytes, expected: str
) -> None:
    httpserver.expect_request("/feed").respond_with_data(body, headers={"Content-Encoding": "gzip"})
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert error.message.startswith(expected)


async def test_unrequested_content_encoding_is_refused(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"??", headers={"Content-Encoding": "br"})
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert error.message == "unsupported Content-Encoding 'br' (we ask for gzip or deflate)"
    assert not error.retryable


# --- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "retryable"),
    [
        (500, "HTTP 500 Internal Server Error", True),
        (502, "HTTP 502 Bad Gateway", True),
        (404, "HTTP 404 Not Found", False),
        (410, "HTTP 410 Gone", False),
        (403, "HTTP 403 Forbidden", False),
        (408, "HTTP 408 Request Timeout", True),
    ],
)
async def test_error_status_maps_to_fetch_error(
    httpserver: HTTPServer, fetcher: Fetcher, status: int, message: str, retryable: bool
) -> None:
    httpserver.expect_request("/feed").respond_with_data("nope", status=status)
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert (error.message, error.retryable, error.status) == (message, retryable, status)
    assert error.retry_after_s is None


async def test_429_with_retry_after_seconds(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert error.message == "HTTP 429 Too Many Requests (retry after 120s)"
    assert (error.retryable, error.retry_after_s, error.status) == (True, 120.0, 429)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_http_date(httpserver: HTTPServer, fetcher: Fetcher, status: int) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    httpserver.expect_request("/feed").respond_with_data(
        "", status=status, headers={"Retry-After": when}
    )
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert error.retry_after_s is not None
    assert 290 <= error.retry_after_s <= 300
    assert error.retryable


# --- redirects ----------------------------------------------------------------------------------


def redirect(httpserver: HTTPServer, path: str, status: int, to: str) -> None:
    httpserver.expect_request(path).respond_with_data("", status=status, headers={"Location": to})


@pytest.mark.parametrize("statuses", [(301,), (308,), (301, 308)])
async def test_permanent_redirect_chain_sets_permanent_url(
    httpserver: HTTPServer, fetcher: Fetcher, statuses: tuple[int, ...]
) -> None:
    for hop, status in enumerate(statuses):
        redirect(httpserver, f"/r{hop}", status, f"/r{hop + 1}")  # relative Location
    final = f"/r{len(statuses)}"
    httpserver.expect_request(final).respond_with_data(RSS)
    result = await fetcher.fetch(httpserver.url_for("/r0"))

    assert isinstance(result, FetchResult)
    assert result.url == result.permanent_url == httpserver.url_for(final)
    assert result.content == RSS


@pytest.mark.parametrize("statuses", [(302,), (307,), (301, 302), (302, 301)])
async def test_temporary_redirect_in_chain_leaves_permanent_url_unset(
    httpserver: HTTPServer, fetcher: Fetcher, statuses: tuple[int, ...]
) -> None:
    for hop, status in enumerate(statuses):
        redirect(httpserver, f"/r{hop}", status, httpserver.url_for(f"/r{hop + 1}"))
    httpserver.expect_request(f"/r{len(statuses)}").respond_with_data(RSS)
    result = await fetcher.fetch(httpserver.url_for("/r0"))

    assert isinstance(result, FetchResult)
    assert result.url == httpserver.url_for(f"/r{len(statuses)}")
    assert result.permanent_url is None


async def test_304_after_permanent_redirect_reports_the_move(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    redirect(httpserver, "/old", 301, "/new")
    httpserver.expect_request("/new", headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304
    )
    result = await fetcher.fetch(httpserver.url_for("/old"), etag='"v1"')

    assert isinstance(result, NotModified)
    assert result.permanent_url == httpserver.url_for("/new")
    assert result.etag == '"v1"'


async def test_error_after_redirect_names_the_final_url(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    redirect(httpserver, "/old", 301, "/gone")
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    error = await fetch_error(fetcher, httpserver.url_for("/old"))

    assert error.message == f"HTTP 410 Gone from {httpserver.url_for('/gone')} (after redirects)"


async def test_redirect_loop_is_refused(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    redirect(httpserver, "/a", 302, "/b")
    redirect(httpserver, "/b", 301, "/a")
    error = await fetch_error(fetcher, httpserver.url_for("/a"))

    a, b = httpserver.url_for("/a"), httpserver.url_for("/b")
    assert error.message == f"redirect loop: {a} -> {b} -> {a}"
    assert not error.retryable


async def test_more_than_five_redirects_is_refused(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    for hop in range(6):
        redirect(httpserver, f"/r{hop}", 302, f"/r{hop + 1}")
    httpserver.expect_request("/r6").respond_with_data(RSS)
    error = await fetch_error(fetcher, httpserver.url_for("/r0"))

    assert error.message.startswith("too many redirects (more than 5) starting at ")


async def test_five_redirects_are_followed(httpserver: HTTPServer, fetcher: Fetcher) -> None:
    for hop in range(5):
        redirect(httpserver, f"/r{hop}", 301, f"/r{hop + 1}")
    httpserver.expect_request("/r5").respond_with_data(RSS)
    result = await fetcher.fetch(httpserver.url_for("/r0"))

    assert isinstance(result, FetchResult)
    assert result.permanent_url == httpserver.url_for("/r5")


async def test_redirect_to_another_scheme_is_refused(
    httpserver: HTTPServer, fetcher: Fetcher
) -> None:
    redirect(httpserver, "/feed", 301, "ftp://example.org/feed")
    error = await fetch_error(fetcher, httpserver.url_for("/feed"))

    assert error.message == "unsupported URL 'ftp://example.org/feed': use http:// or https://"


# --- network failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [hang_before_headers, hang_after_headers, trickle])
async def test_slow_server_times_out_at_the_overall_deadline(
    raw_server: Callable[[RawHandler], RawHTTPServer], fetcher: Fetcher, handler: RawHandler
) -> None:
    server = raw_server(handler)
    started = time.monotonic()
    error = await fetch_error(fetcher, server.url(), timeout_s=0.5)

    assert time.monotonic() - started < 1.5
    assert error.message.startswith("timed out after 0.5s")
    assert error.retryable


async def test_server_closing_mid_body_is_a_protocol_error(
    raw_server: Callable[[RawHandler], RawHTTPServer], fetcher: Fetcher
) -> None:
    server = raw_server(
        lambda conn, stop: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<rss>")
    )
    error = await fetch_error(fetcher, server.url())

    assert error.message.startswith("127.0.0.1 broke the HTTP exchange: ")
    assert error.retryable


async def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # find a free port, then close it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await fetch_error(fetcher, f"http://127.0.0.1:{port}/feed")

    assert error.message == f"connection refused by 127.0.0.1:{port}"
    assert error.retryable


def certificate_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


@pytest.mark.parametrize(
    ("raised", "cause", "expected", "retryable"),
    [
        (
            httpx.ConnectError,
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "DNS lookup failed for news.example (",
            True,
        ),
        (
            httpx.ConnectError,
            certificate_error(),
            "TLS certificate verification failed for news.example: self-signed certificate",
            False,
        ),
        (httpx.ConnectError, None, "could not connect to news.example: ConnectError", True),
        (httpx.ConnectTimeout, None, "connect to news.example timed out after 20s", True),
        (httpx.ReadError, None, "network error talking to news.example: ReadError", True),
    ],
)
async def test_transport_failures_name_the_host(
    raised: type[httpx.TransportError],
    cause: BaseException | None,
    expected: str,
    retryable: bool,
) -> None:
    """Failures we cannot cause on loopback go through the transport seam instead."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise raised("", request=request) from cause

    async with Fetcher(user_agent=UA, transport=httpx.MockTransport(fail)) as client:
        error = await fetch_error(client, "https://news.example/feed")

    assert error.message.startswith(expected)
    assert error.retryable is retryable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://example.org/feed", "unsupported URL 'ftp://example.org/feed'"),
        ("example.org/feed", "unsupported URL 'example.org/feed'"),
        ("http://example.org:port/", "invalid URL 'http://example.org:port/': Invalid port"),
    ],
)
async def test_bad_url_is_not_retryable(fetcher: Fetcher, url: str, expected: str) -> None:
    error = await fetch_error(fetcher, url)

    assert error.message.startswith(expected)
    assert not error.retryable


async def test_proxy_environment_is_ignored(
    httpserver: HTTPServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse every request
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    httpserver.expect_request("/feed").respond_with_data(RSS)
    async with Fetcher(user_agent=UA) as client:
        result = await client.fetch(httpserver.url_for("/feed"))

    assert isinstance(result, FetchResult)


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "per_host", "limit"), [(16, 2, 2), (1, 4, 1)])
async def test_concurrent_requests_stay_within_limits(
    raw_server: Callable[[RawHandler], RawHTTPServer], concurrency: int, per_host: int, limit: int
) -> None:
    lock = threading.Lock()
    active, most = [0], [0]
    crowded = threading.Event()  # set if a request arrives beyond the limit

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] > limit:
                crowded.set()
        crowded.wait(0.2)  # hold the slot long enough for an over-limit request to show up
        with lock:
            active[0] -= 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    server = raw_server(handler)
    async with Fetcher(user_agent=UA, concurrency=concurrency, per_host=per_host) as client:
        results = await asyncio.gather(*(client.fetch(server.url(f"/{n}")) for n in range(3)))

    assert all(isinstance(result, FetchResult) for result in results)
    assert most[0] == limit


# --- parse_retry_after --------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 01 May 2024 12:01:30 GMT", 90.0),  # IMF-fixdate
        ("Wednesday, 01-May-24 12:01:30 GMT", 90.0),  # obsolete RFC 850 form
        ("Wed May  1 12:01:30 2024", 90.0),  # obsolete asctime form
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past: never negative
        ("999999999999", RETRY_AFTER_CAP_S),
        ("Wed, 01 May 2030 12:00:00 GMT", RETRY_AFTER_CAP_S),
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("٣", None),  # a Unicode digit is not DIGIT (RFC 5234)
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected
