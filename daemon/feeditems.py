"""Finds the raw bytes of each item of a feed body, so a poll parses only the items it has not
seen before.

A feed that changed usually gained one to three items and kept the other twenty to a hundred
byte for byte, and feedparser costs the same for every item it is given (bench/RESULTS.md: a
poll that found 3 new items per feed spent 80 % of a cold poll's parsing). `split_items` cuts the
body into its `<item>` / `<entry>` elements and digests each one; `ItemSplit.without` returns the
body with the already-seen items cut out, which is still a well-formed feed of the new ones.

The split is deliberately timid. It returns None, and the caller parses the whole body, for any
shape it cannot be sure of: both item kinds in one body, nested or unclosed items, a DTD entity
(whose definition in the head could change what an unchanged item means), or no items at all.
A namespace-prefixed `<atom:entry>` is never seen as an item, so such bodies are parsed whole. A
body in UTF-16 or UTF-32 shows no ASCII tags and is parsed whole too. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

# Tags are found outside CDATA sections and comments only. The openers and closers are matched
# separately and paired in a loop, not with one lazy `<!\[CDATA\[.*?\]\]>`: that pattern would
# rescan to the end of the body for every unclosed `<![CDATA[`, quadratic on a hostile body.
_TOKENS = re.compile(rb"<!\[CDATA\[|\]\]>|<!--|-->|<(/?)(item|entry)(?=[\s>/])")
_ITEM_CONTEXT = re.compile(
    rb"""\s(?:xmlns(?::[\w.\-]+)?|xml:base|xml:lang)\s*=\s*(?:"[^"]*"|'[^']*')"""
)
_XML_DECLARATION = re.compile(rb"\A[^<]{0,64}<\?xml[^>]{0,200}\?>")


@dataclass(frozen=True, slots=True)
class ItemSplit:
    """A feed body and where each of its items starts and ends."""

    content: bytes
    spans: tuple[tuple[int, int], ...]
    digests: tuple[str, ...]  # one per span: the item's bytes in their context

    def without(self, known: Collection[str]) -> tuple[bytes, int]:
        """The body with every item whose digest is in `known` cut out, and how many items are
        left in it. The head, the tail and whatever lies between items are kept as they are."""
        parts: list[bytes] = []
        position = kept = 0
        for (start, end), digest in zip(self.spans, self.digests, strict=True):
            if digest in known:
                parts.append(self.content[position:start])
                position = end
            else:
                kept += 1
        parts.append(self.content[position:])
        return b"".join(parts), kept


def split_items(content: bytes, *, charset: str = "") -> ItemSplit | None:
    """Cut a feed body into its items, or None when its shape is not certain (see above).

    `charset` is the one the response headers declare: an item's digest covers it, the XML
    declaration and the namespace, base and language attributes found before the first item,
    so the same bytes read under another encoding or namespace never pass for a seen item.
    """
    if b"<!ENTITY" in content:
        return None
    spans: list[tuple[int, int]] = []
    kind: bytes | None = None
    opened: int | None = None
    skipping: bytes | None = None  # the closer we are waiting for inside CDATA or a comment
    for token in _TOKENS.finditer(content):
        text = token.group(0)
        if skipping is not None:
            if text == skipping:
                skipping = None
            continue
        if text == b"<![CDATA[":
            skipping = b"]]>"
            continue
        if text == b"<!--":
            skipping = b"-->"
            continue
        name = token.group(2)
        if name is None:  # a stray "]]>" or "-->" in text
            continue
        if kind is None:
            kind = name
        elif name != kind:
            return None
        if token.group(1):  # a closing tag
            end = content.find(b">", token.end())
            if opened is None or end < 0:
                return None
            spans.append((opened, end + 1))
            opened = None
        elif opened is not None:
            return None  # nested, or a self-closing <item/>
        else:
            opened = token.start()
    if opened is not None or skipping is not None or not spans:
        return None
    context = _context(content[: spans[0][0]], charset)
    digests = tuple(
        hashlib.blake2b(content[start:end], digest_size=10, key=context).hexdigest()
        for start, end in spans
    )
    return ItemSplit(content, tuple(spans), digests)


def _context(head: bytes, charset: str) -> bytes:
    """What, outside an item, changes what the item means; at most 64 bytes (a blake2b key)."""
    declaration = _XML_DECLARATION.match(head)
    parts = [charset.lower().encode("ascii", "replace")]
    parts.append(declaration.group(0) if declaration else b"")
    parts.extend(sorted(match.group(0).strip() for match in _ITEM_CONTEXT.finditer(head)))
    return hashlib.blake2b(b"\x1f".join(parts), digest_size=32).digest()
