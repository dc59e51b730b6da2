"""Turns an alert payload into message text for each target format. Pure.

Everything that came from a feed is escaped for the target format, and mass mentions
(@everyone, @here, @channel, <!channel>, <@id>) are broken with a zero-width space so a hostile
headline cannot page a whole chat server. Every message ends with its stable id
(`vedette-alert-42`, `vedette-digest-42`), the same on every retry, so a receiver can drop a
copy that was re-sent after a crash (delivery is at-least-once; see README, Notifications).
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.templates import fill, template_for

MAX_TITLE_CHARS = 300
MAX_DIGEST_TITLE_CHARS = 200
MAX_SNIPPET_CHARS = 400
_ZWSP = "\u200b"
_MENTIONS = re.compile(r"@(everyone|here|channel|all|room)\b|<([!@#&])", re.IGNORECASE)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()#!|>~<])")  # inline syntax; enough to stay literal
_LINK = re.compile(r"^https?://[^\s<>\"'`]+$")
Escape = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Message:
    """One message, rendered three ways; notify picks the one the target understands."""

    title: str
    markdown: str
    html: str
    text: str


def neutralise_mentions(text: str) -> str:
    return _MENTIONS.sub(lambda m: m.group(0)[0] + _ZWSP + m.group(0)[1:], text)


def clean(text: str, limit: int) -> str:
    """One line, bounded, no control characters, no mass mentions."""
    text = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return neutralise_mentions(text)


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


_FORMATS: Mapping[str, Escape] = {
    "text": lambda s: s,
    "markdown": escape_markdown,
    "html": html.escape,
}


def render_alert(payload: Mapping[str, Any], *, message_id: str | None = None) -> Message:
    """One story: the watchlist's templates (or the built-in ones) filled with escaped values."""
    plain = _plain_fields(payload)
    link = plain.pop("url")
    snippet, spans = _snippet(payload)
    overrides = payload.get("template")
    bodies = {}
    for name, escape in _FORMATS.items():
        values = {key: escape(value) for key, value in plain.items()}
        values["url"] = escape(link)
        values["link"] = _link(link, name)
        values["snippet"] = _highlight(snippet, spans, name)
        bodies[name] = fill(template_for(overrides, name), values)
    title_values = plain | {"url": link, "link": link, "snippet": snippet}
    title = fill(template_for(overrides, "title"), title_values)
    return _finish(clean(title, 200), bodies, message_id)


def render_digest(
    stories: Sequence[tuple[str, Mapping[str, Any]]], *, message_id: str, note: str
) -> Message:
    """Several stories of one watchlist in one message: title, feed, time, link and terms of
    each, with each story's own id so a receiver can match them to single alerts."""
    first = _plain_fields(stories[0][1]) if stories else {"watchlist": ""}
    count = f"{len(stories)} {'story' if len(stories) == 1 else 'stories'}"
    intro = clean(f"{count} for {first['watchlist']}, {note}", 400)
    bodies = {}
    for name, escape in _FORMATS.items():
        items = []
        for story_id, payload in stories:
            fields = _plain_fields(payload, title_chars=MAX_DIGEST_TITLE_CHARS)
            values = {key: escape(value) for key, value in fields.items()}
            meta = f"{values['sources']} · published {values['published']}"
            matched = f"Matched: {values['terms']} · {story_id}"
            link = _link(fields["url"], name)
            headline = values["label"] + values["title"]
            if name == "html":
                lines = [f"<b>{headline}</b>", meta, link, f"<small>{matched}</small>"]
                items.append("<li>" + "<br>\n".join(line for line in lines if line) + "</li>")
            else:
                strong = f"**{headline}**" if name == "markdown" else headline
                lines = [f"• {strong}", f"  {meta}", f"  {link}" if link else "", f"  {matched}"]
                items.append("\n".join(line for line in lines if line))
        if name == "html":
            bodies[name] = f"<p>{escape(intro)}</p>\n<ol>\n" + "\n".join(items) + "\n</ol>"
        else:
            bodies[name] = escape(intro) + "\n\n" + "\n".join(items)
    title = clean(f"Digest · {first['watchlist']}: {count}", 200)
    return _finish(title, bodies, message_id)


