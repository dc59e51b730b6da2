"""Story grouping: which recent story, if any, a new article belongs to. Pure: no I/O, no clock.

SPEC §4: a story is the same report carried by several feeds: the same canonical URL, or a
near-identical title, within 48 h. A false merge hides news (the later report never alerts); a
missed merge only repeats it. So every rule below leans towards "a new story".

Method: a title becomes the set of its words, folded (`text.skeleton`), stop words dropped and
stemmed by a few suffix rules (English plurals, -ed, -ing; Ukrainian and Russian case endings);
two sets compare by Jaccard. MinHash would only estimate this same similarity, which pays off for
long texts or millions of items; titles are short and ~20,000 of them fit an exact inverted
index. Character shingles absorb inflection but also join different words sharing letters
("Бахмут"/"Бахмутське"). The folded stems make "Бахмуті"/"Бахмута"/"Бахмутом" one token, and often
a name's Ukrainian and Russian spellings ("Зеленський"/"Зеленский", "Харків"/"Харькова"). Other
words differ between the two languages, so their titles group only when nearly all words match,
and English never groups with Cyrillic by title: translations are missed, never confused.

Guards on a title match (a URL match needs none):

- both titles have `min_title_tokens` content words: short formulas recur ("Air raid in Kyiv");
- numbers are tokens, and if both titles have some, one set must contain the other: "kills 8"
  vs "kills 12" are two reports (a new toll is news), "kills 8" vs "kills 8, 20 hurt" are one;
- if each title names a place or person the other lacks (capitalised words inside a sentence-case
  title), they are two reports: "Вибухи в Одесі: ..." and "Вибухи в Києві: ..." fill one template;
- `title_threshold` holds for two feeds' titles at most `title_window_s` apart. Other pairs need
  `near_identical` titles, and one feed's pair must also be that close in time: an outlet
  re-posting a piece, not its daily "General Staff: ..." update;
- hedge and attribution words ("claims", "reportedly", "says", "заявили", "якобы") are stop
  words, so a claim and its confirmation group when the rest of the title is the same (SPEC §4
  then lifts the "unconfirmed" label). Differently worded ones stay apart.

The window runs from a story's first article, so a chain of similar titles cannot stretch it.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from daemon.parse import canonical_url
from daemon.text import fold_word, skeleton

# Function words, plus hedge and attribution words: "Russia claims X" and "Ukraine confirms X"
# should differ in "confirms" only. (Which words make an alert "unconfirmed" is alert.py's job.)
_STOP_EN = """a an the of in on at to for from by with as into onto over after amid about against
    and or but if than then that this these those it its is are was were be been being has have had
    will would could can may might not no new says say said saying tells told report reports
    reported reportedly claims claim claimed claiming allegedly alleged unconfirmed according
    sources source official officials via update updates live latest breaking video watch photos
    what how why who where when we you he she they his her their our s t"""
_STOP_UK_RU = """в у на з із зі до від за по під про та і й а але не що як це для після через біля
    між над при чи вже ще також там тут його її їх нові новий відео фото онлайн заявив заявила
    заявили заявляють повідомив повідомили повідомляє нібито стверджують во с со из к ко от о об
    и но что как это после между уже еще его ее их новые видео заявил заявляют сообщил сообщили
    сообщает якобы утверждают данным"""
STOP_WORDS = frozenset(_STOP_EN.split()) | {fold_word(w) for w in _STOP_UK_RU.split()}
# Case endings of both languages (and reflexive -ся) in the folded alphabet, longest first.
_ENDINGS = """иями ями ами ого ому его ему ими ою ею ую юю ая яя ое ее ие ии ои их ах ях ам ям ом ем
    им ся а я у ю и е о"""
_CYR_ENDINGS = tuple(
    (n, frozenset(e for e in _ENDINGS.split() if len(e) == n)) for n in (4, 3, 2, 1)
)
_MIN_STEM = 3
_NUMBER_RE = re.compile(r"\d+(?:[,.\u00a0\u202f]\d+)*")
_THOUSANDS_RE = re.compile(r"[,.\u00a0\u202f](?=\d{3}(?!\d))")
_URL_PREFIXES = ("www.", "m.", "amp.", "mobile.")
_NONE: frozenset[int] = frozenset()
_PART_RE = re.compile(r"[.:!?;|«»\"“”]+\s*|\s[-–—]+\s")
_WORD_RE = re.compile(r"[^\W\d_][\w'’ʼ-]*")


@dataclass(frozen=True, slots=True)
class StoryConfig:
    """Grouping thresholds (see the module docstring). Defaults are calibrated on
    tests/data/stories/corpus.yaml with bench/stories_eval.py."""

    window_s: float = 48 * 3600  # from a story's first article (SPEC §4)
    title_threshold: float = 0.6  # Jaccard for two feeds' titles close in time
    min_title_tokens: int = 4  # shorter signatures group by URL only
    title_window_s: float = 12 * 3600  # beyond this gap (or within one feed): near-identical only
    near_identical: float = 0.9

    def __post_init__(self) -> None:
        for name, ok, rule in (
            ("title_threshold", 0 < self.title_threshold <= 1, "in (0, 1]"),
            ("near_identical", 0 < self.near_identical <= 1, "in (0, 1]"),
            ("window_s", self.window_s >= 0, "0 s or more"),
            ("title_window_s", self.title_window_s >= 0, "0 s or more"),
            ("min_title_tokens", self.min_title_tokens >= 1, "1 or more"),
        ):
            if not ok:
                raise ValueError(f"stories.{name}: {getattr(self, name)!r} must be {rule}")


def _stem_en(word: str) -> str:
    """Plurals, -ed, -ing, a final e and doubled letters: kills/killed/killing -> kil."""
    if len(word) <= 3:
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # strike/strikes/striking -> strik
    if len(word) > 3 and word[-1] == word[-2]:
        word = word[:-1]  # hitting -> hit, repelled/repels -> repel, Zelenskyy -> zelensky
    return word


def _stem_cyrillic(word: str) -> str:
    """One case ending (or reflexive -ся) off, then -ів/-ов/-ев -> -ов: Харків/Харкова/Харьков,
    Київ/Києві/Киеве (Ukrainian і in a closed syllable is о/е in other forms and in Russian)."""
    for length, endings in _CYR_ENDINGS:
        if len(word) - length >= _MIN_STEM and word[-length:] in endings:
            word = word[:-length]
            break
    if len(word) >= 4 and word[-1] == "в" and word[-2] in "иое":
        word = word[:-2] + "ов"
    return word


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if not word.isalpha():
        return word
    return _stem_en(word) if word.isascii() else _stem_cyrillic(word)


@lru_cache(maxsize=4096)  # `find` then `add` of one article, and re-polled titles
def title_signature(title: str) -> frozenset[str]:
    """The content words of a title: folded (`text.skeleton`), stop words dropped, stemmed.

    Numbers are tokens as written ("1,000" -> "1000", "1.8" and "1,8" -> "1.8"); other words of
    one letter are dropped.
    """
    numbers = [_THOUSANDS_RE.sub("", n).replace(",", ".") for n in _NUMBER_RE.findall(title)]
    words = skeleton(_NUMBER_RE.sub(" ", title)).encode("latin-1").decode("cp1251").split()
    return frozenset(numbers) | {
        _stem(word) for word in words if len(word) > 1 and word not in STOP_WORDS
    }


@lru_cache(maxsize=4096)
def title_names(title: str) -> frozenset[str]:
    """Signature tokens of the capitalised words inside a sentence-case title: places, people.

    The first word of each part of the title is skipped (it is capitalised anyway), acronyms
    ("ЗСУ", "IAEA") are not names, and a Title Case headline has none we can tell apart.
    """
    words: list[str] = []
    for part in _PART_RE.split(title):
        words += _WORD_RE.findall(part)[1:]
    long_words = [w for w in words if len(w) > 3]
    if sum(w[0].isupper() for w in long_words) * 2 > len(long_words):
        return frozenset()  # Title Case: every word looks like a name
    names = [w for w in words if len(w) > 2 and w[0].isupper() and w[1:].islower()]
    return title_signature(" ".join(names)) - _ACTORS if names else frozenset()


# The two sides of most headlines: naming them or not ("withdraw from Ukraine's Kherson" vs
# "withdraw from Kherson") is wording, not a different place.
_ACTORS = title_signature("""
    Ukraine Ukrainian Ukrainians Russia Russian Russians Moscow Kremlin Україна України Україні
    Росія Росії Росіяни Москва Кремль Украина Украины Россия России Россияне Москвы Кремля
