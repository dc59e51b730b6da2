"""Wires the stages into the two ways Vedette runs: once (`poll`, `demo`) and as a daemon (`run`).

The daemon: one scheduler job per feed, an outbox drain, a reload check (config and watchlists,
and SIGHUP), `/healthz` and `/metrics`, and a clean stop on SIGTERM/SIGINT that lets in-flight
polls and sends finish, closes the database and returns exit code 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from daemon.config import Settings, load_settings
from daemon.errors import ConfigError, VedetteError
from daemon.fetch import Fetcher
from daemon.metrics import Metrics
from daemon.models import Feed
from daemon.notify import AppriseNotifier, ConsoleNotifier, Notifier
from daemon.opml import read_opml
from daemon.outbox import DrainResult, Outbox
from daemon.pipeline import Pipeline, PollOutcome
from daemon.scheduler import Scheduler
from daemon.store import Store
from daemon.watchlists import WatchlistSet
from daemon.workers import ParserPool

logger = logging.getLogger(__name__)

OUTBOX_DRAIN_INTERVAL_S = 15.0
RELOAD_CHECK_INTERVAL_S = 5.0
STOP_TIMEOUT_S = 8.0
PRUNE_INTERVAL_S = 3600.0


def configured_feeds(settings: Settings) -> list[Feed]:
    """Feeds from `feeds:` plus the OPML file, if any (config wins on a name clash)."""
    feeds = list(settings.feeds)
    if settings.opml is not None:
        names = {feed.name for feed in feeds}
        for sub in read_opml(settings.opml):
            if sub.name not in names:
                feeds.append(settings.make_feed(sub.name, sub.url, sub.tags))
    return feeds


def build_notifier(
    settings: Settings, environ: Mapping[str, str] | None, console: TextIO
) -> Notifier:
    """Apprise when targets are configured, else alerts are printed to the console."""
    if settings.apprise_config is None and not settings.apprise_urls:
        return ConsoleNotifier(console)
    try:
        return AppriseNotifier(
            config_file=settings.apprise_config, urls=settings.apprise_urls, environ=environ
        )
    except ConfigError as exc:
        if exc.file is None:
            raise ConfigError(exc.message, file=str(settings.source), key=exc.key) from exc
        raise


@dataclass(slots=True)
class Runtime:
    """Everything one configuration needs to poll and alert."""

    settings: Settings
    store: Store
    watchlists: WatchlistSet
    notifier: Notifier
    metrics: Metrics = field(default_factory=Metrics)
    parser: ParserPool = field(default_factory=ParserPool)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        console: TextIO | None = None,
        check_integrity: bool = False,
    ) -> Runtime:
        """Open the database and load watchlists. `check_integrity` reads every page first (the
        daemon does, once): a damaged file is refused before anything is written to it."""
        notifier = build_notifier(settings, environ, console or sys.stdout)
        store = Store.open(settings.database, background_checkpoints=True)
        if check_integrity:
            try:
                store.check_integrity()
            except VedetteError:
                store.close()
                raise
        store.sync_feeds(configured_feeds(settings))
        watchlists = WatchlistSet(settings.watchlists_dir)
        watchlists.refresh()
        return cls(settings, store, watchlists, notifier, parser=ParserPool(settings.parse_workers))

    def fetcher(self) -> Fetcher:
        return Fetcher(
            user_agent=self.settings.user_agent,
            concurrency=self.settings.concurrency,
            per_host=self.settings.per_host,
        )

    def pipeline(self, fetcher: Fetcher) -> Pipeline:
        return Pipeline(
            settings=self.settings,
            store=self.store,
            fetcher=fetcher,
            watchlists=self.watchlists,
            metrics=self.metrics,
            parser=self.parser,
        )

    def outbox(self) -> Outbox:
        return Outbox(self.store, self.notifier, self.metrics)

    def close(self) -> None:
        self.parser.close()
        self.store.close()


async def poll_once(
    runtime: Runtime,
    names: Sequence[str] = (),
    *,
    on_done: Callable[[PollOutcome], None] | None = None,
) -> tuple[list[PollOutcome], DrainResult]:
    """Poll the named feeds (all when empty) once, ignoring backoff, then send due alerts."""
    feeds = runtime.store.active_feeds()
    if names:
        known = {feed.name for feed in feeds}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no feed named {', '.join(missing)}; see `vedette feeds list`")
        feeds = [feed for feed in feeds if feed.name in names]
    async with runtime.fetcher() as fetcher:
        pipeline = runtime.pipeline(fetcher)

        async def poll(feed: Feed) -> PollOutcome:
            try:
                outcome = await pipeline.poll_feed(feed, force=True)
            except VedetteError as exc:
                logger.error("poll_error feed=%s error=%r", feed.name, str(exc))
                outcome = PollOutcome(feed.name, "failed", error=str(exc))
            if on_done:
                on_done(outcome)
            return outcome

        outcomes = list(await asyncio.gather(*(poll(feed) for feed in feeds)))
    runtime.parser.close()  # while the loop that owns its sockets still runs
    drained = await runtime.outbox().drain(limit=10_000)
    return outcomes, drained


class Daemon:
    """`vedette run`."""

    def __init__(self, config_path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.config_path = config_path
        self.environ = environ
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._config_mtime = self._mtime()

    def _mtime(self) -> int:
        try:
            return self.config_path.stat().st_mtime_ns
        except OSError:
            return 0

    async def run(self) -> int:
        settings = load_settings(self.config_path, self.environ)
        runtime = Runtime.open(settings, environ=self.environ, check_integrity=True)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        try:
            async with runtime.fetcher() as fetcher:
                await self._serve(runtime, fetcher)
        finally:
            runtime.close()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        logger.info("daemon_stopped")
        return 0

    async def _serve(self, runtime: Runtime, fetcher: Fetcher) -> None:
        from daemon.web import WebServer  # only the daemon serves HTTP

        pipeline = runtime.pipeline(fetcher)
        outbox = runtime.outbox()

        async def poll(feed: Feed) -> None:
            outcome = await pipeline.poll_feed(feed)
            if outcome.alerts:
                await outbox.drain()

        scheduler = Scheduler(poll)
        scheduler.set_feeds(runtime.store.active_feeds())
        scheduler.every(OUTBOX_DRAIN_INTERVAL_S, outbox.drain, name="outbox")
        scheduler.every(PRUNE_INTERVAL_S, lambda: _prune(runtime), name="retention")
        scheduler.every(
            RELOAD_CHECK_INTERVAL_S, lambda: self._check_reload(runtime, scheduler), name="reload"
        )
        web = None
        if runtime.settings.http_listen:
            web = WebServer(
                runtime.settings.http_listen,
                runtime.metrics,
                lambda: _health(runtime, scheduler),
                lambda: runtime.metrics.observe_state(
                    runtime.store.alert_counts(), runtime.store.failing_feed_count()
                ),
            )
            await web.start()
        scheduler.start()
        logger.info(
            "daemon_started feeds=%d watchlists=%d database=%s",
            len(scheduler.feed_jobs()),
            len(runtime.watchlists.active()),
            runtime.settings.database,
        )
        await self._stop.wait()
        logger.info("daemon_stopping")
        cancelled = await scheduler.stop(timeout_s=STOP_TIMEOUT_S)
        if cancelled:
            logger.warning("daemon_abandoned_jobs count=%d", cancelled)
        if web is not None:
            await web.stop()

    async def _check_reload(self, runtime: Runtime, scheduler: Scheduler) -> None:
        runtime.watchlists.refresh()
        mtime = self._mtime()
        if mtime == self._config_mtime and not self._reload.is_set():
            return
        self._reload.clear()
        self._config_mtime = mtime
        try:
            settings = load_settings(self.config_path, self.environ)
            feeds = configured_feeds(settings)
        except ConfigError as exc:
            logger.error("config_invalid keeping=previous error=%r", str(exc))
            return
        runtime.store.sync_feeds(feeds)
        runtime.settings = settings
        scheduler.set_feeds(runtime.store.active_feeds())
        logger.info("config_reloaded feeds=%d", len(feeds))

    def request_stop(self) -> None:
        self._stop.set()


async def _prune(runtime: Runtime) -> None:
    cutoff = runtime.store.clock() - timedelta(seconds=runtime.settings.retention_s)
    removed = runtime.store.prune_articles(older_than=cutoff)
    if removed:
        logger.info("articles_pruned count=%d older_than=%s", removed, cutoff.date())


def _health(runtime: Runtime, scheduler: Scheduler) -> str | None:
    if not scheduler.running:
        return "scheduler is not running"
    try:
        runtime.store.check_writable()
    except VedetteError as exc:
        return f"database is not writable: {exc}"
    return None