def render_notice(title: str, body: str, *, message_id: str | None = None) -> Message:
    """Operational notices (test messages, feed failing/recovered): our own text, still escaped
    because parts of it (a server's error message) come from outside."""
    safe_body = clean(body, 2000)
    bodies = {name: escape(safe_body) for name, escape in _FORMATS.items()}
    bodies["html"] = f"<p>{bodies['html']}</p>"
    return _finish(clean(title, 200), bodies, message_id)


def _finish(title: str, bodies: Mapping[str, str], message_id: str | None) -> Message:
    if message_id:
        footer = f"ID: {message_id}"
        bodies = {
            name: body + (f"\n<p><small>{footer}</small></p>" if name == "html" else f"\n{footer}")
            for name, body in bodies.items()
        }
    return Message(
        title=title, markdown=bodies["markdown"], html=bodies["html"], text=bodies["text"]
    )


def _plain_fields(
    payload: Mapping[str, Any], *, title_chars: int = MAX_TITLE_CHARS
) -> dict[str, str]:
    """The template fields as clean plain text (one line each, bounded, mentions defused)."""
    feed = clean(str(payload.get("feed", "")), 100)
    also = [clean(str(f), 100) for f in payload.get("also_reported_by", [])][:20]
    url = str(payload.get("url") or "")
    return {
        "title": clean(str(payload.get("title") or "(untitled)"), title_chars),
        "label": _label(payload),
        "watchlist": clean(
            str(payload.get("watchlist_title") or payload.get("watchlist", "")), 100
        ),
        "terms": clean(", ".join(str(t) for t in payload.get("terms", [])), 300),
        "feed": feed,
        "sources": feed + (f" (also reported by {', '.join(also)})" if also else ""),
        "published": _when(payload.get("published")),
        "first_seen": _when(payload.get("first_seen") or payload.get("published")),
        "url": url if len(url) <= 2000 and _LINK.match(url) else "",
    }


def _label(payload: Mapping[str, Any]) -> str:
    """UNCONFIRMED for a hedged claim; a follow-up says so, and names the feed that reported
    the story without a hedge when that lifted the label."""
    label = "FOLLOW-UP · " if payload.get("followup") else ""
    if payload.get("unconfirmed"):
        return label + "UNCONFIRMED · "
    if payload.get("followup") and payload.get("confirmed_by"):
        by = clean(str(payload["confirmed_by"]), 100)
        return label + f"NO LONGER UNCONFIRMED (reported without hedge by {by}) · "
    return label


def _when(value: object) -> str:
    """`2023-01-10 21:05 UTC`; anything unparsable is shown cleaned, as given."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return clean(str(value or ""), 40)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _link(url: str, format_name: str) -> str:
    if not url:
        return ""
    if format_name == "html":
        return f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
    return f"<{url}>" if format_name == "markdown" else url


def _snippet(payload: Mapping[str, Any]) -> tuple[str, list[tuple[int, int]]]:
    """The snippet as one printable line with mentions defused, and its highlight spans moved
    to match (a defused mention gains a character)."""
    raw = str(payload.get("snippet", ""))[:MAX_SNIPPET_CHARS]
    text = "".join(c if c.isprintable() else " " for c in raw)
    spans = _spans_within(payload.get("highlights", []), len(text))
    inserted = [m.start() + 1 for m in _MENTIONS.finditer(text)]
    if not inserted:
        return text, spans

    def moved(index: int) -> int:
        return index + bisect_right(inserted, index)

    return neutralise_mentions(text), [(moved(a), moved(b)) for a, b in spans]


def _spans_within(spans: Sequence[Any], length: int) -> list[tuple[int, int]]:
    valid = []
    for span in spans:
        if isinstance(span, list | tuple) and len(span) == 2:
            try:
                start, end = int(span[0]), int(span[1])
            except (TypeError, ValueError):
                continue
            if 0 <= start < end <= length:
                valid.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(valid):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _highlight(text: str, spans: Sequence[tuple[int, int]], format_name: str) -> str:
    escape = _FORMATS[format_name]
    open_tag, close_tag = {"text": ("", ""), "markdown": ("**", "**"), "html": ("<b>", "</b>")}[
        format_name
    ]
    parts, position = [], 0
    for start, end in spans:
        parts.append(escape(text[position:start]))
        parts.append(f"{open_tag}{escape(text[start:end])}{close_tag}")
        position = end
    parts.append(escape(text[position:]))
    return "".join(parts)
