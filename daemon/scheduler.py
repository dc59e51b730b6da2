"""One APScheduler job per feed (interval + jitter, in UTC), plus the outbox drain.

The only module importing apscheduler. Jobs are asyncio coroutines on the daemon's loop; the
scheduler tracks what is in flight so `stop()` can let polls and sends finish before exit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from daemon.models import Feed

logger = logging.getLogger(__name__)

FEED_JOB_PREFIX = "feed:"


class Scheduler:
    """Runs `poll(feed)` for every feed on its interval, and `tick()` jobs for housekeeping."""

    def __init__(
        self,
        poll: Callable[[Feed], Awaitable[object]],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._poll = poll
        self._rng = rng or random.Random()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._feeds: dict[str, Feed] = {}
        self._in_flight: set[asyncio.Task[object]] = set()
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running) and not self._stopping

    def start(self) -> None:
        self._scheduler.start()

    def set_feeds(self, feeds: Sequence[Feed]) -> None:
        """Make the jobs match `feeds`: add new ones (first run spread over the jitter window),
        reschedule changed ones, remove the rest."""
        wanted = {feed.name: feed for feed in feeds}
        for name in set(self._feeds) - set(wanted):
            self._scheduler.remove_job(FEED_JOB_PREFIX + name)
        now = datetime.now(UTC)
        for name, feed in wanted.items():
            previous = self._feeds.get(name)
            if previous == feed:
                continue
            first_run = now + timedelta(seconds=self._rng.uniform(0, max(feed.jitter_s, 1.0)))
            self._scheduler.add_job(
                self._run_feed,
                IntervalTrigger(
                    seconds=feed.interval_s, jitter=feed.jitter_s or None, timezone=UTC
                ),
                args=[name],
                id=FEED_JOB_PREFIX + name,
                name=name,
                replace_existing=True,
                next_run_time=first_run,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(feed.interval_s),
            )
        self._feeds = wanted

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], *, name: str) -> None:
        """A housekeeping job (outbox drain, reload checks)."""
        self._scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            args=[job, name],
            id=name,
            name=name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
        )

    def feed_jobs(self) -> dict[str, datetime | None]:
        """Feed name → next run time (for tests and `/healthz`)."""
        return {
            job.name: job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id.startswith(FEED_JOB_PREFIX)
        }

    async def _run_feed(self, name: str) -> None:
        feed = self._feeds.get(name)
        if feed is None or self._stopping:
            return
        await self._guarded(lambda: self._poll(feed), f"poll {name}")

    async def _guarded(self, job: Callable[[], Awaitable[object]], name: str) -> None:
        """The one catch-all: a bug in one job is logged and never stops the daemon."""
        if self._stopping:
            return
        task = asyncio.ensure_future(job())
        self._in_flight.add(task)
        try:
            await task
        except asyncio.CancelledError:
            logger.info("job_cancelled job=%r", name)
        except Exception:
            logger.exception("job_crashed job=%r", name)
        finally:
            self._in_flight.discard(task)

    async def stop(self, *, timeout_s: float = 8.0) -> int:
        """Stop taking new work, wait for in-flight jobs up to `timeout_s`, cancel the rest.
        Returns how many jobs had to be cancelled."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        pending = set(self._in_flight)
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=timeout_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=1.0)
        return len(still)
