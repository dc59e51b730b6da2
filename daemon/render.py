"""Turns an alert payload into message text for each target format. Pure.

Everything that came from a feed is escaped for the target format, and mass mentions
(@everyone, @here, <!channel>, <@id>) are broken with a zero-width space so a hostile headline
cannot page a whole chat server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_TITLE_CHARS = 300
MAX_SNIPPET_CHARS = 400
_ZWSP = "\u200b"
_MENTIONS = re.compile(r"@(everyone|here|channel)\b|<([!@#&])", re.IGNORECASE)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()#!|>~<])")  # inline syntax; enough to stay literal


@dataclass(frozen=True, slots=True)
class Message:
    """One alert, rendered three ways; notify picks the one the target understands."""

    title: str
    markdown: str
    html: str
    text: str


def neutralise_mentions(text: str) -> str:
    return _MENTIONS.sub(lambda m: m.group(0)[0] + _ZWSP + m.group(0)[1:], text)


def clean(text: str, limit: int) -> str:
    """One line, bounded, no control characters, no mass mentions."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return neutralise_mentions(text)


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_alert(payload: Mapping[str, Any]) -> Message:
    """The alert message: title, watchlist, terms, feed(s), time, link, highlighted snippet."""
    title = clean(str(payload.get("title") or "(untitled)"), MAX_TITLE_CHARS)
    label = "UNCONFIRMED · " if payload.get("unconfirmed") else ""
    terms = ", ".join(clean(str(t), 80) for t in payload.get("terms", []))
    feed = clean(str(payload.get("feed", "")), 100)
    also = [clean(str(f), 100) for f in payload.get("also_reported_by", [])]
    when = clean(str(payload.get("published", "")), 40)
    url = str(payload.get("url") or "")
    link = url if re.match(r"^https?://[^\s<>\"]+$", url) else ""
    watchlist = clean(str(payload.get("watchlist_title") or payload.get("watchlist", "")), 100)
    # The snippet is already one clean line (alert.py); highlight offsets index into it.
    snippet = "".join(c if c.isprintable() else " " for c in str(payload.get("snippet", "")))
    snippet = snippet[:MAX_SNIPPET_CHARS]
    spans = _spans_within(payload.get("highlights", []), len(snippet))
    heading = f"{label}{watchlist}: {terms}"

    sources = feed + (f" (also reported by {', '.join(also)})" if also else "")
    text_lines = [title, f"{sources} · {when}", neutralise_mentions(snippet), link]
    text_lines.append(f"Matched: {terms}")
    md_snippet = _highlight(
        snippet, spans, lambda s: escape_markdown(neutralise_mentions(s)), "**", "**"
    )
    md_lines = [
        f"**{escape_markdown(title)}**",
        f"{escape_markdown(sources)} · {escape_markdown(when)}",
        md_snippet,
        f"<{link}>" if link else "",
        f"Matched: {escape_markdown(terms)}",
    ]
    html_snippet = _highlight(
        snippet, spans, lambda s: html.escape(neutralise_mentions(s)), "<b>", "</b>"
    )
    html_link = f'<a href="{html.escape(link)}">{html.escape(link)}</a>' if link else ""
    html_lines = [
        f"<p><b>{html.escape(title)}</b><br>",
        f"{html.escape(sources)} · {html.escape(when)}</p>",
        f"<p>{html_snippet}</p>",
        f"<p>{html_link}</p>" if html_link else "",
        f"<p>Matched: {html.escape(terms)}</p>",
    ]
    return Message(
        title=clean(heading, 200),
        markdown="\n".join(line for line in md_lines if line),
        html="\n".join(line for line in html_lines if line),
        text="\n".join(line for line in text_lines if line),
    )


def render_notice(title: str, body: str) -> Message:
    """Operational notices (test messages, feed failing/recovered): our own text, still escaped."""
    safe_title, safe_body = clean(title, 200), clean(body, 2000)
    return Message(
        title=safe_title,
        markdown=escape_markdown(safe_body),
        html=f"<p>{html.escape(safe_body)}</p>",
        text=safe_body,
    )


def _spans_within(spans: Sequence[Any], length: int) -> list[tuple[int, int]]:
    valid = []
    for span in spans:
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = int(span[0]), int(span[1])
            if 0 <= start < end <= length:
                valid.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(valid):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _highlight(
    text: str,
    spans: Sequence[tuple[int, int]],
    escape: Callable[[str], str],
    open_tag: str,
    close_tag: str,
) -> str:
    parts, position = [], 0
    for start, end in spans:
        parts.append(escape(text[position:start]))
        parts.append(f"{open_tag}{escape(text[start:end])}{close_tag}")
        position = end
    parts.append(escape(text[position:]))
    return "".join(parts)