""")


def title_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard: shared tokens over all tokens (0.0 for two empty sets).

    Symmetric and strict about extra words, so a short title inside a long one ("Strike on
    Kramatorsk" in "Second strike on Kramatorsk in a day hits a school") is not the same report.
    """
    shared = len(a & b)
    union = len(a) + len(b) - shared
    return shared / union if union else 0.0


def _numbers_conflict(a: frozenset[str], b: frozenset[str]) -> bool:
    """Both titles give numbers and neither set contains the other ("kills 8" vs "kills 12")."""
    return bool(a and b) and not (a <= b or b <= a)


def url_key(url: str) -> str:
    """`parse.canonical_url` without scheme, a www./m. host prefix or a trailing slash.

    "" when there is no usable link: a site's root page is no story key, since unrelated entries
    of a feed may all link to it.
    """
    _, scheme_sep, rest = canonical_url(url).partition("://") if url else ("", "", "")
    netloc, _, target = rest.partition("/")
    host = netloc.rpartition("@")[2]
    for prefix in _URL_PREFIXES:
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    path, _, query = target.partition("?")
    path = path.rstrip("/")
    if not scheme_sep or not host or not (path or query):
        return ""
    return f"{host}/{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class _Entry:
    story_id: int
    url: str
    signature: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]
    published: datetime
    feed: str


