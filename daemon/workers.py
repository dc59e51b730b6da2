"""Parses feeds in a separate process.

feedparser is pure Python and holds the GIL, so parsing in a thread never used the second core:
on a cold poll the parser and the database took turns. A worker process lets them overlap
(bench/RESULTS.md), and a feed that makes the parser blow up in memory or crash takes down the
worker, not the daemon: the feed is marked failing and a fresh worker starts on the next feed.
`parse_workers: 0` keeps parsing in a thread of the daemon (less memory, slower cold polls).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from daemon.errors import ParseError
from daemon.models import ParsedFeed
from daemon.parse import parse_feed

# Replace the worker, once idle, after this many feeds: the parser's heap only grows, so a
# fresh worker keeps memory flat for the cost of a ~0.3 s start. Only when idle, so two workers
# never run at once. (Not max_tasks_per_child, which can hang ProcessPoolExecutor on 3.11.)
MAX_FEEDS_PER_WORKER = 100


class ParserPool:
    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._submitted = 0
        self._in_flight = 0

    async def parse(
        self, content: bytes, headers: Mapping[str, str], *, url: str, fetched_at: datetime
    ) -> ParsedFeed:
        """`parse.parse_feed` in a worker. Raises ParseError, also when the worker died."""
        call = functools.partial(parse_feed, content, dict(headers), url=url, fetched_at=fetched_at)
        if self.workers <= 0:
            return await asyncio.to_thread(call)
        rotate = self._submitted >= MAX_FEEDS_PER_WORKER and self._in_flight == 0
        if self._executor is not None and rotate:
            self._executor.shutdown(wait=False)
            self._executor, self._submitted = None, 0
        if self._executor is None:
            # spawn, not fork: the daemon has threads and an event loop a fork would copy
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context)
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        self._submitted += 1
        self._in_flight += 1
        try:
            return await future
        except BrokenProcessPool as exc:
            self.close()
            raise ParseError(
                url, "the parser process died on this feed (out of memory or crashed)"
            ) from exc
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
