"""Text normalisation shared by watchlists and articles. Pure.

Two views of a text:

- `normalize` is what people (and `/regex/` terms) see: NFKC, casefold, one apostrophe, one dash,
  single spaces.
- `fold` is what the automaton sees: the same, plus a lossy "skeleton" that merges the letters
  Ukrainian and Russian spell differently (і/ї/й/ы -> и, є/ё/э -> е, ґ -> г, ь/ъ and apostrophes
  inside Cyrillic words dropped), fixes Latin homoglyphs inside Cyrillic words (and vice versa),
  and turns hyphens and whitespace runs into one space. Every skeleton char maps back to the
  original text, so hits can be reported where they were written.

Speed: the skeleton is built with C-level operations only (cp1251 encode, bytes.translate,
bytes.replace); per-char Python loops run only for rare texts (HTML, non-NFKC, characters outside
cp1251) and offset maps are only computed for fields that had a hit.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate

APOSTROPHES = "ʼ'’‘`′＇"
DASHES = "‐‑‒–—―−"
_UNIFY_MAP = {**dict.fromkeys(APOSTROPHES, "'"), **dict.fromkeys(DASHES, "-")}
_UNIFY = str.maketrans(_UNIFY_MAP)
_UNIFY_RE = re.compile(f"[{APOSTROPHES}{DASHES}]")
_SPACE_RE = re.compile(r"\s+")
# Invisible format characters (Unicode's Default_Ignorable_Code_Point, less the Hangul fillers,
# which are letters): soft hyphen, zero-width space and joiners, bidi marks and overrides, word
# joiner, BOM, variation selectors, tags. A reader sees nothing, so they never split a word:
# "Бах\u200bмут" is Бахмут (issue #8). Both views below drop them, keeping offsets.
_IGNORABLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f"
    "\ufeff\U000e0000-\U000e0fff]"
)

# Folds that merge Ukrainian and Russian spellings (and drop signs) in the skeleton.
CYRILLIC_FOLD = {"ё": "е", "є": "е", "э": "е", "і": "и", "ї": "и", "й": "и", "ы": "и", "ґ": "г"}
CYRILLIC_FOLD.update({"ў": "у", "ь": "", "ъ": ""})
# Lower-case homoglyphs (upper-case ones become these after casefold: B->b/В->в, H->h/Н->н).
_HOMOGLYPHS = "aа bв cс eе hн iи kк mм oо pр tт xх yу"
_LAT2CYR = {ord(p[0]): ord(p[1].encode("cp1251")) for p in _HOMOGLYPHS.split()}
_CYR2LAT = {c: lat for lat, c in _LAT2CYR.items()}

_BLOCK_TAGS = "p|div|br|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|pre|section|article|hr|img|figure"
_MARKUP_RE = re.compile(
    r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<(/?)([a-z][a-z0-9]*)\b[^>]*>|<[!?/][^>]*>"
    r"|&(?:#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});?",
    re.S | re.I,
)
_BLOCK_RE = re.compile(rf"(?:{_BLOCK_TAGS})$", re.I)


def normalize(text: str) -> str:
    """NFKC, casefold, apostrophes to "'", dashes to "-", whitespace runs to one space;
    invisible format characters (zero-width, bidi, soft hyphen) dropped."""
    out = unicodedata.normalize("NFKC", _drop_ignorable(text))
    while True:  # casefold can leave non-NFKC text behind; a fixpoint keeps this idempotent
        folded = unicodedata.normalize("NFKC", out.casefold())
        if folded == out:
            break
        out = folded
    return _SPACE_RE.sub(" ", out.translate(_UNIFY)).strip()


def _has_ignorable(text: str) -> bool:
    return not text.isascii() and _IGNORABLE_RE.search(text) is not None  # isascii() is O(1)


def _drop_ignorable(text: str) -> str:
    return _IGNORABLE_RE.sub("", text) if _has_ignorable(text) else text


def _markup_text(m: re.Match[str]) -> str:
    if m.group(0).startswith("&"):
        return html.unescape(m.group(0))
    return " " if m.group(1) or (m.group(3) and _BLOCK_RE.match(m.group(3))) else ""


def strip_html(text: str) -> str:
    """Remove tags (block tags become a space), comments and scripts; unescape entities."""
    if "<" not in text and "&" not in text:
        return text
    return _MARKUP_RE.sub(_markup_text, text)


# --- the skeleton ---------------------------------------------------------------------------


def fold_word(word: str) -> str:
    """Casefold a term word and merge Ukrainian/Russian letter variants (the skeleton's letters)."""
    return "".join(CYRILLIC_FOLD.get(c, c) for c in word.casefold() if c not in APOSTROPHES)


def _skeleton_byte(ch: str) -> int:
    if ch.isspace() or ch in "-\u2013\u2014":
        return 0x20
    if ch in APOSTROPHES:
        return 0x27
    if ch == "\xad":  # soft hyphen: invisible inside words
        return 0
    ch = CYRILLIC_FOLD.get(ch, ch) or "\x00"
    if "\u0400" <= ch <= "\u04ff" and not "а" <= ch <= "я":
        return 1  # other Cyrillic letters (Serbian, Macedonian): a letter, just not ours
    return ch.encode("cp1251")[0]


def _build_byte_fold() -> bytes:
    table = bytearray(range(256))
    for i in range(256):
        try:
            ch = bytes([i]).decode("cp1251")
        except UnicodeDecodeError:
            continue
        low = ch.casefold()
        try:
            low.encode("cp1251")
        except UnicodeEncodeError:
            low = ch
        table[i] = _skeleton_byte(low if len(low) == 1 else ch)
    return bytes(table)


_BYTE_FOLD = _build_byte_fold()
WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789\x01" + bytes(range(0xE0, 0x100)))
WORD_CHARS = frozenset(chr(b) for b in WORD_BYTES)
_SCRIPT_CLASS = bytes(
    ord("L") if 0x61 <= i <= 0x7A else ord("C") if i >= 0xE0 else 0x20 for i in range(256)
)
_MIXED_WORD_RE = re.compile(rb"[LC]+")
_NOT_LATIN = bytes(i for i in range(256) if not 0x61 <= i <= 0x7A)
_NOT_CYRILLIC = bytes(range(0xE0))
_KEEP = WORD_BYTES | {0x00, 0x20}
_PUNCTUATION_TO_SPACE = bytes(i if i in _KEEP else 0x20 for i in range(256))
_NOT_PUNCTUATION = bytes(sorted(_KEEP | {0x27}))  # apostrophes join words (O'Brien)


@lru_cache(maxsize=4096)
def _extra_char(ch: str) -> str:
    """Fold one character that cp1251 cannot encode into one that it can (1:1)."""
    if ch in APOSTROPHES:
        return "'"
    if ch in DASHES:
        return "-"
    if unicodedata.combining(ch) or _IGNORABLE_RE.match(ch):
        return "\x00"  # stress marks, other combining marks and invisible characters: dropped
    if ch.isspace():
        return " "
    base = unicodedata.normalize("NFD", ch)[0]
    if base.isascii() and base.isalpha():
        return base.lower()
    return "\x01" if ch.isalpha() or ch.isdigit() else "?"


def _prepare_slow(text: str) -> tuple[str, list[int], list[int]]:
    """HTML-strip, NFKC and casefold with a per-char map to the original (starts, ends)."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def emit(piece: str, start: int, end: int) -> None:
        out.append(piece)
        starts.extend([start] * len(piece))
        ends.extend([end] * len(piece))

    def emit_text(segment: str, offset: int) -> None:
        folded = segment.casefold()
        plain = unicodedata.is_normalized("NFKC", segment) and not _has_ignorable(segment)
        if plain and len(folded) == len(segment):
            out.append(folded)  # the common case: one char in, one char out
            starts.extend(range(offset, offset + len(segment)))
            ends.extend(range(offset + 1, offset + len(segment) + 1))
            return
        i = 0
        while i < len(segment):
            j = i + 1
            while j < len(segment) and unicodedata.combining(segment[j]):
                j += 1
            emit(normalize_cluster(_drop_ignorable(segment[i:j])), offset + i, offset + j)
            i = j

    pos = 0
    for m in _MARKUP_RE.finditer(text) if "<" in text or "&" in text else ():
        emit_text(text[pos : m.start()], pos)
        emit(normalize_cluster(_drop_ignorable(_markup_text(m))), m.start(), m.end())
        pos = m.end()
    emit_text(text[pos:], pos)
    return "".join(out), starts, ends


def normalize_cluster(cluster: str) -> str:
    """NFKC-casefold one base character with its combining marks."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", cluster).casefold())


