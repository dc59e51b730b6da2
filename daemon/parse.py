"""Turn a feed body plus its response headers into a `ParsedFeed` of plain-text articles.

Pure: no network, files, clock or environment. This is the only module that imports feedparser,
and feedparser is only ever given bytes in a `BytesIO` (a bare `bytes` or `str` argument makes it
open a file or fetch a URL). Every failure, including an unexpected one inside feedparser, leaves
as `ParseError(url, reason)`. Importing it tunes two of feedparser's hot spots, with identical
results (`_tune_feedparser`).
"""

from __future__ import annotations

import calendar
import codecs
import copy
import hashlib
import io
import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.exceptions import CharacterEncodingOverride, NonXMLContentType
from feedparser.util import FeedParserDict

from daemon.errors import ParseError
from daemon.feeditems import split_items
from daemon.models import Article, ParsedFeed

OLDEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=2)
# feedparser's fallback (sgmllib) parser expands the short entities it keeps from the DTD with no
# limit: a 50 KB entity referenced 50,000 times took 74 s and 2.5 GB. We refuse such bodies.
MAX_ENTITY_EXPANSION_CHARS = 1_000_000

_TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "yclid", "msclkid", "mc_cid", "mc_eid",
    "igshid", "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id",
    "vero_id", "wt.mc_id", "__twitter_impression",
})  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "at_")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "tr", "ul",
})  # fmt: skip
_SPACE_TAGS = frozenset({"td", "th", "img"})
# What a tag leaves between the words around it, opening or closing.
_TAG_SEPARATORS = dict.fromkeys(_BLOCK_TAGS, "\n") | dict.fromkeys(_SPACE_TAGS, " ")
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})
# Elements HTMLParser (in some Python release) reads as raw text, plus those we skip: left to it.
_RAW_TEXT_TAGS = _SKIPPED_TAGS | {
    "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext", "math",
}  # fmt: skip
# A start or end tag whose attributes are names with optional quoted values free of "<" and ">".
_PLAIN_TAG = re.compile(
    r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)"""
    r"""(?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))?)*\s*/?>"""
)

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_ENTITY_DECL = re.compile(rb"""<!ENTITY\s+(%\s+)?([^\s%"']+)\s+(?:"([^"]*)"|'([^']*)')""")
_NESTING = re.compile(rb"&(?!#)|&#0*38;|&#x0*26;|%", re.IGNORECASE)  # entity refs, "&#38;", PEs
_HTML_START = re.compile(rb"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
_XML_DECLARED_ENCODING = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][\w.:\-]*)["']"""
)
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9A-Fa-f]+)|([0-9]+));")
_CHARSET_PARAM = re.compile(r";\s*charset\s*=\s*[\"']?([^\s;\"']+)[\"']?", re.I)
# What web servers send when nobody configured a charset (Apache's AddDefaultCharset, RFC 2616's
# text/* default). Against an XML declaration naming another encoding, the declaration is right.
_SERVER_DEFAULT_CHARSETS = frozenset({"iso8859-1", "ascii"})  # codecs.lookup() names
# Complaints about the headers, not about the XML: the body itself parsed cleanly.
_SOFT_BOZO = (CharacterEncodingOverride, NonXMLContentType)


class _FeedparserCopy:
    """Stands in for the `copy` module inside feedparser.mixin, which deep-copies the current
    content parameters (type, language, base: a flat dict of strings) for every title, summary
    and content it stores, through copy.deepcopy's generic pickling protocol. A flat
    FeedParserDict of immutable values is copied the way deepcopy rebuilds one (a new dict, each
    item set through `__setitem__`), with the same result; anything else goes to deepcopy."""

    _IMMUTABLE = (str, int, float, bool, bytes, type(None))

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if (
            type(value) is FeedParserDict
            and not vars(value)
            and all(isinstance(item, self._IMMUTABLE) for item in value.values())
        ):
            duplicate = FeedParserDict()
            for key, item in value.items():
                duplicate[key] = item
            return duplicate
        return copy.deepcopy(value, memo)


_FEEDPARSER_GET = FeedParserDict.get
# Keys FeedParserDict.__getitem__ treats specially; every other key is a plain dict lookup.
_ALIASED_KEYS = frozenset(
    {"category", "enclosures", "license", "updated", "updated_parsed", *FeedParserDict.keymap}
)


