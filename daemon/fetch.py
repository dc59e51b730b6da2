"""Fetch one feed URL: a conditional GET with a deadline, a size cap and per-host limits.

The only module that imports httpx. It returns `FetchResult` (2xx) or `NotModified` (304) and
raises `FetchError` for everything else; it never parses, stores or logs. URLs quoted in error
messages have their passwords and tokens masked: the messages are stored and shown.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

from daemon.errors import FetchError
from daemon.logs import redact
from daemon.models import FetchResult, NotModified

DEFAULT_TIMEOUT_S = 20.0
MAX_BODY_BYTES = 10_000_000
MAX_REDIRECTS = 5
RETRY_AFTER_CAP_S = 12 * 3600.0
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})  # RFC 9110 §15.4.2, §15.4.9
# Headers that describe the encoded body; `content` is decoded, so they would mislead the parser.
ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class Fetcher:
    """One shared HTTP/1.1 client with overall and per-host concurrency limits."""

    def __init__(
        self,
        *,
        user_agent: str,
        concurrency: int = 16,
        per_host: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(DEFAULT_TIMEOUT_S),
            follow_redirects=False,  # followed below, to know whether every hop was permanent
            trust_env=False,  # no proxy or netrc from the environment
            transport=transport,
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._per_host = per_host
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> FetchResult | NotModified:
        """GET `url`, following up to MAX_REDIRECTS redirects, within `timeout_s` overall.

        The deadline starts once a slot is free, so queueing behind other feeds does not count,
        at the first hop or at a redirect's next one.
        Raises FetchError for transport failures, non-2xx/304 statuses and oversized bodies.
        """
        headers: dict[str, str] = {}
        if etag:  # RFC 9110 §13.1.2; send both validators, servers differ in which they check
            headers["If-None-Match"] = etag
        if last_modified:  # RFC 9110 §13.1.3
            headers["If-Modified-Since"] = last_modified
        current = _parse_url(url, url)
        visited = [str(current)]
        permanent = True
        deadline: float | None = None
        started = 0.0
        loop = asyncio.get_running_loop()
        async with self._slots:
            while True:
                queued = loop.time()
                async with self._host_slot(current.host):
                    if deadline is None:
                        deadline = loop.time() + timeout_s
                        started = time.monotonic()
                    else:  # each redirect hop queues for a slot again; that wait does not count
                        deadline += loop.time() - queued
                    try:
                        async with asyncio.timeout_at(deadline):
                            response, body = await self._exchange(
                                url, current, headers, timeout_s, max_bytes
                            )
                    except TimeoutError as exc:
                        raise FetchError(url, _timeout_message(timeout_s)) from exc
                status = response.status_code
                if status not in REDIRECT_STATUSES:
                    break
                permanent = permanent and status in PERMANENT_REDIRECTS
                current = _next_hop(url, response, visited)
        elapsed_s = time.monotonic() - started
        final = str(current)
        moved = final if permanent and final != visited[0] else None
        new_etag = response.headers.get("etag")
        new_modified = response.headers.get("last-modified")
        if status == 304 and not headers:
            # RFC 9110 §15.4.5: 304 answers a conditional request only. Taking it as "no
            # change" would leave the feed "ok" with no articles, forever (issue #8).
            raise FetchError(
                url,
                "HTTP 304 Not Modified to a request without validators (no ETag or "
                "Last-Modified was sent); the server or a cache in front of it is misbehaving",
                status=304,
            )
        if status == 304:  # RFC 9110 §15.4.5: a 304 may carry updated validators
            return NotModified(
                url=final,
                etag=new_etag or etag,
                last_modified=new_modified or last_modified,
                permanent_url=moved,
                elapsed_s=elapsed_s,
            )
        if not 200 <= status < 300:
            raise _status_error(url, response, redirected=final != visited[0])
        return FetchResult(
            url=final,
            status=status,
            content=body,
            headers={
                k.lower(): v
                for k, v in response.headers.items()
                if k.lower() not in ENCODING_HEADERS
            },
            etag=new_etag,
            last_modified=new_modified,
            permanent_url=moved,
            elapsed_s=elapsed_s,
        )

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        return self._host_slots.setdefault(host, asyncio.Semaphore(self._per_host))

    async def _exchange(
        self, feed_url: str, url: httpx.URL, headers: dict[str, str], timeout_s: float, cap: int
    ) -> tuple[httpx.Response, bytes]:
        """One request/response; the body is read only for 2xx, and only up to `cap` bytes."""
        request = self._client.build_request("GET", url, headers=headers, timeout=timeout_s)
        try:
            response = await self._client.send(request, stream=True)
            try:
                body = b""
                if 200 <= response.status_code < 300:
                    body = await _read_body(feed_url, response, cap)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise _transport_error(feed_url, url, exc, timeout_s) from exc
        return response, body


async def _read_body(feed_url: str, response: httpx.Response, cap: int) -> bytes:
    """Decode gzip/deflate ourselves with bounded output: httpx inflates each network chunk in
    one call, so a 64 KiB chunk of a gzip bomb would become ~64 MB before any check could run."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise FetchError(
            feed_url,
            f"unsupported Content-Encoding {coding!r} (we ask for gzip or deflate)",
            retryable=False,
        )
    inflater = None if coding == "identity" else _Inflater(coding)
    declared = response.headers.get("content-length", "")
    if inflater is None and declared.isdigit() and int(declared) > cap:
        raise _too_big(feed_url, cap, f"Content-Length is {int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw():
            data = raw
            while data:
                if inflater is None:
                    piece, data = data, b""
                else:  # at most one byte past the cap, whatever the compression ratio
                    piece, data = inflater.decompress(data, cap - size + 1)
                size += len(piece)
                if size > cap:
                    raise _too_big(feed_url, cap, f"stopped after {size:,} bytes")
                chunks.append(piece)
    except zlib.error as exc:
        raise FetchError(feed_url, f"corrupt {coding} body: {exc}") from exc
    if inflater is not None and inflater.started and not inflater.finished:
        raise FetchError(
            feed_url, f"truncated {coding} body: the stream ended after {size:,} bytes"
        )
    return b"".join(chunks)


class _Inflater:
    """A zlib stream for one Content-Encoding (RFC 9110 §8.4.1) whose output is bounded."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if "gzip" in coding else zlib.MAX_WBITS)
        self.started = False

    @property
    def finished(self) -> bool:
        return self._zlib.eof

    def decompress(self, data: bytes, max_length: int) -> tuple[bytes, bytes]:
        """Return (up to max_length decoded bytes, the input not consumed yet)."""
        try:
            out = self._zlib.decompress(data, max_length)
        except zlib.error:
            if self._coding != "deflate" or self.started:
                raise
            # "deflate" means zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send it raw.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, max_length)
        self.started = True
        return out, self._zlib.unconsumed_tail


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (RFC 9110 §10.2.3), clamped to [0, 12 h].

    Accepts delay-seconds or an HTTP-date (compared with the aware `now`); None if absent or
    invalid, so the caller falls back to its own backoff.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    try:
        when = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" forms parse naive; HTTP-dates are UTC
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), RETRY_AFTER_CAP_S)


def _parse_url(feed_url: str, url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError(feed_url, f"invalid URL {_shown(url)!r}: {exc}", retryable=False) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(
            feed_url, f"unsupported URL {_shown(url)!r}: use http:// or https://", retryable=False
        )
    return parsed


def _next_hop(feed_url: str, response: httpx.Response, visited: list[str]) -> httpx.URL:
    """Resolve Location (RFC 9110 §10.2.2, may be relative); refuse loops and long chains."""
    location = response.headers.get("location")
    if not location:
        raise FetchError(feed_url, f"HTTP {response.status_code} redirect without a Location")
    try:
        target = _parse_url(feed_url, response.url.join(location))
    except httpx.InvalidURL as exc:
        raise FetchError(feed_url, f"invalid redirect Location {_shown(location)!r}") from exc
    if str(target) in visited:
        chain = " -> ".join(map(_shown, [*visited[visited.index(str(target)) :], str(target)]))
        raise FetchError(feed_url, f"redirect loop: {chain}", retryable=False)
    if len(visited) > MAX_REDIRECTS:
        raise FetchError(
            feed_url,
            f"too many redirects (more than {MAX_REDIRECTS}) starting at {_shown(visited[0])}",
            retryable=False,
        )
    visited.append(str(target))
    return target


def _status_error(feed_url: str, response: httpx.Response, *, redirected: bool) -> FetchError:
    """Map a status to FetchError: 5xx, 408 and 429 are worth retrying soon, other 4xx not."""
    status = response.status_code
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = response.reason_phrase
    message = f"HTTP {status} {reason}".rstrip()
    if redirected:
        message += f" from {_shown(response.url)} (after redirects)"
    retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    if retry_after is not None:
        message += f" (retry after {retry_after:g}s)"
    retryable = status >= 500 or status in (408, 429)
    return FetchError(
        feed_url, message, retryable=retryable, retry_after_s=retry_after, status=status
    )


def _transport_error(
    feed_url: str, url: httpx.URL, exc: httpx.HTTPError, timeout_s: float
) -> FetchError:
    """Turn an httpx/httpcore failure into one readable sentence naming the host."""
    host = url.host
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FetchError(feed_url, f"unsupported URL {_shown(url)!r}: {exc}", retryable=False)
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchError(feed_url, f"connect to {host} timed out after {timeout_s:g}s")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(feed_url, _timeout_message(timeout_s))
    if isinstance(exc, httpx.ConnectError):
        causes = list(_causes(exc))
        for cause in causes:
            if isinstance(cause, socket.gaierror):
                return FetchError(feed_url, f"DNS lookup failed for {host} ({cause})")
            if isinstance(cause, ssl.SSLCertVerificationError):
                message = f"TLS certificate verification failed for {host}: {cause.verify_message}"
                return FetchError(feed_url, message, retryable=False)
            if isinstance(cause, ssl.SSLError):
                return FetchError(feed_url, f"TLS handshake with {host} failed: {cause}")
        if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
            return FetchError(feed_url, f"connection refused by {url.netloc.decode('ascii')}")
        return FetchError(
            feed_url, f"could not connect to {host}: {str(exc) or type(exc).__name__}"
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return FetchError(feed_url, f"{host} broke the HTTP exchange: {exc}")
    return FetchError(
        feed_url, f"network error talking to {host}: {str(exc) or type(exc).__name__}"
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Walk __cause__/__context__ and exception groups: httpx wraps httpcore wraps OSError."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)


def _shown(url: str | httpx.URL) -> str:
    """A URL for an error message: password and secret query parameters masked."""
    return redact(str(url))


def _too_big(feed_url: str, cap: int, detail: str) -> FetchError:
    message = f"body exceeds max_bytes {_format_size(cap)} ({detail}); raise max_bytes for this "
    return FetchError(feed_url, message + "feed if that size is expected", retryable=False)


def _timeout_message(timeout_s: float) -> str:
    return f"timed out after {timeout_s:g}s; raise timeout for this feed if the server is slow"


def _format_size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + unit
    return f"{n}B"