_Marks = tuple[list[int], list[int]]


def _compact(spaced: bytes) -> tuple[bytes, bytes]:
    """The skeleton: `spaced` without nulls and with one space per run of spaces; and `marked`,
    the same before the extra spaces go, each of them turned into byte 2 (which `spaced` never
    holds), to map skeleton offsets back (see `Folded._to_pre`)."""
    marked = spaced.replace(b"\x00", b"") if b"\x00" in spaced else spaced
    if b"  " not in marked:
        return marked, marked
    marked = marked.replace(b"  ", b" \x02").replace(b"\x02 ", b"\x02\x02")  # "   " -> " \x02\x02"
    return marked.translate(None, b"\x02"), marked


def _piece_starts(text: bytes, sep: bytes) -> list[int]:
    """Where each piece of `text.split(sep)` starts once the separators are removed."""
    return list(accumulate(map(len, text.split(sep)), initial=0))[:-1]


class Folded:
    """The skeleton of one text, with the way back to the original offsets.

    The skeleton starts with a space and has exactly one space before every word (punctuation
    becomes a space too), so automaton keys can start with " " and only ever fire at a word start.
    """

    __slots__ = ("_ends", "_marked", "_marks", "_pre", "_spaced", "_starts", "skeleton")

    def __init__(
        self, pre: bytes, spaced: bytes, starts: list[int] | None, ends: list[int] | None
    ) -> None:
        self._pre = b" " + pre  # 1:1 with " " + the prepared text; punctuation still in place
        self._spaced = b" " + spaced  # the same with punctuation turned into spaces
        skeleton, self._marked = _compact(self._spaced)
        self.skeleton = skeleton.decode("latin-1")
        self._starts = starts  # None: the prepared text is the original
        self._ends = ends
        self._marks: _Marks | None = None

    def _to_pre(self, pos: int) -> int:
        """Index in `_spaced` of skeleton index `pos`: add the bytes removed before it.

        The maps are C-level splits, no Python loop over the text, and only built for fields
        with a hit."""
        if self._marks is None:
            self._marks = (
                _piece_starts(self._marked, b"\x02"),
                _piece_starts(self._spaced, b"\x00"),
            )
        run_starts, null_starts = self._marks
        single = pos + bisect_right(run_starts, pos) - 1  # each earlier piece lost one byte
        return single + bisect_right(null_starts, single) - 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of skeleton [start, end) (not including the lead space)."""
        a, b = self._to_pre(start), self._to_pre(end - 1) + 1
        spaced = self._spaced
        lead = a
        while lead > 1 and spaced[lead - 1] == 0:
            lead -= 1
        if lead == 1 or spaced[lead - 1] == 0x20:
            a = lead  # signs opening a word belong to it; a mark on the letter before does not
        while b < len(spaced) and spaced[b] == 0:
            b += 1  # trailing dropped signs belong to the word as written: "Луганськ"
        a, b = a - 1, b - 1  # without the lead space
        if self._starts is None or self._ends is None:
            return a, b
        return self._starts[a], self._ends[b - 1]

    def punctuation(self, start: int, end: int) -> bytes:
        """The punctuation between skeleton [start, end) (phrases must not span a full stop)."""
        return self._pre[self._to_pre(start) : self._to_pre(end - 1) + 1].translate(
            None, _NOT_PUNCTUATION
        )


def _fix_mixed_scripts(pre: bytes) -> bytes:
    """Fold each word that mixes Latin and Cyrillic letters into one script (homoglyph attacks)."""
    classes = pre.translate(_SCRIPT_CLASS)
    if b"LC" not in classes and b"CL" not in classes:
        return pre
    buf = bytearray(pre)
    for m in _MIXED_WORD_RE.finditer(classes):
        word = pre[m.start() : m.end()]
        lat = [c for c in word if 0x61 <= c <= 0x7A]
        if not lat or len(lat) == len(word):
            continue
        to_cyr = all(c in _LAT2CYR for c in lat)
        to_lat = all(c in _CYR2LAT for c in word if c >= 0xE0)
        if to_cyr and (not to_lat or len(word) - len(lat) >= len(lat)):
            buf[m.start() : m.end()] = bytes(_LAT2CYR.get(c, c) for c in word)
        elif to_lat:
            buf[m.start() : m.end()] = bytes(_CYR2LAT.get(c, c) for c in word)
    return bytes(buf)


def _drop_inner_apostrophes(pre: bytes) -> bytes:
    """Ukrainian writes an apostrophe inside words (Слов'янськ); Russian does not."""
    buf = bytearray(pre)
    i = pre.find(b"'", 1)
    while i != -1 and i + 1 < len(pre):
        if pre[i - 1] >= 0xE0 and pre[i + 1] >= 0xE0:
            buf[i] = 0
        i = pre.find(b"'", i + 1)
    return bytes(buf)


class _ExtraTable(dict[int, str]):
    """str.translate table for characters cp1251 lacks; filled on demand (bounded)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        try:
            ch.encode("cp1251")
        except UnicodeEncodeError:
            ch = _extra_char(ch)
        if len(self) < 4096:
            self[code] = ch
        return ch


_EXTRA_TABLE = _ExtraTable()
_COMMON_EXTRA = (("ʼ", "'"), ("′", "'"), ("‐", "-"), ("‑", "-"), ("−", "-"), ("―", "-"))


def _has_markup(text: str) -> bool:
    return ("<" in text or "&" in text) and _MARKUP_RE.search(text) is not None


def prepare(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """HTML-free NFKC text plus its map to `text` (None when it is `text` itself)."""
    if _has_markup(text) or not unicodedata.is_normalized("NFKC", text) or _has_ignorable(text):
        return _prepare_slow(text)
    return text, None, None


def _plain_cp1251(text: str) -> bytes | None:
    """`text` in cp1251 if `prepare` would leave it as it is, else None.

    Most Cyrillic news text encodes whole, and then the soft hyphen is the only invisible
    character it can hold: a find replaces the slower `_IGNORABLE_RE` scan of all of it."""
    try:
        raw = text.encode("cp1251")
    except UnicodeEncodeError:
        return None
    if "\xad" in text or _has_markup(text) or not unicodedata.is_normalized("NFKC", text):
        return None
    return raw


def fold(text: str) -> Folded:
    """Build the matching skeleton of `text` (see the module docstring)."""
    plain = None if text.isascii() else _plain_cp1251(text)  # isascii() is O(1) in CPython
    if plain is not None:
        return _fold_cp1251(plain, None, None)
    prepared, starts, ends = prepare(text)
    if prepared.isascii():  # English text takes this path
        return Folded(*_fold_ascii(prepared.encode("ascii")), starts, ends)
    raw = prepared.encode("cp1251", "replace")
    if raw.count(b"?") != prepared.count("?"):
        for old, new in _COMMON_EXTRA:
            if old in prepared:
                prepared = prepared.replace(old, new)
        raw = prepared.encode("cp1251", "replace")
        if raw.count(b"?") != prepared.count("?"):
            if starts is None:  # casefold what cp1251 cannot lower-case (ß -> ss), keeping offsets
                prepared, starts, ends = _prepare_slow(prepared)
            raw = prepared.translate(_EXTRA_TABLE).encode("cp1251", "replace")
    return _fold_cp1251(raw, starts, ends)


def _fold_cp1251(raw: bytes, starts: list[int] | None, ends: list[int] | None) -> Folded:
    pre = raw.translate(_BYTE_FOLD)
    if pre.translate(None, _NOT_LATIN) and pre.translate(None, _NOT_CYRILLIC):
        pre = _fix_mixed_scripts(pre)
    if b"'" in pre:
        pre = _drop_inner_apostrophes(pre)
    return Folded(pre, pre.translate(_PUNCTUATION_TO_SPACE), starts, ends)


def _fold_ascii(raw: bytes) -> tuple[bytes, bytes]:
    pre = raw.translate(_BYTE_FOLD)
    return pre, pre.translate(_PUNCTUATION_TO_SPACE)


def skeleton(text: str) -> str:
    """The skeleton of a term or any text, without the offset map or the lead space."""
    return fold(text).skeleton.strip(" ")


def punctuation(text: str) -> frozenset[int]:
    """The punctuation bytes a term itself contains (allowed inside its phrase hits)."""
    folded = fold(text)
    if len(folded.skeleton) < 2:
        return frozenset()
    return frozenset(folded.punctuation(1, len(folded.skeleton)))


class Normalized:
    """`normalize`d text with a way back to original offsets (what `/regex/` terms see)."""

    __slots__ = ("_ends", "_prepared", "_starts", "_words", "text")

    def __init__(self, prepared: str, starts: list[int] | None, ends: list[int] | None) -> None:
        self.text = " ".join(prepared.split())
        self._prepared = prepared
        self._starts = starts
        self._ends = ends
        self._words: tuple[list[int], list[int], list[int]] | None = None

    def _to_prepared(self, pos: int) -> int:
        if self._words is None:  # computed only for fields where a regex matched
            spans = [m.span() for m in _NON_SPACE_RE.finditer(self._prepared)]
            starts = [a for a, _ in spans]
            lengths = (b - a + 1 for a, b in spans)
            self._words = (list(accumulate(lengths, initial=0)), starts, [b for _, b in spans])
        compact_starts, starts, ends = self._words
        i = bisect_right(compact_starts, pos) - 1
        offset = pos - compact_starts[i]
        return starts[i] + offset if offset < ends[i] - starts[i] else ends[i]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of normalized [start, end)."""
        a, b = self._to_prepared(start), self._to_prepared(end - 1) + 1
        if self._starts is None or self._ends is None:
            return a, b
        return self._starts[a], self._ends[b - 1]


_NON_SPACE_RE = re.compile(r"\S+")


def normalize_mapped(text: str) -> Normalized:
    """`normalize(text)` as `.text`, keeping offsets into `text`."""
    prepared, starts, ends = prepare(text)
    if starts is None:
        folded = prepared.casefold()
        if len(folded) != len(prepared):
            prepared, starts, ends = _prepare_slow(text)
        else:
            prepared = folded
    if _UNIFY_RE.search(prepared):
        for char, replacement in _UNIFY_MAP.items():
            prepared = prepared.replace(char, replacement)
    return Normalized(prepared, starts, ends)