def _feedparser_dict_get(self: FeedParserDict, key: Any, default: Any = None) -> Any:
    """FeedParserDict.get without raising and catching a KeyError for a plain missing key:
    feedparser asks its content parameters for "type" at every piece of text."""
    if key in _ALIASED_KEYS:
        return _FEEDPARSER_GET(self, key, default)
    return dict.get(self, key, default)


def _tune_feedparser() -> bool:
    """Take two hot spots out of feedparser 6.0 without changing a result: about 16 % of the
    parser's CPU on the bench farm (bench/RESULTS.md). tests/test_corpus.py compares whole
    results with and without this over feedparser's own 2,242 test documents. Only the 6.0
    series, whose code this was checked against, is tuned; another version runs as shipped."""
    mixin = feedparser.mixin
    if not feedparser.__version__.startswith("6.0.") or getattr(mixin, "copy", None) is not copy:
        return False
    mixin.copy = _FeedparserCopy()
    FeedParserDict.get = _feedparser_dict_get
    return True


FEEDPARSER_TUNED = _tune_feedparser()


def parse_feed(
    content: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    fetched_at: datetime,
    known_items: Collection[str] = (),
) -> ParsedFeed:
    """Parse one fetched body. `fetched_at` (UTC-aware) stands in for missing or absurd dates.

    `known_items` are `ParsedFeed.item_digests` of earlier polls whose articles are stored:
    those items are left out, so only new or edited items are parsed and returned. Whenever
    that shortcut is unsure (see `feeditems`), the whole body is parsed instead.

    Raises ParseError when the body is empty, is not a feed, or is so malformed that it yields no
    entries; a malformed feed that still yields entries comes back with `bozo_reason` set.
    Raises ValueError (a caller bug) when `fetched_at` is naive.
    """
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware (UTC)")
    if not content.strip():
        raise ParseError(url, "empty body: the server sent no feed")
    # Header names are matched lower-case by feedparser. Without a Content-Type it would decode
    # as ISO-8859-1; application/xml applies XML's rule instead (prolog encoding, else UTF-8).
    # No Content-Location: given a base, feedparser resolves permalink guids against it, turning
    # a guid "12345" into a made-up URL that changes when the feed moves. We join links ourselves.
    response_headers = {name.lower(): value for name, value in headers.items()}
    response_headers.setdefault("content-type", "application/xml")
    response_headers.pop("content-location", None)
    _prefer_declared_encoding(content, response_headers)
    content = _repair_char_refs(content)
    fetched_at = fetched_at.astimezone(UTC)
    try:
        _refuse_entity_bombs(content, response_headers, url)
        split = split_items(content, charset=response_headers["content-type"])
        if split is not None and known_items:
            trimmed, left = split.without(known_items)
            if left < len(split.spans):
                parsed = _parse_new_items(trimmed, left, response_headers, url, fetched_at)
                if parsed is not None:
                    return replace(parsed, item_digests=split.digests)
        result = _feedparser(content, response_headers)
        parsed = _to_parsed_feed(result, response_headers, content, url, fetched_at)
        # The digests are kept only when feedparser agrees on the number of items.
        if split is not None and _entry_count(result) == len(split.spans):
            return replace(parsed, item_digests=split.digests)
        return parsed
    except ParseError:
        raise
    except Exception as exc:  # the library boundary: nothing but ParseError may leave
        raise ParseError(url, f"feed parser failed: {type(exc).__name__}: {exc}") from exc


def _feedparser(content: bytes, headers: dict[str, str]) -> Any:
    return feedparser.parse(
        io.BytesIO(content),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _entry_count(result: Any) -> int:
    return len(_get(result, "entries") or [])


def _parse_new_items(
    trimmed: bytes, left: int, headers: dict[str, str], url: str, fetched_at: datetime
) -> ParsedFeed | None:
    """feedparser over a body whose seen items were cut out; None when the result is not
    exactly `left` clean entries (a split that went wrong, or a malformed body whose warning
    must point at its real lines), so the caller parses the whole body."""
    result = _feedparser(trimmed, headers)
    bozo = _get(result, "bozo_exception") if _get(result, "bozo") else None
    if _entry_count(result) != left or not (bozo is None or isinstance(bozo, _SOFT_BOZO)):
        return None
    try:
        return _to_parsed_feed(result, headers, trimmed, url, fetched_at)
    except ParseError:
        return None


def canonical_url(url: str) -> str:
    """Normalise a link so that copies of one story compare equal.

    Drops tracking parameters (utm_*, at_*, fbclid, gclid, ...) and the fragment, lower-cases the
    scheme and host, removes a default port, and keeps the other parameters as written and in
    order. Never raises: a URL that cannot be split is returned stripped.
    """
    url = _CONTROL_CHARS.sub("", url).strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.hostname is not None:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if port is not None and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        userinfo, at, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}{at}{host}"
    path = parts.path or ("/" if scheme in _DEFAULT_PORTS and netloc else "")
    kept = [pair for pair in parts.query.split("&") if pair and not _is_tracking(pair)]
    return urlunsplit((scheme, netloc, path, "&".join(kept), ""))


