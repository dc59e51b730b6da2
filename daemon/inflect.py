"""A suffix model of Ukrainian and Russian declension, for matching inflected place and unit names.

A Cyrillic term becomes a few (stem, endings) pairs: "бахмут" -> ("бахмут", {"", "а", "у", "и",
"ом", ...}); the automaton looks for the stem and the matcher accepts the hit only when the rest
of the word is one of the endings. Why a suffix model and not a dictionary or a stemmer:

- the names we watch (Соледар, Бахмутське, Кліщіївка) are mostly not in any dictionary;
- the endings of both languages are a short closed list keyed by the word's last letters, so the
  model is a page of tables, needs no data files, and costs nothing at match time;
- it works on folded words (see `text.fold_word`: і/ї/й/ы -> и, є/ё/э -> е, ь/ъ dropped), so one
  table serves Ukrainian and Russian spellings at once (Бахмуті and Бахмуте both end in "и"/"е").

It over-generates on purpose (a few endings a given word never takes); a false form must still
be a whole word of the text that starts with the stem, which keeps false hits rare.
"""

from __future__ import annotations

MIN_STEM = 3  # shorter words are matched exactly: their "inflections" are too often other words

_NOUN_CONSONANT = frozenset(["", "а", "я", "у", "ю", "и", "е", "ом", "ем", "ови", "еви"])
_NOUN_A = frozenset(["а", "и", "е", "у", "ою", "ои", "еи", "ам", "ами", "ах"])
_NOUN_YA = frozenset(["я", "и", "ю", "е", "ею", "еи", "ям", "ями", "ях"])
_NOUN_O = frozenset(["о", "а", "у", "и", "е", "ом", "ови"])
_NOUN_E = frozenset(["е", "я", "ю", "ем", "и", "а", "у", "ом"])
_PLURAL = frozenset(["и", "ам", "ами", "ах", "ов", "ив", "ев", "ям", "ями", "ях"])
_ADJECTIVE = frozenset(
    [
        "ии",
        "ои",
        "ого",
        "ому",
        "им",
        "ом",
        "а",
        "ая",
        "у",
        "ую",
        "ою",
        "е",
        "ое",
        "ее",
        "их",
        "ими",
        "ие",
        "и",
        "еи",
        "ем",
        "ого",
        "его",
        "ему",
    ]
)
# Ukrainian dative/locative of -ка/-га/-ха nouns: Авдіївка -> Авдіївці, Прага -> Празі.
_VELAR_ALTERNATION = {"к": "ци", "г": "зи", "х": "си"}
_VOWELS = frozenset("аеиоуюя")

Forms = tuple[tuple[str, frozenset[str]], ...]


def _ikavism(word: str) -> list[str]:
    """Ukrainian і in a closed last syllable is о/е elsewhere: Харків/Харкова/Харьков."""
    out = []
    for tail in ("ив", "ивск", "ивка", "ивци"):
        if word.endswith(tail) and len(word) - len(tail) >= 2:
            stem = word[: -len(tail)]
            out += [stem + "о" + tail[1:], stem + "е" + tail[1:]]
    return out


def _noun_forms(word: str) -> list[tuple[str, frozenset[str]]]:
    last = word[-1]
    if word.endswith(("ска", "цка", "ная")):
        return [(word[: -2 if word.endswith("ая") else -1], _ADJECTIVE | _NOUN_A)]
    if word.endswith(("ии", "ои")) and len(word) > 4:
        return [(word[:-2], _ADJECTIVE)]
    if word.endswith(("ске", "цке", "ое", "ее")):
        return [(word[: -2 if word.endswith(("ое", "ее")) else -1], _ADJECTIVE)]
    if last == "а":
        stem = word[:-1]
        forms = [(stem, _NOUN_A)]
        if stem[-1] in _VELAR_ALTERNATION:
            forms.append((stem[:-1], frozenset([_VELAR_ALTERNATION[stem[-1]]])))
        return forms
    if last == "я":
        return [(word[:-1], _NOUN_YA)]
    if last == "о":
        return [(word[:-1], _NOUN_O)]
    if last == "е":
        return [(word[:-1], _NOUN_E)]
    if last == "и":
        stem = word[:-1]
        endings = _PLURAL | {"ю", "ем", "е", "я"}
        return [(stem, endings | {""} if len(stem) >= 5 else endings)]
    if last in _VOWELS:
        return [(word, frozenset([""]))]
    forms = [(word, _NOUN_CONSONANT)]
    if word.endswith(("ец", "ок")) and len(word) > 4:  # fleeting vowel: Кременець -> Кременця
        forms.append((word[:-2] + word[-1], _NOUN_CONSONANT - {""}))
    return forms


def inflect(word: str) -> Forms:
    """(stem, allowed endings) pairs covering the declension of one folded Cyrillic word."""
    if len(word) <= MIN_STEM or not word.isalpha():
        return ((word, frozenset([""])),)
    pairs: dict[str, set[str]] = {}
    for variant in [word, *_ikavism(word)]:
        for stem, endings in _noun_forms(variant):
            pairs.setdefault(stem, set()).update(endings)
    # Keep the nominative itself even when the model reads it as an ending of a shorter stem.
    if not any(word == stem + e for stem, ends in pairs.items() for e in ends):
        pairs.setdefault(word, set()).add("")
    # Stems shorter than MIN_STEM would fire on every other word ("по" in "под", "погибли").
    return tuple(
        sorted((stem, frozenset(ends)) for stem, ends in pairs.items() if len(stem) >= MIN_STEM)
    )


def word_forms(word: str) -> set[str]:
    """Every whole word `inflect` accepts (for tests and `vedette explain`)."""
    return {stem + ending for stem, endings in inflect(word) for ending in endings}
