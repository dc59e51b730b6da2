from __future__ import annotations

import asyncio
import random

from daemon.models import Feed
from daemon.scheduler import Scheduler


async def test_one_job_per_feed_rebuilt_on_change() -> None:
    polled: list[str] = []

    async def poll(feed: Feed) -> None:
        polled.append(feed.name)

    scheduler = Scheduler(poll, rng=random.Random(1))
    scheduler.start()
    scheduler.set_feeds(
        [Feed("a", "http://a/", interval_s=300, jitter_s=10), Feed("b", "http://b/")]
    )
    jobs = scheduler._scheduler.get_jobs()  # inspected, not waited on
    assert sorted(job.name for job in jobs) == ["a", "b"]
    trigger = next(job.trigger for job in jobs if job.name == "a")
    assert trigger.interval.total_seconds() == 300 and trigger.jitter == 10
    assert str(trigger.timezone) == "UTC"
    scheduler.set_feeds([Feed("b", "http://b/"), Feed("c", "http://c/", interval_s=60)])
    assert sorted(scheduler.feed_jobs()) == ["b", "c"]
    assert await scheduler.stop() == 0
    assert not scheduler.running


async def test_stop_waits_for_in_flight_work_then_cancels_the_rest() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_poll(feed: Feed) -> None:
        started.set()
        await release.wait()

    scheduler = Scheduler(slow_poll)
    scheduler.set_feeds([Feed("a", "http://a/")])
    task = asyncio.ensure_future(scheduler._run_feed("a"))
    await asyncio.wait_for(started.wait(), timeout=5)
    assert await scheduler.stop(timeout_s=0.05) == 1  # abandoned, not left hanging
    await asyncio.wait_for(task, timeout=5)


async def test_a_crashing_job_is_logged_not_raised(caplog: object) -> None:
    async def broken(feed: Feed) -> None:
        raise RuntimeError("bug in a stage")

    scheduler = Scheduler(broken)
    scheduler.set_feeds([Feed("a", "http://a/")])
    await scheduler._run_feed("a")  # must not raise
    assert "job_crashed" in caplog.text  # type: ignore[attr-defined]