def html_to_text(html: str) -> str:
    """Reduce HTML to plain text: one line per block, entities unescaped, scripts dropped.

    Block tags (p, br, li, div, ...) become line breaks and table cells become spaces, so words
    never glue together; runs of other whitespace become one space and blank lines are dropped.
    """
    parts = _plain_markup_parts(html)
    if parts is None:
        parts = _htmlparser_parts(_escape_unclosable(html))
    return _clean_lines("".join(parts))


def _htmlparser_parts(html: str) -> list[str]:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except AssertionError:  # a "<![" HTMLParser cannot read ("<![if", "<![ x"): it gives up
        extractor = _TextExtractor()
        extractor.feed(html.replace("<![", "&lt;!["))
        extractor.close()
    return extractor.parts


def _escape_unclosable(html: str) -> str:
    """Write every "<" after the last ">" as "&lt;": no tag can start there, and HTMLParser
    (Python 3.11.7's, at least) rescanned to the end of the text from each one, so 60 KB of
    "<a <a <a" took 44 s. It showed such a "<" as text anyway, which "&lt;" still does."""
    last = html.rfind(">")
    if html.find("<", last + 1) < 0:
        return html
    return html[: last + 1] + html[last + 1 :].replace("<", "&lt;")


def _plain_markup_parts(html: str) -> list[str] | None:
    """`_TextExtractor`'s parts for the HTML most feeds send (tags with at most simple quoted
    attributes, entities, text), cut with one regex; None for anything else (a comment, CDATA,
    a stray "<", an element whose content is not markup), which the full HTMLParser handles.
    The stdlib parser costs ~5 µs a tag in Python: half of turning the bench's HTML into text."""
    if "<" not in html:
        return [unescape(html)]
    pieces = _PLAIN_TAG.split(html)  # text, "/" or "", tag name, text, ...
    parts = []
    for i in range(0, len(pieces) - 1, 3):
        text, name = pieces[i], pieces[i + 2].lower()
        if "<" in text or name in _RAW_TEXT_TAGS:
            return None
        parts.append(unescape(text))  # returns `text` itself when it holds no "&"
        if name in _TAG_SEPARATORS:
            parts.append(_TAG_SEPARATORS[name])
    if "<" in pieces[-1]:
        return None
    parts.append(unescape(pieces[-1]))
    return parts


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._boundary(tag, 1)

    def handle_endtag(self, tag: str) -> None:
        self._boundary(tag, -1)

    def _boundary(self, tag: str, depth: int) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping + depth)
        elif tag in _TAG_SEPARATORS:
            self.parts.append(_TAG_SEPARATORS[tag])

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _is_tracking(pair: str) -> bool:
    name = unquote_plus(pair.partition("=")[0]).lower()
    return name in _TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _clean_lines(text: str) -> str:
    text = _CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    # str.split() cuts at exactly the characters re's \s matches, and in C: a regex per line
    # was a tenth of the parser worker's time (bench/RESULTS.md).
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _clean_line(text: str) -> str:
    return _clean_lines(text).replace("\n", " ")


def _repair_char_refs(content: bytes) -> bytes:
    """Rewrite character references that crash feedparser's fallback parser, which would lose
    every item of the feed: a UTF-16 surrogate pair written as two references (`&#55357;&#56832;`,
    how some CMSs write emoji) becomes the character it encodes; a lone surrogate, a value past
    U+10FFFF or an absurdly long number becomes U+FFFD. Others are kept as written."""
    if b"&#" not in content:
        return content
    refs = list(_CHAR_REF.finditer(content))
    values = [_char_ref_value(m) for m in refs]
    if all(v < 0xD800 or 0xDFFF < v <= 0x10FFFF for v in values):
        return content
    out, pos, i = [], 0, 0
    while i < len(refs):
        ref, value = refs[i], values[i]
        adjacent = i + 1 < len(refs) and refs[i + 1].start() == ref.end()
        if 0xD800 <= value <= 0xDBFF and adjacent and 0xDC00 <= values[i + 1] <= 0xDFFF:
            code = 0x10000 + ((value - 0xD800) << 10) + (values[i + 1] - 0xDC00)
            out += [content[pos : ref.start()], b"&#%d;" % code]
            pos, i = refs[i + 1].end(), i + 2
            continue
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            out += [content[pos : ref.start()], b"&#65533;"]
            pos = ref.end()
        i += 1
    out.append(content[pos:])
    return b"".join(out)


