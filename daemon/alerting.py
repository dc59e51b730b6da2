"""Records a matched article in the alert outbox, story by story (SPEC §4 "Alert", issue #9).

- The first article of a story alerts (once `min_sources` distinct feeds carry it).
- A later article of the same story joins the alert while it is unsent ("also reported by");
  once sent, it produces at most one follow-up per window, never a second full alert.
- A source that reports the story without a hedge lifts the "unconfirmed" label.
Everything happens inside the caller's transaction, so the outbox and the matches agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from daemon.alert import (
    DEFAULT_HEDGES,
    add_source,
    build_payload,
    followup_key,
    followup_payload,
    is_unconfirmed,
    story_alert_key,
)
from daemon.models import Feed, Match, StoredArticle, Watchlist
from daemon.store import Store
from daemon.storybook import StoryBook


class AlertRecorder:
    def __init__(
        self,
        store: Store,
        storybook: StoryBook,
        *,
        expiry_s: float,
        hedges: re.Pattern[str] = DEFAULT_HEDGES,
    ) -> None:
        self.store = store
        self.storybook = storybook
        self.expiry_s = expiry_s
        self.hedges = hedges

    def record(
        self,
        stored: StoredArticle,
        match: Match,
        watchlist: Watchlist,
        feed: Feed,
        *,
        now: datetime,
    ) -> int:
        """Add or update the outbox for this match; returns how many alerts were added."""
        story_id = self.storybook.story_for(stored)
        key = story_alert_key(story_id)
        sources = self.store.story_feeds(story_id)
        if len(sources) < watchlist.min_sources:
            return 0  # held: the story alerts when enough feeds carry it
        hedged = is_unconfirmed(stored.article.text_fields(), self.hedges)
        existing = self.store.story_alert(watchlist.name, key)
        if existing is None:
            payload = build_payload(stored, match, watchlist, feed, self.hedges)
            payload["story_id"] = story_id
            payload["also_reported_by"] = [f for f in sources if f != feed.name]
            return self._enqueue(watchlist, stored, key, payload, now)
        if existing.status == "queued" and existing.sent_at is None:
            merged = add_source(existing.payload, feed.name, hedged=hedged)
            if merged != existing.payload:
                self.store.update_payload(existing.id, merged)
            return 0
        return self._follow_up(existing.payload, watchlist, stored, story_id, sources, now, hedged)

    def _follow_up(
        self,
        sent: Mapping[str, Any],
        watchlist: Watchlist,
        stored: StoredArticle,
        story_id: int,
        sources: list[str],
        now: datetime,
        hedged: bool,
    ) -> int:
        key = followup_key(story_id, now, watchlist.digest_s)
        pending = self.store.story_alert(watchlist.name, key)
        if pending is not None:
            if pending.status == "queued" and pending.sent_at is None:
                merged = add_source(pending.payload, stored.feed, hedged=hedged)
                if merged != pending.payload:
                    self.store.update_payload(pending.id, merged)
            return 0  # this window's follow-up went out already; the story keeps the source
        earlier = self.store.story_followups(watchlist.name, story_alert_key(story_id))
        payload = followup_payload(sent, earlier, sources, stored.feed, hedged=hedged)
        if payload is None:
            return 0
        return self._enqueue(watchlist, stored, key, payload, now)

    def _enqueue(
        self,
        watchlist: Watchlist,
        stored: StoredArticle,
        key: str,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> int:
        alert_id = self.store.enqueue_alert(
            watchlist=watchlist.name,
            article_id=stored.id,
            story_key=key,
            tags=watchlist.notify,
            payload=payload,
            expires=now + timedelta(seconds=self.expiry_s),
        )
        return int(alert_id is not None)
