"""Parses feeds in separate processes.

feedparser is pure Python and holds the GIL, so parsing in a thread never used the second core:
on a cold poll the parser and the database took turns. A worker process lets them overlap
(bench/RESULTS.md), and a feed that makes the parser blow up in memory or crash takes down the
worker, not the daemon: the feed is marked failing and a fresh worker starts on the next feed.
`parse_workers: 0` keeps parsing in a thread of the daemon (less memory, slower cold polls).

A worker is `python -m daemon.parseworker` talking over a socket pair, not a multiprocessing
pool: a spawned pool worker re-imports the whole daemon and brings a resource-tracker process,
together about 35 MB more than this. Workers live only while there is parsing to do: one that
has been idle for `idle_s` (1 s) exits, so between polls the daemon is a single process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pickle
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.errors import ParseError
from daemon.models import ParsedFeed
from daemon.parse import parse_feed
from daemon.parseworker import FRAME_HEADER, frame

logger = logging.getLogger(__name__)

# A worker holding more memory than this after a feed is replaced once drained: the parser's
# heap only grows, so one huge feed would otherwise keep its memory for the daemon's life.
MAX_WORKER_RESIDENT_KIB = 80 * 1024
IDLE_S = 1.0  # a worker restarts in ~0.1 s of CPU; between polls only the daemon stays
# Requests queued to one worker: enough that it never waits for the event loop between feeds,
# few enough that fetched bodies do not pile up in memory.
QUEUED_PER_WORKER = 3
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class ParserPool:
    def __init__(self, workers: int = 1, *, idle_s: float = IDLE_S) -> None:
        self.workers = workers
        self.idle_s = idle_s
        self._running: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(max(1, workers) * QUEUED_PER_WORKER)
        self._idle_timer: asyncio.TimerHandle | None = None

    async def parse(
        self,
        content: bytes,
        headers: Mapping[str, str],
        *,
        url: str,
        fetched_at: datetime,
        known_items: Collection[str] = (),
    ) -> ParsedFeed:
        """`parse.parse_feed` in a worker. Raises ParseError, also when the worker died."""
        request: dict[str, Any] = {
            "content": content,
            "headers": dict(headers),
            "url": url,
            "fetched_at": fetched_at,
            "known_items": frozenset(known_items),
        }
        if self.workers <= 0:
            return await asyncio.to_thread(functools.partial(parse_feed, **request))
        self._follow_loop(asyncio.get_running_loop())
        async with self._slots:
            self._cancel_idle_timer()
            worker = self._least_busy()
            try:
                status, value, resident_kib = await worker.call(request)
            except (EOFError, OSError) as exc:  # the worker is broken now: retired below
                raise ParseError(
                    url, "the parser process died on this feed (out of memory or crashed)"
                ) from exc
            finally:
                if worker.broken:  # died, stopped, or cancelled halfway through a request
                    self._retire(worker)
            if resident_kib > MAX_WORKER_RESIDENT_KIB:
                worker.retiring = True
            if worker.retiring and not worker.waiting:
                self._retire(worker)
            if not any(w.waiting for w in self._running):
                self._cancel_idle_timer()
                self._idle_timer = asyncio.get_running_loop().call_later(
                    self.idle_s, self._stop_idle
                )
        if status == "error":
            assert isinstance(value, BaseException)
            raise value
        assert isinstance(value, ParsedFeed)
        return value

    @property
    def running(self) -> int:
        """Worker processes alive now."""
        return len(self._running)

    def close(self) -> None:
        self._stop_all()

    def _least_busy(self) -> _Worker:
        usable = [w for w in self._running if not w.retiring and not w.broken]
        if len(usable) < self.workers and all(w.waiting for w in usable):
            worker = _Worker()
            self._running.append(worker)
            return worker
        return min(usable, key=lambda w: len(w.waiting))

    def _retire(self, worker: _Worker) -> None:
        if worker in self._running:
            self._running.remove(worker)
        worker.stop()

    def _follow_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Workers talk through one event loop's streams: `vedette demo` polls twice, each time
        with its own asyncio.run, and a new loop gets new workers."""
        if self._loop is not loop:
            self._stop_all()
            self._loop = loop
            self._slots = asyncio.Semaphore(max(1, self.workers) * QUEUED_PER_WORKER)

    def _stop_idle(self) -> None:
        self._idle_timer = None
        for worker in [w for w in self._running if not w.waiting]:
            self._retire(worker)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = None

    def _stop_all(self) -> None:
        self._cancel_idle_timer()
        while self._running:
            self._running.pop().stop()


