"""The parser over a broad real-world corpus: feedparser's own test documents (2,242 files from
its sdist, refreshed by scripts/fetch-parser-corpus.sh) plus every feed fixture of this project.

Each document must yield articles or a clear ParseError, never another exception, and the
articles must be clean. A sample also goes through a whole poll (fetch, parse, store, match);
the soak form polls every document.
"""

from __future__ import annotations

import copy
import io
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from feedparser.util import FeedParserDict
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon import parse
from daemon.config import load_settings
from daemon.errors import ParseError
from daemon.parse import parse_feed
from daemon.service import Runtime, poll_once
from support import write_config

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus" / "feedparser"
FIXTURES = [
    *sorted((DATA / "feeds").glob("*.xml")),
    *sorted((Path(__file__).parent.parent / "daemon" / "data" / "demo").glob("*.xml")),
]
FETCHED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# feedparser's test files declare the response headers they were served with in a comment.
HEADER_LINE = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
RESPONSE_HEADERS = {"content-type", "content-language", "content-location", "last-modified"}


def documents() -> list[Path]:
    return sorted(CORPUS.rglob("*.xml"))


def headers_of(content: bytes) -> dict[str, str]:
    found = {}
    for name, value in HEADER_LINE.findall(content[:2000]):
        key = name.decode("latin-1").strip().lower()
        if key in RESPONSE_HEADERS:
            found[key] = value.decode("latin-1").strip()
    return found


def test_corpus_is_present_with_its_licence() -> None:
    assert len(documents()) >= 2000, "run scripts/fetch-parser-corpus.sh"
    assert "Redistribution and use in source and binary forms" in (CORPUS / "LICENSE").read_text()
    assert "feedparser" in (CORPUS / "SOURCE").read_text()


def test_every_document_parses_or_fails_clearly() -> None:
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    articles = 0
    started = time.monotonic()
    for path in [*documents(), *FIXTURES]:
        content = path.read_bytes()
        url = f"http://127.0.0.1/{path.name}"
        try:
            parsed = parse_feed(content, headers_of(content), url=url, fetched_at=FETCHED_AT)
        except ParseError as exc:
            assert exc.url == url and str(exc), path
            outcomes["ParseError"] += 1
            if str(exc).startswith("feed parser failed"):  # a library exception, wrapped
                crashes.append(f"{path}: {exc}")
            continue
        except Exception as exc:  # the guarantee under test: nothing else escapes
            crashes.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        outcomes["ok" if parsed.articles else "ok, no entries"] += 1
        articles += len(parsed.articles)
        for article in parsed.articles:
            assert article.published.tzinfo is UTC, path
            assert len(article.content_hash) == 64, path
            assert article.entry_id and "\n" not in article.title, path
            for text in (article.title, article.summary, article.content, article.author):
                assert not any(ord(c) < 32 and c not in "\n\t" for c in text), path
            assert article.url == "" or article.url.startswith(("http://", "https://")), path
    elapsed = time.monotonic() - started
    total = len(documents()) + len(FIXTURES)
    print(
        f"\ncorpus: {total} files ({len(documents())} feedparser + {len(FIXTURES)} fixtures): "
        f"{outcomes['ok']} with articles ({articles} articles), {outcomes['ok, no entries']} "
        f"feeds without entries, {outcomes['ParseError']} ParseError, {len(crashes)} crashes "
        "(exceptions other than ParseError, or a library exception ParseError had to wrap), "
        f"{elapsed:.1f}s"
    )
    assert crashes == []
    assert sum(outcomes.values()) == total
    # Most documents are feeds; those without entries test feed-level elements, and most
    # ParseErrors are bodies without entries that XML rejects (HTML entities without a DTD).
    assert outcomes["ok"] > 1000


def raw_result(path: Path) -> object:
    """feedparser's whole result for a document, as parse.py calls it, in a comparable form."""
    content = path.read_bytes()
    headers = {"content-type": "application/xml"} | headers_of(content)
    return plain(parse._feedparser(content, headers))


def plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "tm_year"):
        return [plain(item) for item in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value


def test_feedparser_tuning_changes_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """parse.py takes two hot spots out of feedparser (a deepcopy, a KeyError per lookup): every
    field of every result, entries and feed, must be what untuned feedparser returns."""
    if not parse.FEEDPARSER_TUNED:
        pytest.skip("feedparser is not a 6.0 release, so parse.py leaves it as shipped")
    paths = [*documents(), *FIXTURES]
    tuned = [raw_result(path) for path in paths]
    monkeypatch.setattr(feedparser.mixin, "copy", copy)
    monkeypatch.setattr(FeedParserDict, "get", parse._FEEDPARSER_GET)
    assert FeedParserDict().get("type") is None  # untuned now
    for path, result in zip(paths, tuned, strict=True):
        assert raw_result(path) == result, path


async def poll_documents(httpserver: HTTPServer, tmp_path: Path, paths: list[Path]) -> Counter[str]:
    bodies = {f"/c{n}": path.read_bytes() for n, path in enumerate(paths)}

    def serve(request: Request) -> Response:
        content = bodies[request.path]
        headers = {"content-type": "application/xml"} | headers_of(content)  # not werkzeug's
        return Response(content, headers=headers)  # default text/plain; charset=utf-8

    for route in bodies:
        httpserver.expect_request(route).respond_with_handler(serve)
    feeds = [(route[1:], httpserver.url_for(route)) for route in bodies]
    config = write_config(tmp_path, feeds=feeds, extra="defaults: {timeout: 10s}\nconcurrency: 8\n")
    runtime = Runtime.open(load_settings(config, environ={}), console=io.StringIO())
    try:
        outcomes, _ = await poll_once(runtime)
        for outcome in outcomes:
            if outcome.outcome == "failed":
                state = runtime.store.feed_state(outcome.feed)
                assert state.status == "failing" and state.last_error, outcome
        integrity = runtime.store.db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        runtime.close()
    assert integrity == "ok"
    assert len(outcomes) == len(paths)
    return Counter(outcome.outcome for outcome in outcomes)


async def test_a_sample_goes_through_a_whole_poll(httpserver: HTTPServer, tmp_path: Path) -> None:
    sample = documents()[::15] + FIXTURES  # every 15th document, across all folders
    counts = await poll_documents(httpserver, tmp_path, sample)
    assert set(counts) <= {"changed", "failed"}
    assert counts["changed"] > len(sample) // 2


@pytest.mark.soak
async def test_every_document_goes_through_a_whole_poll_soak(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    counts = await poll_documents(httpserver, tmp_path, [*documents(), *FIXTURES])
    print(f"\ncorpus through poll_once: {dict(counts)}")
    assert set(counts) <= {"changed", "failed"}
