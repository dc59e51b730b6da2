"""Latin <-> Cyrillic transliteration of terms, and the expansion of a term into automaton keys.

Articles are never transliterated (that would be slow and would make English words collide);
terms are, once, at compile time:

- a Cyrillic term gains its Latin spellings: Ukrainian national romanisation (2010), BGN/PCGN
  for Ukrainian and for Russian, and the usual press spellings (Бахмут -> bakhmut, Харків ->
  kharkiv, Луганськ -> luhansk, Артёмовск -> artyomovsk/artemovsk);
- a Latin term gains its Cyrillic spellings, written directly in the folded alphabet of
  `text.fold_word` (kh -> х, h -> г or х, i/y -> и, ia/ya -> я, ...), which is lossy exactly where
  Ukrainian and Russian differ, so Luhansk finds both Луганськ and Луганск;
- Slavic-looking Latin names also gain the Ukrainian/Russian spelling swaps (h/g, -iv/-ov):
  Kharkiv -> Kharkov, Luhansk -> Lugansk, Horlivka -> Gorlovka. Only for words with a marker of
  transliteration, so "gas" never becomes "has".

Cyrillic spellings are then declined by `inflect`.
"""

from __future__ import annotations

import functools
import itertools
import re

from daemon import inflect, text

MAX_VARIANTS = 12

_COMMON = dict(
    zip(
        "абвгґдежзиклмнопрстуфхцчшщ",
        [
            "a",
            "b",
            "v",
            "h",
            "g",
            "d",
            "e",
            "zh",
            "z",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
        ],
        strict=True,
    )
)
# char: (at word start, elsewhere) per system
_UKR_NATIONAL = {"є": ("ye", "ie"), "ї": ("yi", "i"), "й": ("y", "i"), "ю": ("yu", "iu")}
_UKR_NATIONAL |= {"я": ("ya", "ia"), "і": ("i", "i"), "ь": ("", ""), "'": ("", "")}
_UKR_BGN = {"є": ("ye", "ye"), "ї": ("yi", "yi"), "й": ("y", "y"), "ю": ("yu", "yu")}
_UKR_BGN |= {"я": ("ya", "ya"), "і": ("i", "i"), "ь": ("", ""), "'": ("", "")}
_RUS = {"г": ("g", "g"), "и": ("i", "i"), "й": ("y", "y"), "ы": ("y", "y"), "э": ("e", "e")}
_RUS |= {"ё": ("yo", "yo"), "ю": ("yu", "yu"), "я": ("ya", "ya"), "ь": ("", ""), "ъ": ("", "")}
_RUS_E = {"ё": ("e", "e")}  # the press often writes ё as е (Артемовск)
_UKR_ONLY = frozenset("іїєґ")
_RUS_ONLY = frozenset("ёыэъ")

# Latin -> folded Cyrillic, longest token first; the first option is the most likely.
_LATIN_TOKENS: dict[str, tuple[str, ...]] = {
    "shch": ("щ",), "sch": ("щ", "ш"), "zgh": ("зг",), "kh": ("х",), "zh": ("ж",),
    "ts": ("ц", "тс"), "tz": ("ц",), "ch": ("ч",), "sh": ("ш",), "ya": ("я",), "ia": ("я", "иа"),
    "yu": ("ю",), "iu": ("ю",), "ye": ("е",), "ie": ("е", "ие"), "yo": ("е",), "io": ("е", "ио"),
    "yi": ("и", "ии"), "iy": ("ии",), "yy": ("ии",), "a": ("а",), "b": ("б",), "c": ("к", "ц"),
    "d": ("д",), "e": ("е",), "f": ("ф",), "g": ("г",), "h": ("г", "х"), "i": ("и",), "j": ("и",),
    "k": ("к",), "l": ("л",), "m": ("м",), "n": ("н",), "o": ("о",), "p": ("п",), "q": ("к",),
    "r": ("р",), "s": ("с",), "t": ("т",), "u": ("у",), "v": ("в",), "w": ("в",), "x": ("кс",),
    "y": ("и",), "z": ("з",), "'": ("",),
}  # fmt: skip
_TOKEN_RE = re.compile("|".join(sorted(_LATIN_TOKENS, key=len, reverse=True)) + "|.")
_SLAVIC_MARKER_RE = re.compile(r"kh|zh|shch|ts|yi|iy|yy|iv$|ivk|ivs|sk$|sk[aeiy]$|ia$|ye")
_H_RE = re.compile(r"(?<![kzsc])h")
_LATIN_SWAPS = ((_H_RE, "g"), (re.compile(r"iv(?=$|s|k)"), "ov"), (re.compile("yo"), "e"))

