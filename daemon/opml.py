"""Reads and writes OPML subscription lists (outline `category` → feed tags).

Uses the standard library's expat-based parser, which never fetches external entities and, from
expat 2.4.1 on, refuses exponential entity expansion ("billion laughs").
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import ConfigError
from daemon.models import Feed

MAX_OPML_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    url: str
    tags: tuple[str, ...]


def read_opml(path: Path) -> list[Subscription]:
    """Every outline with an `xmlUrl`, named by title/text, tagged by category and parent
    outlines. Raises ConfigError for unreadable or invalid files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read OPML ({exc.strerror})", file=str(path)) from exc
    if len(data) > MAX_OPML_BYTES:
        raise ConfigError("OPML file larger than 5 MB", file=str(path))
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise ConfigError(f"invalid OPML: {exc}", file=str(path), line=line) from exc
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ConfigError("not an OPML file (no <opml><body>)", file=str(path))
    found: list[Subscription] = []
    names: set[str] = set()
    _walk(body, (), found, names)
    return found


def _walk(
    node: ET.Element, parents: tuple[str, ...], found: list[Subscription], names: set[str]
) -> None:
    for outline in node.findall("outline"):
        title = (outline.get("title") or outline.get("text") or "").strip()
        url = (outline.get("xmlUrl") or "").strip()
        categories = tuple(
            c.strip().strip("/")
            for c in re.split(r"[,]", outline.get("category") or "")
            if c.strip().strip("/")
        )
        if url:
            found.append(Subscription(_unique_name(title or url, names), url, parents + categories))
        else:
            _walk(outline, parents + ((_slug(title),) if title else ()), found, names)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "-", text.strip().lower()).strip("-")[:60] or "feed"


def _unique_name(title: str, names: set[str]) -> str:
    base = _slug(title)
    name, counter = base, 2
    while name in names:
        name, counter = f"{base}-{counter}", counter + 1
    names.add(name)
    return name


def write_opml(feeds: list[Feed], *, title: str = "Vedette feeds") -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attributes = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.tags:
            attributes["category"] = ",".join(feed.tags)
        ET.SubElement(body, "outline", attributes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
