"""The parser processes: results and ParseError cross the process boundary; a dead worker is a
failing feed, not a dead daemon, and the next feed gets a fresh worker; idle workers exit."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from datetime import UTC, datetime

import pytest

from daemon import workers
from daemon.errors import ParseError
from daemon.parseworker import NICENESS
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
        assert pool.running == 1
        with pytest.raises(ParseError) as error:
            await pool.parse(b"", {}, url="http://x/empty", fetched_at=NOW)
        assert error.value.url == "http://x/empty" and "empty" in error.value.message
    finally:
        pool.close()
    assert pool.running == 0


async def test_workers_run_at_a_lower_priority_than_the_daemon() -> None:
    pool = ParserPool(workers=1)
    try:
        await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        (worker,) = pool._running
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == min(19, ours + NICENESS)
    finally:
        pool.close()


async def test_a_dead_worker_fails_one_feed_and_is_replaced() -> None:
    pool = ParserPool(workers=1)
    try:
        await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        (worker,) = pool._running
        os.kill(worker.process.pid, signal.SIGKILL)  # what an out-of-memory kill looks like
        with pytest.raises(ParseError, match="parser process died"):
            await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        parsed = await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        assert len(parsed.articles) == 1
    finally:
        pool.close()


async def test_a_worker_that_dies_before_reading_fails_the_feed_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The body cannot be sent: the caller gets a ParseError, and no future is left failed
    for nobody, which asyncio would log as "Future exception was never retrieved"."""
    monkeypatch.setattr(workers.sys, "executable", "/bin/false")  # exits before reading
    pool = ParserPool(workers=1)
    body = b"<rss>" + b"x" * 8_000_000  # more than the socket buffers hold
    try:
        for _ in range(3):
            with pytest.raises(ParseError, match="parser process died"):
                await pool.parse(body, {}, url="http://x/", fetched_at=NOW)
    finally:
        pool.close()
    gc.collect()  # a failed future nobody retrieved logs when it is collected
    assert "never retrieved" not in caplog.text


async def test_idle_workers_exit_and_come_back_when_needed() -> None:
    pool = ParserPool(workers=2, idle_s=0.05)
    try:
        first = await asyncio.gather(
            *(pool.parse(FEED, {}, url=f"http://x/{n}", fetched_at=NOW) for n in range(6))
        )
        assert all(len(p.articles) == 1 for p in first)
        assert 1 <= pool.running <= 2  # never more processes than `parse_workers`
        pids = [w.process for w in pool._running]
        deadline = asyncio.get_running_loop().time() + 10
        while pool.running and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)  # the idle timer runs on this loop: poll, with a deadline
        assert pool.running == 0
        assert all(p.returncode is not None for p in pids)  # exited and reaped
        again = await pool.parse(FEED, {}, url="http://x/", fetched_at=NOW)
        assert len(again.articles) == 1
    finally:
        pool.close()


async def test_a_cancelled_parse_leaves_no_answer_for_the_next_caller() -> None:
    pool = ParserPool(workers=1)
    try:
        task = asyncio.ensure_future(pool.parse(FEED, {}, url="http://x/a", fetched_at=NOW))
        await asyncio.sleep(0)  # let it reach the worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        parsed = await pool.parse(FEED, {}, url="http://x/b", fetched_at=NOW)
        assert len(parsed.articles) == 1
    finally:
        pool.close()


BIG_FEED = rss([Item(f"Report {n}", f"https://news.example/{n}", "text " * 50, str(n), NOW)
                for n in range(3000)]).encode()  # fmt: skip


async def queued(pool: ParserPool) -> None:
    """Until a request is queued to a worker, with a deadline."""
    deadline = asyncio.get_running_loop().time() + 10
    while not any(w.waiting for w in pool._running):
        assert asyncio.get_running_loop().time() < deadline, "no request reached a worker"
        await asyncio.sleep(0)


async def test_the_idle_timer_never_stops_a_worker_with_a_parse_in_flight() -> None:
    pool = ParserPool(workers=1, idle_s=0.01)
    try:
        task = asyncio.ensure_future(pool.parse(BIG_FEED, {}, url="http://x/", fetched_at=NOW))
        await queued(pool)
        pool._stop_idle()  # what the timer does when it fires
        assert len((await task).articles) == 3000
    finally:
        pool.close()


async def test_closing_the_pool_mid_parse_fails_the_parse_instead_of_hanging() -> None:
    pool = ParserPool(workers=1)
    task = asyncio.ensure_future(pool.parse(BIG_FEED, {}, url="http://x/", fetched_at=NOW))
    await queued(pool)
    pool.close()
    with pytest.raises(ParseError, match="parser process"):
        await asyncio.wait_for(task, timeout=30)
    assert pool.running == 0
