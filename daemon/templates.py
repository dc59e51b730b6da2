"""Message templates: the built-in layout of an alert and per-watchlist overrides. Pure.

Templates use the standard library's `string.Template` (`$title`, `${snippet}`), not Jinja2:
a watchlist only needs to rearrange fields, and plain substitution cannot loop, branch or reach
into objects, so a watchlist file can never run code. Escaping is not the template's job: every
value is escaped for the target format (Markdown, HTML, text) by `render.py` before it is
substituted, so an override cannot forget to escape feed text.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template

FORMATS = ("title", "text", "markdown", "html")  # `title` is plain text (subject, chat heading)
FIELDS = {
    "title": "the article's headline",
    "label": '"UNCONFIRMED · " when the article hedges, else empty',
    "watchlist": "the watchlist's title",
    "terms": "the canonical terms that matched, comma-separated",
    "feed": "the feed that carried the article",
    "sources": "the feed, plus any that also reported the story",
    "published": "when the feed says it was published",
    "first_seen": "when Vedette first fetched it",
    "link": "the article link (a clickable link in Markdown and HTML)",
    "url": "the bare article URL",
    "snippet": "a short excerpt with the matched words highlighted",
}
DEFAULTS: Mapping[str, str] = {
    "title": "${label}${watchlist}: ${terms}",
    "text": (
        "${title}\n"
        "${sources} · published ${published} · first seen ${first_seen}\n"
        "${snippet}\n"
        "${link}\n"
        "Matched: ${terms} (${watchlist})"
    ),
    "markdown": (
        "**${title}**\n"
        "${sources} · published ${published} · first seen ${first_seen}\n"
        "${snippet}\n"
        "${link}\n"
        "Matched: ${terms} (${watchlist})"
    ),
    "html": (
        "<p><b>${title}</b><br>\n"
        "${sources} · published ${published} · first seen ${first_seen}</p>\n"
        "<p>${snippet}</p>\n"
        "<p>${link}</p>\n"
        "<p>Matched: ${terms} (${watchlist})</p>"
    ),
}
_EMPTY_LINES = {"", "<p></p>"}


def check_template(text: str) -> None:
    """Raise ValueError naming the problem when `text` is not a usable template."""
    template = Template(text)
    if not template.is_valid():
        raise ValueError("a `$` must start a field such as $title or ${title} (write $$ for $)")
    unknown = [name for name in template.get_identifiers() if name not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field ${unknown[0]} (fields: {', '.join(FIELDS)})")


def template_for(overrides: Mapping[str, str] | None, part: str) -> str:
    """The watchlist's template for `part`, else the built-in one."""
    if overrides and isinstance(overrides.get(part), str):
        return overrides[part]
    return DEFAULTS[part]


def fill(text: str, values: Mapping[str, str]) -> str:
    """Substitute already-escaped values. A line that only held empty fields (no link, say) is
    dropped; blank lines written into the template stay."""
    kept = []
    for line in text.splitlines():
        filled = Template(line).safe_substitute(values)
        if not line.strip() or filled.strip() not in _EMPTY_LINES:
            kept.append(filled)
    return "\n".join(kept)
