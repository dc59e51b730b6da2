"""Delivers due alerts from the outbox, target by target, and records every attempt.

An alert is marked sent only when every target its tags select has succeeded; a target that
already succeeded is not sent to again on retry. Failed alerts back off exponentially until they
expire, then turn `dead` (visible in `vedette alerts list`, revivable with `alerts retry`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from daemon.alert import retry_delay_s
from daemon.metrics import Metrics
from daemon.models import Alert
from daemon.notify import Notifier
from daemon.render import render_alert
from daemon.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DrainResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0


class Outbox:
    """Sends what is due. Apprise calls block, so they run in a worker thread; the database is
    only touched from the caller's thread."""

    def __init__(self, store: Store, notifier: Notifier, metrics: Metrics | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.metrics = metrics
        self._lock = asyncio.Lock()

    async def drain(self, *, limit: int = 500) -> DrainResult:
        async with self._lock:  # one drain at a time, so no alert is sent by two drains
            sent = failed = dead = 0
            for alert in self.store.due_alerts(limit=limit):
                outcome = await self._deliver(alert)
                sent += outcome == "sent"
                failed += outcome == "queued"
                dead += outcome == "dead"
            return DrainResult(sent, failed, dead)

    async def _deliver(self, alert: Alert) -> str:
        message = render_alert(alert.payload)
        targets = self.notifier.targets_for(alert.tags)
        done = {d["channel"] for d in self.store.deliveries(alert.id) if d["status"] == "ok"}
        errors = []
        if not targets:
            errors.append(f"no notification target has tag(s) {', '.join(alert.tags)}")
        for target in targets:
            if target in done:
                continue
            error = await asyncio.to_thread(self.notifier.send, target, message)
            self.store.record_delivery(alert.id, channel=target, ok=error is None, error=error)
            if self.metrics:
                self.metrics.deliveries.labels("ok" if error is None else "failed").inc()
            if error is not None:
                errors.append(f"{target}: {error}")
        if not errors:
            self.store.mark_sent(alert.id)
            logger.info(
                "alert_sent alert_id=%d watchlist=%s targets=%d",
                alert.id,
                alert.watchlist,
                len(targets),
            )
            return "sent"
        now = self.store.clock()
        retry_at = now + timedelta(seconds=retry_delay_s(alert.attempts + 1))
        expired = retry_at > alert.expires
        self.store.mark_failed(
            alert.id, error="; ".join(errors), next_attempt=None if expired else retry_at
        )
        logger.warning(
            "alert_%s alert_id=%d watchlist=%s error=%r",
            "dead" if expired else "retry",
            alert.id,
            alert.watchlist,
            "; ".join(errors)[:300],
        )
        return "dead" if expired else "queued"
