"""Delivers alerts from the outbox, target by target, and records every attempt.

Each drain first plans fresh alerts: an alert goes out on its own now, or joins its watchlist's
held batch (digest window, quiet hours, rate cap) that goes out later as ONE digest message;
every alert keeps its own row, so `vedette alerts list` still shows each story.

Delivery is at-least-once. An alert (or a digest) is marked sent only when every target its
tags select has succeeded, and each success is logged in `deliveries` before the next target is
tried, so after a crash only the one send that was in flight can be repeated; a target that
already succeeded is never sent to again. Every message carries a stable id
(`vedette-alert-N`, `vedette-digest-N`) so a receiver can drop that one repeat. Failed sends
back off exponentially until they expire, then turn `dead` (revivable with `alerts retry`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.alert import OPS_KIND, retry_delay_s
from daemon.digest import Policy, Release, hold_note, plan_release
from daemon.errors import NotifyError
from daemon.metrics import Metrics
from daemon.models import Alert
from daemon.notify import ConsoleNotifier, Notifier
from daemon.render import Message, render_alert, render_digest, render_notice
from daemon.store import Store

logger = logging.getLogger(__name__)

DIGEST_MAX_STORIES = 25  # longer batches go out as several digests, so chat limits hold
LOG_CHANNEL = "log://"  # where an ops notice goes when no target carries the ops tag


@dataclass(frozen=True, slots=True)
class DrainResult:
    """Alerts sent, queued for retry and given up on in one drain; `held` still wait for a
    digest window, quiet hours or the rate cap; `messages` were delivered."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    messages: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send to one target; `error` is None when the target accepted it."""

    target: str
    error: str | None


def alert_message_id(alert_id: int) -> str:
    return f"vedette-alert-{alert_id}"


