"""Moves one feed through every stage: fetch → parse → store → match → alert outbox.

`Pipeline.poll_feed` is the one place a feed's failure is caught and recorded (error count, last
error, next poll with exponential backoff). A failing feed is state, never a crash: every other
feed goes on, and a failing feed is retried forever, at most `MAX_BACKOFF_S` apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.alert import OPS_WATCHLIST, feed_notice, hedge_pattern, within_backlog
from daemon.alerting import AlertRecorder
from daemon.config import Settings
from daemon.errors import FeedError, FetchError
from daemon.fetch import Fetcher
from daemon.logs import redact
from daemon.metrics import Metrics
from daemon.models import Clock, Feed, FeedState, FetchResult, NotModified, ParsedFeed, utc_now
from daemon.store import Store
from daemon.storybook import StoryBook
from daemon.watchlists import WatchlistSet
from daemon.workers import ParserPool

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: str
    outcome: str  # changed | not_modified | failed | skipped
    new: int = 0
    updated: int = 0
    alerts: int = 0
    error: str | None = None


def backoff_s(
    error_count: int, interval_s: float, retry_after_s: float | None, rng: random.Random
) -> float:
    """Delay before retrying a failing feed: the interval doubled per consecutive failure,
    capped at 12 h, never sooner than the server's Retry-After, spread by ±10 %."""
    # The exponent is bounded: 2**1024 overflows a float, and a feed is never given up on.
    delay = interval_s * 2 ** min(max(0, error_count - 1), 32) * rng.uniform(0.9, 1.1)
    delay = min(MAX_BACKOFF_S, delay)  # after the spread, so the cap holds (issue #8)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_BACKOFF_S))
    return float(delay)


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        fetcher: Fetcher,
        watchlists: WatchlistSet,
        metrics: Metrics | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        parser: ParserPool | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.watchlists = watchlists
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.parser = parser or ParserPool(workers=0)
        # Feeds between fetch and store at once. Fetching outruns parsing, and without a bound
        # every fetched body waited in memory for the parser: the daemon's RSS reached 160 MB
        # in the first seconds of a 1,000-feed cold start.
        self._in_progress = asyncio.Semaphore(2 * settings.concurrency)
        self.storybook = StoryBook(store, clock=clock)
        self.alerts = AlertRecorder(
            store,
            self.storybook,
            expiry_s=settings.alert_expiry_s,
            hedges=hedge_pattern(settings.hedges),
        )

    async def poll_feed(self, feed: Feed, *, force: bool = False) -> PollOutcome:
        """Poll one feed now (unless it is backing off and `force` is False)."""
        async with self._in_progress:
            return await self._poll_feed(feed, force=force)

    async def _poll_feed(self, feed: Feed, *, force: bool) -> PollOutcome:
        state = self.store.feed_state(feed.name)
        now = self.clock()
        if not force and state.next_poll is not None and state.next_poll > now:
            return PollOutcome(feed.name, "skipped")
        started = time.monotonic()
        try:
            result = await self.fetcher.fetch(
                state.url,
                etag=state.etag,
                last_modified=state.last_modified,
                timeout_s=feed.timeout_s,
                max_bytes=feed.max_bytes,
            )
            if self.metrics:
                self.metrics.fetch_seconds.observe(time.monotonic() - started)
            if isinstance(result, NotModified):
                return self._not_modified(feed, state, result)
            parsed = await self.parser.parse(
                result.content,
                result.headers,
                url=result.url,
                fetched_at=now,
                known_items=state.item_digests,
            )
        except FeedError as exc:
            return self._failed(feed, state, exc, now)
        return self._changed(feed, state, result, parsed, now)

    def _next_poll(self, feed: Feed, now: datetime) -> datetime:
        return now + timedelta(seconds=feed.interval_s)

    def _not_modified(self, feed: Feed, state: FeedState, result: NotModified) -> PollOutcome:
        self.store.record_success(
            feed.name,
            url=result.permanent_url or state.url,
            etag=result.etag,
            last_modified=result.last_modified,
            next_poll=self._next_poll(feed, self.clock()),
        )
        self._log_recovery(feed, state)
        self._count("not_modified")
        logger.debug("poll_not_modified feed=%s", feed.name)
        return PollOutcome(feed.name, "not_modified")

    def _changed(
        self, feed: Feed, state: FeedState, result: FetchResult, parsed: ParsedFeed, now: datetime
    ) -> PollOutcome:
        self.watchlists.refresh()
        matcher = self.watchlists.matcher
        by_name = {w.name: w for w in matcher.watchlists}
        first_poll = not self.store.has_articles(feed.name)
        new = updated = alerts = 0
        self.storybook.prune()
        with self.store.transaction(), self.storybook.forget_on_error():
            changed = self.store.upsert_articles(feed.name, parsed.articles, fetched=now)
            for stored, is_new in changed:
                new += is_new
                updated += not is_new
                fields = stored.article.text_fields()
                for match in matcher.match(fields, feed_name=feed.name, feed_tags=feed.tags):
                    self.store.add_match(stored.id, match)
                    if self.metrics:
                        self.metrics.matches.labels(match.watchlist).inc()
                    if not within_backlog(
                        stored.article.published,
                        first_poll=first_poll,
                        backlog_s=self.settings.alert_backlog_s,
                        now=now,
                    ):
                        continue
                    watchlist = by_name[match.watchlist]
                    alerts += self.alerts.record(stored, match, watchlist, feed, now=now)
            self.store.record_success(
                feed.name,
                url=result.permanent_url or state.url,
                etag=result.etag,
                last_modified=result.last_modified,
                next_poll=self._next_poll(feed, now),
                title=parsed.title,
                item_digests=parsed.item_digests,
                warning=f"feed is malformed but usable: {parsed.bozo_reason}"
                if parsed.bozo_reason
                else None,
            )
        self._log_recovery(feed, state)
        self._count("changed")
        if self.metrics:
            self.metrics.articles.labels("new").inc(new)
            self.metrics.articles.labels("updated").inc(updated)
        logger.log(
            logging.INFO if new or updated else logging.DEBUG,
            "poll_done feed=%s entries=%d new=%d updated=%d alerts=%d",
            feed.name,
            len(parsed.articles),
            new,
            updated,
            alerts,
        )
        return PollOutcome(feed.name, "changed", new, updated, alerts)

    def _failed(self, feed: Feed, state: FeedState, exc: FeedError, now: datetime) -> PollOutcome:
        retry_after = exc.retry_after_s if isinstance(exc, FetchError) else None
        delay = backoff_s(state.error_count + 1, feed.interval_s, retry_after, self.rng)
        retry_at = now + timedelta(seconds=delay)
        # Try again when the outage reaches `feed_failing_after`, so the ops notice is not late
        # by a long backoff (issue #5). A server's Retry-After still wins.
        limit = (state.first_failed or now) + timedelta(seconds=self.settings.feed_failing_after_s)
        if retry_after is None and now < limit < retry_at:
            retry_at, delay = limit, (limit - now).total_seconds()
        with self.store.transaction():
            failed = self.store.record_failure(feed.name, error=exc.message, next_poll=retry_at)
            self._notify_failing(feed, failed, now)
        self._count("failed")
        logger.warning(
            "poll_failed feed=%s url=%s errors=%d retry_in_s=%d error=%r",
            feed.name,
            redact(state.url),  # a feed URL may carry a password (STYLE: never log raw URLs)
            failed.error_count,
            delay,
            exc.message,
        )
        return PollOutcome(feed.name, "failed", error=exc.message)

    def _log_recovery(self, feed: Feed, state: FeedState) -> None:
        if state.status == "failing":
            logger.info("feed_recovered feed=%s after_errors=%d", feed.name, state.error_count)
        with self.store.transaction():
            # Keyed on the flag, not on `state`, so a crash right after the success was stored
            # still yields the "recovered" notice on the next good poll.
            if self.store.set_failing_alerted(feed.name, False):
                self._enqueue_ops("recovered", feed, state, self.clock())

    def _notify_failing(self, feed: Feed, state: FeedState, now: datetime) -> None:
        """One "feed failing" ops notice per outage, once it has lasted `feed_failing_after`."""
        since = state.first_failed
        if since is None or (now - since).total_seconds() < self.settings.feed_failing_after_s:
            return
        if self.store.set_failing_alerted(feed.name, True):
            logger.warning(
                "feed_failing feed=%s since=%s errors=%d", feed.name, since, state.error_count
            )
            self._enqueue_ops("failing", feed, state, now)

    def _enqueue_ops(self, event: str, feed: Feed, state: FeedState, now: datetime) -> None:
        """Queue an ops notice for the `ops_tag` targets (the outbox logs it when none exist)."""
        if self.settings.ops_tag is None:
            return
        key, payload = feed_notice(event, feed, state, now=now)
        self.store.enqueue_alert(
            watchlist=OPS_WATCHLIST,
            article_id=0,
            story_key=key,
            tags=(self.settings.ops_tag,),
            payload=payload,
            expires=now + timedelta(seconds=self.settings.alert_expiry_s),
        )

    def _count(self, outcome: str) -> None:
        if self.metrics:
            self.metrics.polls.labels(outcome).inc()
