"""The parser process: results and ParseError cross the process boundary; a dead worker is a
failing feed, not a dead daemon, and the next feed gets a fresh worker."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest

from daemon.errors import ParseError
from daemon.workers import ParserPool
from support import Item, rss

NOW = datetime(2023, 1, 10, tzinfo=UTC)
FEED = rss([Item("Бої за Бахмут", "https://news.example/1", "", "1", NOW)]).encode()


async def test_parses_in_a_worker_and_errors_cross_back() -> None:
    pool = ParserPool(workers=1)
    try:
        parsed = await pool.parse(
            FEED, {"content-type": "application/rss+xml"}, url="http://x/", fetched_at=NOW
        )
        assert [a.title for a in parsed.articles] == ["Бої за Бахмут"]
        with pytest.raises(ParseError) as error:
            await pool.parse(b"", {}, url="http://x/empty", fetched_at=NOW)
        assert error.value.url == "http://x/empty" and "empty" in error.value.message
    finally:
        pool.close()


async def test_a_dead_worker_fails_one_feed_and_is_replaced() -> None:
    pool = ParserPool(workers=1)
    try:
        await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        assert pool._executor is not None
        for pid in list(pool._executor._processes):  # what an out-of-memory kill looks like
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ParseError, match="parser process died"):
            await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        parsed = await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        assert len(parsed.articles) == 1
    finally:
        pool.close()