def _require_aware(published: datetime) -> None:
    if published.tzinfo is None or published.utcoffset() is None:
        raise ValueError(f"published={published.isoformat()} is naive; pass a UTC datetime")


def _make_entry(story_id: int, url: str, title: str, published: datetime, feed: str) -> _Entry:
    _require_aware(published)
    signature = title_signature(title)
    numbers = frozenset(t for t in signature if t[0].isdigit())
    return _Entry(story_id, url_key(url), signature, numbers, title_names(title), published, feed)


class StoryIndex:
    """In-memory index of recent stories: finds the story a new article belongs to.

    Articles are entries (story id, URL key, title signature, time, feed). An inverted index from
    token to entries finds title candidates; a prefix filter probes only the rarest tokens a
    match must share, so common words ("ukraine", "russian") never scan thousands of entries.
    Memory is bounded by `prune`.
    """

    def __init__(self, config: StoryConfig = StoryConfig()) -> None:
        self.config = config
        self._entries: dict[int, _Entry] = {}
        self._tokens: dict[str, set[int]] = {}
        self._urls: dict[str, set[int]] = {}
        self._first: dict[int, datetime] = {}  # story id -> its earliest article
        self._sizes: dict[int, int] = {}  # story id -> entries still indexed
        self._by_time: list[tuple[datetime, int]] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, story_id: int, *, url: str, title: str, published: datetime, feed: str) -> None:
        """Record an article as part of `story_id` (new or found by `find`)."""
        entry = _make_entry(story_id, url, title, published, feed)
        entry_id = self._next_id
        self._next_id += 1
        self._entries[entry_id] = entry
        if entry.url:
            self._urls.setdefault(entry.url, set()).add(entry_id)
        if len(entry.signature) >= self.config.min_title_tokens:
            for token in entry.signature:
                self._tokens.setdefault(token, set()).add(entry_id)
        first = self._first.get(story_id)
        self._first[story_id] = published if first is None else min(first, published)
        self._sizes[story_id] = self._sizes.get(story_id, 0) + 1
        heapq.heappush(self._by_time, (published, entry_id))

    def find(self, *, url: str, title: str, published: datetime, feed: str) -> int | None:
        """The story this article belongs to, or None for a new story.

        The same URL key within the window wins; else the most similar title that passes every
        guard (see the module docstring), ties going to the most recent article.
        """
        new = _make_entry(-1, url, title, published, feed)
        if new.url:
            by_url = [self._entries[i] for i in self._urls.get(new.url, ())]
            in_window = [e for e in by_url if self._in_window(e.story_id, published)]
            if in_window:
                return max(in_window, key=lambda e: e.published).story_id
        signature = new.signature
        if len(signature) < self.config.min_title_tokens:
            return None
        # Jaccard >= t needs at least ceil(t * |a|) shared tokens (the union is at least |a|).
        need = max(1, math.ceil(self.config.title_threshold * len(signature) - 1e-9))
        best: tuple[float, datetime, int] | None = None
        for entry_id in self._candidates(signature, need):
            entry = self._entries[entry_id]
            if len(signature & entry.signature) < need:
                continue  # the cheap test first: most candidates share one rare word only
            score = title_similarity(signature, entry.signature)
            if self._accepts(entry, new, score) and (
                best is None or (score, entry.published) > best[:2]
            ):
                best = (score, entry.published, entry.story_id)
        return None if best is None else best[2]

    def prune(self, before: datetime) -> int:
        """Forget articles published before `before`; returns how many were dropped."""
        _require_aware(before)
        dropped = 0
        while self._by_time and self._by_time[0][0] < before:
            _, entry_id = heapq.heappop(self._by_time)
            entry = self._entries.pop(entry_id)
            for index, keys in ((self._urls, [entry.url]), (self._tokens, entry.signature)):
                for key in keys:
                    ids = index.get(key)
                    if ids is not None:
                        ids.discard(entry_id)
                        if not ids:
                            del index[key]
            self._sizes[entry.story_id] -= 1
            if not self._sizes[entry.story_id]:
                del self._sizes[entry.story_id], self._first[entry.story_id]
            dropped += 1
        return dropped

    def _in_window(self, story_id: int, published: datetime) -> bool:
        gap_s = abs((published - self._first[story_id]).total_seconds())
        return gap_s <= self.config.window_s

    def _candidates(self, signature: frozenset[str], need: int) -> set[int]:
        """Entries that can share `need` of our tokens, found without scanning common words.

        Such an entry shares at least two of any `|a| - need + 2` of our tokens, so we take the
        rarest ones and intersect their posting sets pairwise (C-level set operations, each as
        cheap as the smaller set): "ukraine" alone never makes an entry a candidate.
        """
        postings = sorted((self._tokens.get(t, _NONE) for t in signature), key=len)
        if need < 2:
            return set().union(*postings)
        probe = postings[: len(signature) - need + 2]
        found: set[int] = set()
        for i, smaller in enumerate(probe):
            for larger in probe[i + 1 :]:
                found |= smaller & larger
        return found

    def _accepts(self, entry: _Entry, new: _Entry, score: float) -> bool:
        """The guards of the module docstring, for an indexed title that scored `score`."""
        config = self.config
        if score < config.title_threshold or len(entry.signature) < config.min_title_tokens:
            return False
        if not self._in_window(entry.story_id, new.published):
            return False
        if _numbers_conflict(new.numbers, entry.numbers):
            return False
        if entry.names - new.signature and new.names - entry.signature:
            return False  # each names a place or person the other does not
        gap_s = abs((new.published - entry.published).total_seconds())
        if entry.feed != new.feed and gap_s <= config.title_window_s:
            return True
        if score < config.near_identical:
            return False
        return entry.feed != new.feed or gap_s <= config.title_window_s