def _char_ref_value(ref: re.Match[bytes]) -> int:
    digits = ref[1] or ref[2]
    if len(digits.lstrip(b"0")) > 8:
        return 0x110000  # past Unicode, whatever its length (and int() refuses 4,300+ digits)
    return int(digits, 16) if ref[1] else int(digits)


def _prefer_declared_encoding(content: bytes, headers: dict[str, str]) -> None:
    """Let `<?xml encoding="windows-1251"?>` win over a server's default ISO-8859-1/US-ASCII.

    feedparser follows RFC 3023, where the HTTP charset always wins, and ISO-8859-1 never fails
    to decode: a Cyrillic feed behind such a default would be stored as mojibake ("Áàõìóò"),
    silently. A charset the server chose on purpose (anything else) is left alone.
    """
    content_type = headers.get("content-type", "")
    charset = _CHARSET_PARAM.search(content_type)
    declared = _XML_DECLARED_ENCODING.match(content[:512])
    if charset is None or declared is None:
        return
    try:
        sent = codecs.lookup(charset.group(1)).name
        wanted = codecs.lookup(declared.group(1).decode("ascii")).name
    except LookupError:
        return
    if sent in _SERVER_DEFAULT_CHARSETS and wanted != sent:
        replacement = f"; charset={declared.group(1).decode('ascii')}"
        headers["content-type"] = _CHARSET_PARAM.sub(replacement, content_type, count=1)


def _refuse_entity_bombs(content: bytes, headers: dict[str, str], url: str) -> None:
    """Refuse nested or parameter entities, and entities expanding past the limit.

    The body is decoded with feedparser's own decoder first (`feedparser.encodings`, which is
    not documented API), so a UTF-16 or UTF-7 body cannot hide its declarations. The whole body
    is scanned, not just the prolog: a comment before the DOCTYPE would otherwise push the
    declarations past feedparser's own DTD handling.
    """
    data = convert_to_utf8(headers, content, {})
    if b"<!ENTITY" not in data:
        return
    expansion = 0
    for match in _ENTITY_DECL.finditer(data):
        parameter, name = match.group(1), match.group(2)
        value = match.group(3) if match.group(3) is not None else match.group(4)
        entity = name.decode("utf-8", "replace")
        if parameter or _NESTING.search(value):
            raise ParseError(
                url,
                f"refused: the DTD entity {entity!r} refers to other entities or is a parameter "
                "entity (an entity-expansion attack); feeds never need either",
            )
        expansion += len(value) * data.count(b"&" + name + b";")
        if expansion > MAX_ENTITY_EXPANSION_CHARS:
            raise ParseError(
                url,
                f"refused: the DTD entity {entity!r} would expand to more than "
                f"{MAX_ENTITY_EXPANSION_CHARS} characters (an entity-expansion attack)",
            )


def _to_parsed_feed(
    result: Any, headers: Mapping[str, str], content: bytes, url: str, fetched_at: datetime
) -> ParsedFeed:
    bozo_exc = _get(result, "bozo_exception") if _get(result, "bozo") else None
    reason = _describe(bozo_exc, 0 if _declares_xml(content) else 1) if bozo_exc else None
    entries = _get(result, "entries") or []
    if not entries:
        soft = isinstance(bozo_exc, _SOFT_BOZO)
        if not _get(result, "version") or (bozo_exc is not None and not soft):
            raise ParseError(url, _not_a_feed(reason, headers, content))
    articles: dict[str, Article] = {}
    base = _link_base(url)
    for entry in entries:
        if isinstance(entry, dict):
            article = _to_article(entry, base, fetched_at)
            articles.setdefault(article.entry_id, article)  # a repeated id: the first one wins
    feed = _get(result, "feed")
    title = _detail_text(feed, "title") if isinstance(feed, dict) else ""
    return ParsedFeed(title=title, articles=tuple(articles.values()), bozo_reason=reason)