class Outbox:
    """Sends what is due. Apprise calls block, so they run in a worker thread (console writes
    do not); the database is only touched from the caller's thread."""

    def __init__(self, store: Store, notifier: Notifier, metrics: Metrics | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.metrics = metrics
        self._lock = asyncio.Lock()

    async def drain(self, *, limit: int = 500) -> DrainResult:
        async with self._lock:  # one drain at a time, so no alert is sent by two drains
            self.plan()
            sent = failed = dead = messages = 0
            for group in self._due_groups(limit):
                outcome = await self._deliver(group)
                sent += len(group) if outcome == "sent" else 0
                failed += len(group) if outcome == "queued" else 0
                dead += len(group) if outcome == "dead" else 0
                messages += outcome == "sent"
            return DrainResult(sent, failed, dead, self.store.count_held(), messages)

    def plan(self) -> None:
        """Give each fresh alert its release time: now on its own, or with its list's batch."""
        now = self.store.clock()
        with self.store.transaction():  # one commit for a burst, and plans see each other
            for alert in self.store.unplanned_alerts():
                self._plan_one(alert, now)

    def _plan_one(self, alert: Alert, now: datetime) -> None:
        """Now on its own, or later with the list's held batch (digest, quiet hours, cap)."""
        policy = Policy.from_payload(alert.payload.get("delivery"))
        recent: Sequence[datetime] = ()
        if policy.rate is not None:
            since = now - timedelta(seconds=policy.rate.period_s)
            recent = self.store.message_times(alert.watchlist, since=since)
        batch = self.store.open_batch(alert.watchlist)
        release = plan_release(
            policy, now, open_batch=Release(*batch) if batch else None, recent=recent
        )
        lease = alert.expires - alert.created  # retry for as long after release as before
        self.store.plan_alert(
            alert.id,
            release_at=release.at,
            hold=release.hold,
            expires=max(alert.expires, release.at + lease),
        )
        if release.hold:
            logger.info(
                "alert_held alert_id=%d watchlist=%s until=%s reason=%s",
                alert.id,
                alert.watchlist,
                release.at.isoformat(),
                release.hold,
            )

    def _due_groups(self, limit: int) -> list[list[Alert]]:
        """Each group is one message: an alert alone, or (part of) a held batch."""
        groups: list[list[Alert]] = []
        batches = set()
        for alert in self.store.due_alerts(limit=limit, planned_only=True):
            if alert.hold is None or alert.release_at is None:
                groups.append([alert])
                continue
            key = (alert.watchlist, alert.release_at)
            if key in batches:
                continue
            batches.add(key)
            members = self.store.batch_alerts(*key)
            for start in range(0, len(members), DIGEST_MAX_STORIES):
                groups.append(members[start : start + DIGEST_MAX_STORIES])
        return groups

    async def _deliver(self, group: list[Alert]) -> str:
        message_id, message = _render(group)
        ops = group[0].payload.get("kind") == OPS_KIND
        tag_sets = list(dict.fromkeys(alert.tags for alert in group))
        select = self.notifier.tagged_targets if ops else self.notifier.targets_for
        targets = list(dict.fromkeys(t for tags in tag_sets for t in select(tags)))
        if ops and not targets:
            return self._log_notice(group, message_id, message)
        done = self._done_targets(group)
        errors = []
        if not targets:
            tags = ", ".join(sorted({t for tags in tag_sets for t in tags}))
            errors.append(f"no notification target has tag(s) {tags}")
        unlogged: Attempt | None = None  # logged before the next send, or with the outcome
        for target in targets:
            if target in done:
                continue
            if unlogged is not None:
                with self.store.transaction():
                    self._log_attempt(group, message_id, unlogged)
            error = await self._send(target, message)
            unlogged = Attempt(target, error)
            if self.metrics:
                self.metrics.deliveries.labels("ok" if error is None else "failed").inc()
            if error is not None:
                errors.append(f"{target}: {error}")
        if errors:
            return self._mark_failed(group, message_id, "; ".join(errors), unlogged)
        return self._mark_sent(group, message_id, unlogged, len(targets))

    async def _send(self, target: str, message: Message) -> str | None:
        """Send to one target: None when it accepted, else why not (already redacted).

        Apprise blocks, so it sends from a worker thread. The console is written in place, as
        the log is: the hop to a thread would cost twenty times the write."""
        try:
            if isinstance(self.notifier, ConsoleNotifier):
                self.notifier.send(target, message)
            else:
                await asyncio.to_thread(self.notifier.send, target, message)
        except NotifyError as exc:
            return str(exc)
        return None

    def _log_attempt(self, group: list[Alert], message_id: str, attempt: Attempt | None) -> None:
        """Record one send in the delivery log, once per alert of the message."""
        if attempt is None:
            return
        for alert in group:
            self.store.record_delivery(
                alert.id,
                channel=attempt.target,
                ok=attempt.error is None,
                error=attempt.error,
                message_id=message_id,
            )

    def _done_targets(self, group: list[Alert]) -> set[str]:
        """Targets that already accepted this message for every alert in it."""
        done: set[str] | None = None
        for alert in group:
            ok = {d["channel"] for d in self.store.deliveries(alert.id) if d["status"] == "ok"}
            done = ok if done is None else done & ok
        return done or set()

    def _mark_sent(
        self, group: list[Alert], message_id: str, unlogged: Attempt | None, targets: int
    ) -> str:
        with self.store.transaction():  # the last attempt and the outcome in one commit
            self._log_attempt(group, message_id, unlogged)
            for alert in group:
                self.store.mark_sent(alert.id)
        logger.info(
            "alert_sent message_id=%s watchlist=%s alerts=%d targets=%d",
            message_id,
            group[0].watchlist,
            len(group),
            targets,
        )
        return "sent"

    def _mark_failed(
        self, group: list[Alert], message_id: str, error: str, unlogged: Attempt | None
    ) -> str:
        attempts = max(alert.attempts for alert in group) + 1
        retry_at = self.store.clock() + timedelta(seconds=retry_delay_s(attempts))
        expired = retry_at > max(alert.expires for alert in group)
        with self.store.transaction():  # the last attempt and the outcome in one commit
            self._log_attempt(group, message_id, unlogged)
            for alert in group:
                self.store.mark_failed(
                    alert.id, error=error, next_attempt=None if expired else retry_at
                )
        logger.warning(
            "alert_%s message_id=%s watchlist=%s error=%r",
            "dead" if expired else "retry",
            message_id,
            group[0].watchlist,
            error[:300],
        )
        return "dead" if expired else "queued"

    def _log_notice(self, group: list[Alert], message_id: str, message: Message) -> str:
        """No target carries the ops tag: the notice goes to the log, and is recorded so."""
        logger.warning(
            "ops_notice message_id=%s title=%r detail=%r (no notification target has tag %s)",
            message_id,
            message.title,
            message.text.splitlines()[0] if message.text else "",
            ", ".join(group[0].tags) or "ops",
        )
        with self.store.transaction():
            for alert in group:
                self.store.record_delivery(
                    alert.id, channel=LOG_CHANNEL, ok=True, error=None, message_id=message_id
                )
                self.store.mark_sent(alert.id)
        return "sent"


def _render(group: list[Alert]) -> tuple[str, Message]:
    """The message for a group, with its stable id (the same on every retry)."""
    first = group[0]
    if len(group) == 1:
        message_id = alert_message_id(first.id)
        if first.payload.get("kind") == OPS_KIND:
            title, body = str(first.payload.get("title", "")), str(first.payload.get("body", ""))
            return message_id, render_notice(title, body, message_id=message_id)
        return message_id, render_alert(first.payload, message_id=message_id)
    message_id = f"vedette-digest-{first.id}"
    note = hold_note(first.hold, Policy.from_payload(first.payload.get("delivery")))
    stories = [(alert_message_id(alert.id), alert.payload) for alert in group]
    return message_id, render_digest(stories, message_id=message_id, note=note)
