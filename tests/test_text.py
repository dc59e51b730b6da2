"""Normalisation, the matching skeleton, transliteration and the suffix model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon import inflect, text, translit


def skel(value: str) -> str:
    """The skeleton made readable again (it is cp1251 bytes decoded as latin-1)."""
    return text.skeleton(value).encode("latin-1").decode("cp1251")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Bakhmut’s  defenders\n", "bakhmut's defenders"),
        ("Слов\u02bcянськ — місто", "слов'янськ - місто"),
        ("ＰＭＣ Wagner", "pmc wagner"),
        ("STRASSE Straße", "strasse strasse"),
        ("a\u2011b\u2212c", "a-b-c"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert text.normalize(raw) == expected


@given(st.text())
def test_normalize_is_idempotent(value: str) -> None:
    once = text.normalize(value)
    assert text.normalize(once) == once


def test_strip_html() -> None:
    assert text.strip_html("<p>Bakh<b>mut</b> &amp; Soledar</p><p>next</p>") == (
        " Bakhmut & Soledar  next "
    )
    assert text.strip_html("AT&T <script>x()</script>ok") == "AT&T  ok"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Бої за Бахмут", "бои за бахмут"),
        ("Артёмовск Артемівськ", "артемовск артемивск"),
        ("Луганськ, Луганск", "луганск луганск"),
        ("Слов’янськ", "словянск"),
        ("Бaхмут", "бахмут"),  # Latin "a" inside a Cyrillic word
        ("Bаkhmut", "bakhmut"),  # Cyrillic "а" inside a Latin word
        ("Bakhmut-based\n\tPMC", "bakhmut based pmc"),
        ("Kyïv", "kyiv"),
    ],
)
def test_skeleton(raw: str, expected: str) -> None:
    assert skel(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "plain ascii, with punctuation;  and  spaces",
        "Бої  за Бахмут, ЗСУ — відбили\u00adатаку",
        "<p>Bakh<b>mut</b> &amp; Соледар</p>",
        "Бахму\u0301т Straße Е\u0308",
        "  ь ъ '  leading",
    ],
)
def test_fold_spans_point_at_original_words(raw: str) -> None:
    folded = text.fold(raw)
    sk = folded.skeleton
    for word_start in (i + 1 for i, c in enumerate(sk) if c == " " and i + 1 < len(sk)):
        word_end = sk.find(" ", word_start)
        word_end = len(sk) if word_end == -1 else word_end
        start, end = folded.span(word_start, word_end)
        assert 0 <= start < end <= len(raw)
        assert text.skeleton(raw[start:end]) == sk[word_start:word_end]


@given(st.text(alphabet=st.sampled_from("бв ь-,.\n'Бг\u0301&;<>"), max_size=40))
def test_fold_span_round_trips(raw: str) -> None:
    folded = text.fold(raw)
    sk = folded.skeleton
    for i in range(1, len(sk)):
        if sk[i] != " ":
            start, end = folded.span(i, i + 1)
            assert text.skeleton(raw[start:end]) == sk[i]


def test_normalize_mapped_keeps_offsets() -> None:
    raw = "Troops  ENCIRCLED\nthe city"
    normalized = text.normalize_mapped(raw)
    assert normalized.text == "troops encircled the city"
    assert normalized.span(7, 16) == (8, 17)


@pytest.mark.parametrize(
    ("cyrillic", "latin"),
    [
        ("бахмут", "bakhmut"),
        ("харків", "kharkiv"),
        ("луганськ", "luhansk"),
        ("артёмовск", "artyomovsk"),
        ("артемовск", "artemovsk"),
        ("запоріжжя", "zaporizhzhia"),
        ("київ", "kyiv"),
        ("соледар", "soledar"),
    ],
)
def test_romanize(cyrillic: str, latin: str) -> None:
    assert latin in translit.romanize(cyrillic)


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [
        ("bakhmut", "бахмут"),
        ("kharkiv", "харків"),
        ("kharkov", "харьков"),
        ("luhansk", "луганськ"),
        ("lugansk", "луганск"),
        ("artyomovsk", "артёмовск"),
        ("zaporizhzhia", "запоріжжя"),
        ("kyiv", "київ"),
    ],
)
def test_to_cyrillic(latin: str, cyrillic: str) -> None:
    assert text.fold_word(cyrillic) in translit.to_cyrillic(latin)


def test_latin_variants_only_for_transliterated_words() -> None:
    assert {"kharkov", "lugansk"} <= translit.latin_variants("kharkiv") | translit.latin_variants(
        "luhansk"
    )
    assert "gorlovka" in translit.latin_variants("horlivka")
    assert translit.latin_variants("has") == {"has"}
    assert translit.latin_variants("gas") == {"gas"}


@pytest.mark.parametrize(
    ("word", "forms"),
    [
        ("бахмут", "бахмута бахмуту бахмуті бахмутом бахмуте"),
        ("соледар", "соледара соледарі"),
        ("артемовск", "артемовске артемовска"),
        ("авдіївка", "авдіївки авдіївці авдіївку авдіївкою"),
        ("покровськ", "покровська покровську"),
        ("херсон", "херсоні херсоном"),
        ("харків", "харкова харкові харькове"),
        ("київ", "києва києві киеве"),
        ("маріуполь", "маріуполя маріуполі маріуполем"),
        ("запоріжжя", "запоріжжі запоріжжю запоріжжям"),
        ("бахмутське", "бахмутського бахмутському бахмутское"),
        ("донецька", "донецької донецькій"),
    ],
)
def test_inflect(word: str, forms: str) -> None:
    accepted = inflect.word_forms(text.fold_word(word))
    assert text.fold_word(word) in accepted
    for form in forms.split():
        assert text.fold_word(form) in accepted, form


def test_inflect_leaves_short_words_alone() -> None:
    assert inflect.word_forms("зсу") == {"зсу"}