def _not_a_feed(reason: str | None, headers: Mapping[str, str], content: bytes) -> str:
    content_type = headers.get("content-type", "").split(";")[0].strip()
    if content_type.lower() in ("text/html", "application/xhtml+xml"):
        return f"HTML page, not a feed (content-type {content_type}); check the feed URL"
    if _HTML_START.match(content[:4096]):
        return "HTML page, not a feed (the body starts with <html>); check the feed URL"
    return f"not a feed: {reason or 'no RSS, Atom or RDF root element; check the feed URL'}"


def _describe(exc: object, added_lines: int) -> str:
    get_message = getattr(exc, "getMessage", None)  # xml.sax.SAXParseException
    get_line = getattr(exc, "getLineNumber", None)
    if callable(get_message) and callable(get_line):
        return f"{get_message()} at line {max(1, get_line() - added_lines)}"
    return str(exc) or type(exc).__name__


def _declares_xml(content: bytes) -> bool:
    """Whether the body opens with <?xml; feedparser prepends a line when it does not."""
    codecs = ("utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-be")
    return any(content[:64].decode(c, "ignore").startswith("<?xml") for c in codecs)


def _to_article(entry: dict[str, Any], feed_url: str, fetched_at: datetime) -> Article:
    title = _detail_text(entry, "title")
    summary = _detail_text(entry, "summary", single_line=False)
    content = _content_text(_get(entry, "content"))
    link = _link(entry, feed_url)
    date_text = _str(_get(entry, "published")) or _str(_get(entry, "updated"))
    entry_id = _clean_line(_str(_get(entry, "id"))) or link
    if not entry_id:
        entry_id = "sha256:" + _sha256(title, date_text)
    return Article(
        entry_id=entry_id,
        url=link,
        title=title,
        summary=summary,
        content=content,
        author=_clean_line(_str(_get(entry, "author"))),
        published=_published(entry, fetched_at),
        content_hash=_sha256(title, summary, content, link),
    )


def _link_base(feed_url: str) -> str:
    """The feed URL without its credentials, to resolve relative links against: a password in
    the feed URL must not spread into stored article links and alerts (issue #8)."""
    parts = urlsplit(feed_url)
    if "@" not in parts.netloc:
        return feed_url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _link(entry: dict[str, Any], feed_url: str) -> str:
    """The entry's absolute http(s) link, canonicalised; "" when there is none."""
    link = _CONTROL_CHARS.sub("", _str(_get(entry, "link"))).strip()
    copied_from_guid = _get(entry, "guidislink") and link == _str(_get(entry, "id")).strip()
    if not link or (copied_from_guid and "://" not in link and not link.startswith("/")):
        return ""  # feedparser copied a guid such as "12345" into `link`
    absolute = canonical_url(urljoin(feed_url, link))
    return absolute if urlsplit(absolute).scheme in _DEFAULT_PORTS else ""


def _published(entry: dict[str, Any], fetched_at: datetime) -> datetime:
    """The entry's date in UTC; `fetched_at` when missing, before 1990, or > 2 days ahead."""
    parsed = _get(entry, "published_parsed") or _get(entry, "updated_parsed")
    if parsed is None:
        return fetched_at
    try:
        published = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return fetched_at
    if published < OLDEST_PLAUSIBLE or published > fetched_at + MAX_FUTURE_SKEW:
        return fetched_at
    return published


def _detail_text(item: dict[str, Any], key: str, *, single_line: bool = True) -> str:
    """A text construct as plain text; HTML when feedparser says so or gives no type.

    feedparser copies an Atom entry's content into a missing summary without a type.
    """
    detail = _get(item, f"{key}_detail")
    kind = _str(_get(detail, "type")) if isinstance(detail, dict) else "text/html"
    return _to_text(_str(_get(item, key)), kind, single_line=single_line)


def _content_text(contents: object) -> str:
    """Join `entry.content` values, preferring the HTML ones over plain text alternates."""
    if not isinstance(contents, list):
        return ""
    items = [
        (_str(_get(c, "type")), _str(_get(c, "value"))) for c in contents if isinstance(c, dict)
    ]
    html_items = [item for item in items if "html" in item[0]]
    texts = (_to_text(value, kind, single_line=False) for kind, value in html_items or items)
    return "\n".join(text for text in texts if text)


def _to_text(value: str, kind: str, *, single_line: bool) -> str:
    text = html_to_text(value) if "html" in kind else _clean_lines(value)
    return text.replace("\n", " ") if single_line else text


def _get(item: dict[str, Any], key: str) -> Any:
    """Read a feedparser dict without its key aliases (and their DeprecationWarnings)."""
    return dict.get(item, key)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