class _Worker:
    """One `daemon.parseworker` process and our end of its socket.

    Requests are queued to it (up to QUEUED_PER_WORKER), so it starts the next feed the moment
    it finishes one, instead of waiting for the event loop to take its answer while storing:
    one request at a time left the worker idle half the time (cold 1,000 feeds: 117 s against
    68 s). Answers come back in order and are read on the event loop, not in a thread, so the
    unpickled articles live in the main thread's heap (a thread pool's malloc arenas held on to
    tens of MB more)."""

    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair()
        environ = dict(os.environ)
        # The child must import this very `daemon` package, wherever it was loaded from.
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, environ.get("PYTHONPATH")) if p
        )
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon.parseworker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=environ,
            )
        self.waiting: deque[asyncio.Future[tuple[str, object, int]]] = deque()
        self.sending = asyncio.Lock()
        self.broken = False  # dead, stopped, or a request half sent: no further use
        self.retiring = False  # grew too big: no new requests, stopped once drained
        self.writer: asyncio.StreamWriter | None = None
        self.replies: asyncio.Task[None] | None = None

    async def _connect(self) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(sock=self.sock, limit=2**20)
        self.writer = writer
        self.replies = asyncio.get_running_loop().create_task(self._read_replies(reader))
        return writer

    async def call(self, request: dict[str, Any]) -> tuple[str, object, int]:
        """Queue one request and wait for its answer. A caller cancelled while waiting leaves
        its answer to be read and dropped, so the next caller gets its own."""
        data = frame(request)
        future: asyncio.Future[tuple[str, object, int]]
        async with self.sending:
            if self.broken or (self.replies is not None and self.replies.done()):
                raise EOFError("the parser process is gone")
            future = asyncio.get_running_loop().create_future()
            self.waiting.append(future)
            try:
                writer = self.writer or await self._connect()
                writer.write(data)
                await writer.drain()
            except BaseException:
                self.broken = True
                future.cancel()  # nobody will await it: failing it later would log an error
                raise
        return await future

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(FRAME_HEADER.size)
                (length,) = FRAME_HEADER.unpack(header)
                reply = pickle.loads(await reader.readexactly(length))
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(reply)
        except (EOFError, OSError) as exc:  # the worker died: everyone waiting hears it
            self.broken = True
            self._fail_waiting(f"the parser process is gone: {exc!r}")

    def _fail_waiting(self, reason: str) -> None:
        """Nobody may wait forever for an answer that will not come."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(EOFError(reason))

    def stop(self) -> None:
        """Close the socket, which makes a worker exit once it has answered; kill it when it is
        broken, mid-parse for nobody, or slow to go."""
        mid_parse = self.broken or bool(self.waiting)
        self.broken = True
        if self.replies is not None:
            self.replies.cancel()
        self._fail_waiting("the parser process was stopped")
        try:
            if self.writer is None:
                self.sock.close()
            else:
                if not self.writer.is_closing() and self.writer.can_write_eof():
                    self.writer.write_eof()  # at once: close() waits for the loop's next turn
                self.writer.close()
        except RuntimeError:  # the loop that owned the stream has ended (after asyncio.run)
            self.sock.close()
        if mid_parse:
            self.process.kill()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        logger.debug("parser_worker_stopped pid=%d", self.process.pid)
