"""Frozen values passed between pipeline stages. No behaviour beyond small derived properties."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ARTICLE_FIELDS: tuple[str, ...] = ("title", "summary", "content")


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed as configured (from vedette.yaml, OPML or `feeds add`)."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    interval_s: float = 600.0
    jitter_s: float = 30.0
    timeout_s: float = 20.0
    max_bytes: int = 10_000_000


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about a feed between polls."""

    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    status: str = "new"  # new | ok | failing
    last_error: str | None = None
    error_count: int = 0
    first_failed: datetime | None = None
    next_poll: datetime | None = None
    last_polled: datetime | None = None
    # `ParsedFeed.item_digests` of the last body whose articles are stored (see `feeditems`).
    item_digests: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A 200 response: the body (already decompressed) and the headers the parser needs."""

    url: str  # the URL that was finally fetched, after redirects
    status: int
    content: bytes
    headers: Mapping[str, str]  # lower-cased names
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None  # set when a 301/308 chain ended elsewhere
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class NotModified:
    """A 304: nothing to parse. Validators may still have changed (RFC 9110 §15.4.5)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Article:
    """One feed entry as plain text, ready to store and match."""

    entry_id: str
    url: str
    title: str
    summary: str
    content: str
    author: str
    published: datetime  # UTC; the fetch time when the feed gave none
    content_hash: str  # changes when the entry is edited

    def text_fields(self) -> dict[str, str]:
        return {"title": self.title, "summary": self.summary, "content": self.content}


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What the parser made of one body."""

    title: str
    articles: tuple[Article, ...]
    bozo_reason: str | None = None  # set when the feed was malformed but still yielded entries
    # One digest per item of the body (`feeditems`), () when it could not be split: once the
    # articles are stored, the next poll passes them back as `known_items` and parses less.
    item_digests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as the store holds it: with its row id and its feed."""

    id: int
    feed: str
    article: Article
    fetched: datetime


@dataclass(frozen=True, slots=True)
class Hit:
    """One place a term matched: which field, where, the text as written, and its canonical name."""

    field: str
    start: int
    end: int
    text: str
    term: str
    group: str


@dataclass(frozen=True, slots=True)
class Match:
    """An article matched a watchlist: the canonical terms and every hit behind them."""

    watchlist: str
    terms: tuple[str, ...]
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class TermSpec:
    """A canonical name and the aliases written for it in one watchlist group."""

    canonical: str
    aliases: tuple[str, ...] = ()
    line: int | None = None

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.canonical, *self.aliases)


@dataclass(frozen=True, slots=True)
class Watchlist:
    """A validated watchlist file. `match` compiles it; nothing here does I/O."""

    name: str  # the file stem
    title: str
    groups: Mapping[str, tuple[TermSpec, ...]]
    rule: str | None = None  # None: any group matches
    exclude: tuple[TermSpec, ...] = ()
    notify: tuple[str, ...] = ()  # Apprise tags; empty means all
    feeds: tuple[str, ...] = ()  # feed names or tags; empty means all
    fields: tuple[str, ...] = ARTICLE_FIELDS
    min_sources: int = 1
    digest_s: float | None = None
    quiet_hours: str | None = None
    rate_limit: str | None = None  # e.g. "10/h": more alerts than that wait in a digest
    template: Mapping[str, str] = field(default_factory=dict)  # format -> string.Template text
    source: str = ""  # the file it came from, for messages
    lines: Mapping[str, int] = field(default_factory=dict)  # key path -> line, for errors


@dataclass(frozen=True, slots=True)
class Alert:
    """An outbox row: what to send (the payload notify renders), to whom, and how delivery went."""

    id: int
    watchlist: str
    article_id: int
    story_key: str
    tags: tuple[str, ...]
    payload: Mapping[str, Any]
    status: str  # queued | sent | dead
    attempts: int
    last_error: str | None
    created: datetime
    next_attempt: datetime
    expires: datetime
    sent_at: datetime | None = None
    release_at: datetime | None = None  # when the outbox plans to send it; None: not planned yet
    hold: str | None = None  # why it waits for a digest (digest, quiet_hours, rate_limit)


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock; stages take a `Clock` so tests can drive time."""
    return datetime.now(UTC)