Keys = list[tuple[str, frozenset[str] | None]]  # (skeleton key, allowed endings or None: prefix)


def is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


def romanize(word: str) -> set[str]:
    """Latin spellings of one casefolded Cyrillic word, in the systems the press uses."""
    letters = set(word)
    systems: list[dict[str, tuple[str, str]]] = []
    if not letters & _RUS_ONLY:
        systems += [_UKR_NATIONAL, _UKR_BGN]
    if not letters & _UKR_ONLY:
        systems += [_RUS, _RUS | _RUS_E]
    out = set()
    for system in systems:
        chars = []
        for i, ch in enumerate(word.replace("зг", "з\x00")):
            if ch == "\x00":
                chars.append("gh")
                continue
            pair = system.get(ch)
            chars.append(pair[0 if i == 0 else 1] if pair else _COMMON.get(ch, ch))
        out.add("".join(chars))
    return out


def latin_variants(word: str) -> set[str]:
    """The word plus its Ukrainian/Russian spelling swaps, if it looks transliterated."""
    out = {word}
    if not _SLAVIC_MARKER_RE.search(word):
        return out
    for pattern, repl in _LATIN_SWAPS:
        out |= {pattern.sub(repl, w) for w in out}
    return set(itertools.islice(sorted(out, key=len), MAX_VARIANTS)) | {word}


def to_cyrillic(word: str) -> list[str]:
    """Folded Cyrillic spellings of one Latin word, most likely first."""
    options = [_LATIN_TOKENS.get(tok, (tok,)) for tok in _TOKEN_RE.findall(word)]
    combos = itertools.islice(itertools.product(*options), MAX_VARIANTS)
    return list(dict.fromkeys("".join(c) for c in combos))


def _phrases(words_options: list[list[str]]) -> list[str]:
    combos = itertools.islice(itertools.product(*words_options), MAX_VARIANTS * 4)
    return list(dict.fromkeys(" ".join(c) for c in combos))


@functools.lru_cache(maxsize=256)
def _skeleton_endings(endings: frozenset[str]) -> frozenset[str]:
    return frozenset(text.skeleton(e) for e in endings)


def expand_term(pattern: str) -> Keys:
    """Automaton keys for one literal term: its own spelling, translits and inflected stems.

    `pattern` is a term as written (not a /regex/); a trailing "*" makes it a prefix term.
    """
    prefix = pattern.endswith("*")
    base = text.skeleton(pattern.rstrip("*") if prefix else pattern)
    if not base:
        return []
    words = text.normalize(pattern.rstrip("*")).replace("-", " ").split()
    latin: list[list[str]] = []
    cyrillic: list[list[str]] = []
    for word in words:
        if is_cyrillic(word):
            roman = sorted({v for r in romanize(word) for v in latin_variants(r)})
            latin.append(roman or [word])
            cyrillic.append([text.fold_word(word)])
        else:
            plain = text.skeleton(word)
            latin.append(sorted(latin_variants(plain)))
            letters = sum(c.isalpha() for c in "".join(words))
            cyrillic.append(to_cyrillic(plain) if letters >= 4 and plain.isalpha() else [plain])
    keys: Keys = [(base, None if prefix else frozenset([""]))]
    for phrase in _phrases(latin):
        keys.append((text.skeleton(phrase), None if prefix else frozenset([""])))
    originals = pattern.rstrip("*").split()
    abbreviation = bool(originals) and originals[-1].isupper() and len(originals[-1]) <= 5
    for phrase in _phrases(cyrillic):
        *head, last = phrase.split(" ")
        lead = " ".join(head) + " " if head else ""
        if prefix or abbreviation or not is_cyrillic(last):
            keys.append((text.skeleton(lead + last), None if prefix else frozenset([""])))
            continue
        for stem, endings in inflect.inflect(last):
            keys.append((text.skeleton(lead + stem), _skeleton_endings(endings)))
    return list(dict.fromkeys((" " + k, e) for k, e in keys if k))
