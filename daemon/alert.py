"""Turns matches into outbox alerts: one per (watchlist, story), with the payload the message is
rendered from, the "unconfirmed" label, and the retry and expiry policy. Pure.

Stories (the same report carried by several feeds) come from `storybook.py`; their outbox key
is `story:<id>`, with follow-ups keyed per window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from daemon.digest import delivery_payload
from daemon.logs import redact
from daemon.models import Feed, FeedState, Hit, Match, StoredArticle, Watchlist
from daemon.text import normalize

SNIPPET_CHARS = 280
MAX_PAYLOAD_TITLE_CHARS = 2000  # the message shows 300; the outbox row need not hold 100 KB
RETRY_BASE_S = 30.0
RETRY_CAP_S = 3600.0
OPS_KIND = "ops"
OPS_WATCHLIST = "@ops"  # the outbox "watchlist" of feed failing/recovered notices

# Hedge phrases mark a claim as unconfirmed. Data, per language; matched on normalised text.
HEDGES: Mapping[str, tuple[str, ...]] = {
    "en": (
        "unconfirmed",
        "reportedly",
        "claims",
        "claimed",
        "claim",
        "could not be verified",
        "cannot be verified",
        "not independently verified",
        "according to russian sources",
        "according to unverified",
        "alleged",
        "allegedly",
        "purportedly",
    ),
    "uk": (
        "не підтверджено",
        "непідтверджен",
        "за неофіційними даними",
        "заявляють",
        "заявили",
        "нібито",
        "стверджують",
        "за даними російських",
    ),
    "ru": (
        "не подтверждено",
        "неподтвержден",
        "заявляют",
        "заявили",
        "по данным",
        "якобы",
        "утверждают",
        "по неофициальным данным",
    ),
}


def hedge_pattern(extra: Sequence[str] = ()) -> re.Pattern[str]:
    """The built-in hedges plus the config's `hedges:` (phrases, any language), as one regex
    over normalised text that only starts at a word boundary ("claim" also finds "claimed")."""
    phrases = [h for hs in HEDGES.values() for h in hs] + [normalize(h) for h in extra if h.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in phrases) + ")")


DEFAULT_HEDGES = hedge_pattern()


def is_unconfirmed(fields: Mapping[str, str], hedges: re.Pattern[str] = DEFAULT_HEDGES) -> bool:
    """True when the title or summary carries a hedge ("claims", "не підтверджено", …)."""
    text = normalize(" ".join((fields.get("title", ""), fields.get("summary", ""))))
    return hedges.search(text) is not None


FOLLOWUP_WINDOW_S = 3600.0  # at most one "also reported by" follow-up per story and hour


def story_alert_key(story_id: int) -> str:
    return f"story:{story_id}"


def followup_key(story_id: int, now: datetime, window_s: float | None) -> str:
    """One follow-up per story and window (the list's digest window, else an hour)."""
    bucket = int(now.timestamp() // (window_s or FOLLOWUP_WINDOW_S))
    return f"{story_alert_key(story_id)}:followup:{bucket}"


def announced(payload: Mapping[str, Any]) -> set[str]:
    return {str(payload.get("feed", "")), *map(str, payload.get("also_reported_by", []))}


def add_source(payload: Mapping[str, Any], feed: str, *, hedged: bool) -> dict[str, Any]:
    """An unsent alert's payload with one more feed carrying its story. A source without a
    hedge lifts the "unconfirmed" label (SPEC §4)."""
    merged = dict(payload)
    if feed not in announced(payload):
        merged["also_reported_by"] = [*payload.get("also_reported_by", []), feed]
    if payload.get("unconfirmed") and not hedged:
        merged["unconfirmed"] = False
        merged["confirmed_by"] = feed
    return merged


def followup_payload(
    sent: Mapping[str, Any],
    earlier: Sequence[Mapping[str, Any]],
    sources: Sequence[str],
    feed: str,
    *,
    hedged: bool,
) -> dict[str, Any] | None:
    """A follow-up to an alert already sent: "also reported by" the story's other feeds, and
    the label lifted when this source states it without a hedge. None when it adds nothing."""
    told = announced(sent).union(*(announced(p) for p in earlier))
    was_unconfirmed = bool(sent.get("unconfirmed")) and not any(
        p.get("confirmed_by") for p in earlier
    )
    lifts = was_unconfirmed and not hedged
    if feed in told and not lifts:
        return None
    payload = {k: v for k, v in sent.items() if k not in ("snippet", "highlights", "hits")}
    payload["followup"] = True
    payload["also_reported_by"] = [f for f in sources if f != sent.get("feed")]
    payload["unconfirmed"] = was_unconfirmed and hedged
    if lifts:
        payload["confirmed_by"] = feed
    return payload


def within_backlog(
    published: datetime, *, first_poll: bool, backlog_s: float | None, now: datetime
) -> bool:
    """On a feed's first poll, only articles newer than the backlog window alert (SPEC §2)."""
    if not first_poll or backlog_s is None:
        return True
    return published >= now - timedelta(seconds=backlog_s)


def build_payload(
    stored: StoredArticle,
    match: Match,
    watchlist: Watchlist,
    feed: Feed,
    hedges: re.Pattern[str] = DEFAULT_HEDGES,
) -> dict[str, Any]:
    """Everything the message needs, frozen at match time (the article may be pruned later)."""
    article = stored.article
    snippet, spans = make_snippet(article.text_fields(), match.hits)
    payload: dict[str, Any] = {
        "watchlist": watchlist.name,
        "watchlist_title": watchlist.title,
        "title": article.title[:MAX_PAYLOAD_TITLE_CHARS],
        "feed": feed.name,
        "url": article.url,
        "published": article.published.isoformat(timespec="minutes"),
        "first_seen": stored.fetched.isoformat(timespec="minutes"),
        "terms": list(match.terms),
        "hits": [{"field": h.field, "text": h.text, "term": h.term} for h in match.hits[:50]],
        "snippet": snippet,
        "highlights": spans,
        "unconfirmed": is_unconfirmed(article.text_fields(), hedges),
        "article_id": stored.id,
    }
    delivery = delivery_payload(watchlist.digest_s, watchlist.quiet_hours, watchlist.rate_limit)
    if delivery:
        payload["delivery"] = delivery
    if watchlist.template:
        payload["template"] = dict(watchlist.template)
    return payload


def feed_notice(
    event: str, feed: Feed, state: FeedState, *, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The story key and payload of a "feed failing" or "recovered" ops notice. The key names
    the outage (its first failure), so each outage yields one notice of each kind."""
    since = state.first_failed or now
    hours = max(0.0, (now - since).total_seconds() / 3600)
    where = f"{feed.name} ({redact(state.url or feed.url)})"
    if event == "failing":
        title = f"Feed failing: {feed.name}"
        body = (
            f"{where} has failed for {hours:.1f} h since {since:%Y-%m-%d %H:%M} UTC"
            f" ({state.error_count} errors). Last error: {redact(state.last_error or 'unknown')}."
            " Vedette keeps retrying with backoff."
        )
    else:
        title = f"Feed recovered: {feed.name}"
        body = f"{where} works again after {hours:.1f} h of failures."
    key = f"feed-{event}:{feed.name}:{since.isoformat(timespec='seconds')}"
    return key, {"kind": OPS_KIND, "event": event, "feed": feed.name, "title": title, "body": body}


def make_snippet(
    fields: Mapping[str, str], hits: Sequence[Hit]
) -> tuple[str, list[tuple[int, int]]]:
    """A one-line window of text around the first hit outside the title, with the offsets of
    every hit inside it (for highlighting)."""
    field_name = next((h.field for h in hits if h.field != "title"), None)
    if field_name is None:
        field_name = "summary" if fields.get("summary") else "content"
    text = fields.get(field_name, "")
    field_hits = sorted((h for h in hits if h.field == field_name), key=lambda h: h.start)
    start = 0
    if field_hits and field_hits[0].start > SNIPPET_CHARS // 3:
        start = field_hits[0].start - SNIPPET_CHARS // 3
        start = text.rfind(" ", 0, start) + 1
    window = text[start : start + SNIPPET_CHARS]
    # Collapse whitespace while tracking how offsets move, so highlights stay on the words.
    out: list[str] = []
    mapping: list[int] = []
    previous_space = False
    for ch in window:
        is_space = ch.isspace() or not ch.isprintable()
        if is_space and previous_space:
            mapping.append(len(out))
            continue
        mapping.append(len(out))
        out.append(" " if is_space else ch)
        previous_space = is_space
    mapping.append(len(out))
    snippet = "".join(out).strip()
    lead = len("".join(out)) - len("".join(out).lstrip())
    spans = []
    for hit in field_hits:
        a, b = hit.start - start, hit.end - start
        if 0 <= a < b <= len(window):
            spans.append((mapping[a] - lead, mapping[b] - lead))
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + SNIPPET_CHARS < len(text) else ""
    shift = len(prefix)
    return prefix + snippet + suffix, [(a + shift, b + shift) for a, b in spans if a >= 0]


def retry_delay_s(attempts: int) -> float:
    """Exponential backoff for failed sends: 30 s, 1 min, 2 min, … capped at 1 h."""
    return float(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempts - 1)))
