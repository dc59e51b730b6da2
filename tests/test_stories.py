"""Story grouping: signatures, similarity, the index's rules and guards, and corpus quality bars."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.stories import (
    StoryConfig,
    StoryIndex,
    title_names,
    title_signature,
    title_similarity,
    url_key,
)

T0 = datetime(2023, 2, 1, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def load_eval() -> ModuleType:
    """bench/stories_eval.py, so the test scores the corpus exactly as the bench does."""
    path = Path(__file__).resolve().parent.parent / "bench" / "stories_eval.py"
    spec = importlib.util.spec_from_file_location("stories_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["stories_eval"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


Article = tuple[int, str, str, datetime, str]  # story, url, title, published, feed


def index_with(*articles: Article, **config: float) -> StoryIndex:
    index = StoryIndex(StoryConfig(**config))  # type: ignore[arg-type]
    for story, url, title, published, feed in articles:
        index.add(story, url=url, title=title, published=published, feed=feed)
    return index


def one_story(title: str, feed: str = "first", **config: float) -> StoryIndex:
    """An index holding story 1: one article with this title, at T0."""
    return index_with((1, f"https://{feed}.example/1", title, T0, feed), **config)


def find(
    index: StoryIndex, title: str, *, at: datetime = T0, feed: str = "other", url: str = ""
) -> int | None:
    """The story of a new article (by default: from another feed, at T0, with its own URL)."""
    url = url or f"https://{feed}.example/{abs(hash(title))}"
    return index.find(url=url, title=title, published=at, feed=feed)


# --- signatures and similarity -------------------------------------------------------------------


@pytest.mark.parametrize(
    "forms",
    [
        ("Бахмуті", "Бахмута", "Бахмутом", "Бахмут", "Бахмуте"),  # Ukrainian and Russian cases
        ("Краматорськ", "Краматорська", "Краматорську", "Краматорске"),
        ("Харків", "Харкова", "Харкові", "Харьков", "Харькове"),  # і/о alternation, both languages
        ("Київ", "Києва", "Києві", "Киев", "Киеве"),
        ("Зеленський", "Зеленский", "Зеленського"),
        ("strike", "strikes", "striking"),  # English plurals and verb forms
        ("drone", "drones"),
        ("kill", "kills", "killed", "killing"),
        ("casualty", "casualties"),
        ("repels", "repelled"),
        ("Zelensky", "Zelenskyy"),
    ],
)
def test_inflected_forms_share_one_token(forms: tuple[str, ...]) -> None:
    signatures = {title_signature(form) for form in forms}
    assert len(signatures) == 1 and len(next(iter(signatures))) == 1, signatures


def test_signature_drops_stop_words_and_hedges_and_keeps_numbers() -> None:
    assert title_signature("Wagner reportedly claims the capture of Soledar") == title_signature(
        "Wagner captures Soledar"
    )
    assert title_signature("Пригожин заявил, что «Вагнер» захватил Соледар") == {
        "пригожин", "вагнер", "захватил", "соледар",
    }  # fmt: skip
    assert {"1000", "1.85", "31"} <= title_signature("31 tanks, 1,000 troops and $1.85 billion")
    assert "1.5" in title_signature("1,5 млрд гривень")


def test_different_words_stay_different() -> None:
    # Бахмутське is another place than Бахмут; a stemmer must not fold it away.
    assert title_signature("Бахмутське") != title_signature("Бахмут")
    assert not title_signature("Russia strikes Kyiv") & title_signature("Росія атакувала Київ")


@pytest.mark.parametrize(
    ("title", "names"),
    [
        ("Вибухи в Одесі: сили ППО збивають дрони", {"одес"}),
        ("Russian missile strike hits Kharkiv infrastructure", {"kharkiv"}),
        ("Russia orders troops to withdraw from Ukraine's Kherson city", {"kherson"}),  # not actors
        ("Zelensky arrives in US", set()),  # first words and acronyms are not names
        ("Russian Forces Press Assault On Bakhmut", set()),  # Title Case: cannot tell
    ],
)
def test_title_names(title: str, names: set[str]) -> None:
    assert title_names(title) == names


def test_similarity_is_jaccard() -> None:
    a, b = frozenset("abcd"), frozenset("abce")
    assert title_similarity(a, b) == pytest.approx(3 / 5) == title_similarity(b, a)
    assert title_similarity(a, a) == 1.0
    assert title_similarity(frozenset(), frozenset()) == 0.0
    assert title_similarity(a, frozenset("xyz")) == 0.0


WORDS = "Soledar Bakhmut Wagner claims capture town salt mine Бахмут Соледар"
words = st.sampled_from(WORDS.split(" "))


@given(st.lists(words, min_size=1, max_size=8), st.lists(words, min_size=1, max_size=8))
def test_similarity_properties(a: list[str], b: list[str]) -> None:
    sa, sb = title_signature(" ".join(a)), title_signature(" ".join(b))
    assert 0.0 <= title_similarity(sa, sb) == title_similarity(sb, sa) <= 1.0
    assert title_signature(" ".join(a).upper()) == sa


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://www.reuters.com/world/x-2023/?utm_source=yahoo", "reuters.com/world/x-2023"),
        ("http://reuters.com/world/x-2023", "reuters.com/world/x-2023"),
        ("https://m.example.com/a#comments", "example.com/a"),
        ("https://example.com/?p=12", "example.com/?p=12"),
        ("https://example.com/", ""),  # a site's root page is no story
        ("", ""),
        ("not a link", ""),
    ],
)  # fmt: skip
def test_url_key(url: str, key: str) -> None:
    assert url_key(url) == key


# --- the index -----------------------------------------------------------------------------------

REUTERS_URL = "https://www.reuters.com/world/europe/russian-missile-strike-kramatorsk-2023-02-01/"
KRAMATORSK = "Russian missile strike on Kramatorsk kills 2, governor says"


def test_same_canonical_url_is_one_story_whatever_the_title() -> None:
    index = index_with((1, REUTERS_URL, KRAMATORSK, T0, "reuters"))
    syndicated = "http://reuters.com/world/europe/russian-missile-strike-kramatorsk-2023-02-01?utm_medium=rss"
    assert find(index, "Kramatorsk: two dead", url=syndicated, feed="msn") == 1
    assert find(index, "Kramatorsk: two dead", url=REUTERS_URL, feed="reuters") == 1  # an edit
    assert find(index, "Kramatorsk: two dead", url="https://www.reuters.com/") is None


def test_reworded_wire_copy_from_another_feed_is_one_story() -> None:
    index = index_with((1, REUTERS_URL, KRAMATORSK, T0, "reuters"))
    assert find(index, "Russian missile strike kills 2 in eastern city of Kramatorsk") == 1
    assert find(index, "Russian missile strike on Kramatorsk: 2 killed", at=T0 + 3 * HOUR) == 1


def test_a_claim_and_its_confirmation_in_the_same_words_are_one_story() -> None:
    claim = "Russian forces reportedly capture village of Krasna Hora near Bakhmut"
    index = index_with((1, "https://a.example/1", claim, T0, "guardian"))
    confirmed = "Russian forces capture village of Krasna Hora near Bakhmut, military confirms"
    assert find(index, confirmed, at=T0 + 8 * HOUR) == 1
    assert find(index, "Ukraine denies Russian claim that Krasna Hora has fallen") is None


def test_window_runs_from_the_story_first_article() -> None:
    index = index_with((1, REUTERS_URL, KRAMATORSK, T0, "reuters"))
    assert find(index, "x", url=REUTERS_URL, at=T0 + 47 * HOUR) == 1
    assert find(index, "x", url=REUTERS_URL, at=T0 + 49 * HOUR) is None
    # A later article of the story does not move the window: no chain of copies across days.
    index.add(1, url="https://b.example/2", title=KRAMATORSK, published=T0 + 40 * HOUR, feed="ap")
    assert find(index, KRAMATORSK, at=T0 + 50 * HOUR) is None
    assert find(index, "x", url=REUTERS_URL, at=T0 - 47 * HOUR) == 1  # an older article, late


def test_titles_far_apart_in_time_must_be_near_identical() -> None:
    index = index_with((1, "https://a.example/1", KRAMATORSK, T0, "reuters"))
    reworded = "Russian missile strike kills 2 in eastern city of Kramatorsk"
    assert find(index, reworded, at=T0 + 11 * HOUR) == 1
    assert find(index, reworded, at=T0 + 13 * HOUR) is None
    assert find(index, KRAMATORSK, at=T0 + 30 * HOUR) == 1  # the same words from another feed


def test_numbers_that_disagree_are_different_reports() -> None:
    index = one_story("Russian missile strike on Kramatorsk kills 8")
    assert find(index, "Russian missile strike on Kramatorsk kills 12") is None
    assert find(index, "Russian missile strike on Kramatorsk kills 8, injures 20") == 1
    assert find(index, "Russian missile strike on Kramatorsk, many killed") == 1  # no number: ok
    toll = one_story("Кількість загиблих у Дніпрі зросла до 30")
    assert find(toll, "Кількість загиблих у Дніпрі зросла до 40") is None


def test_the_same_template_for_two_cities_is_two_stories() -> None:
    index = one_story("Вибухи в Одесі: сили ППО збивають дрони")
    assert find(index, "Вибухи в Києві: сили ППО збивають дрони") is None
    assert find(index, "Вибухи в Одесі: сили ППО збивають ворожі дрони") == 1


def test_one_feed_groups_only_near_identical_titles_close_in_time() -> None:
    title, reworded = (
        "Russians shell Kherson, killing two",
        "Russians shell Kherson city, killing two",
    )
    index = one_story(title, feed="ukrinform")
    assert find(index, title, feed="ukrinform", at=T0 + HOUR) == 1  # re-posted under a new URL
    assert find(index, reworded, feed="ukrinform") is None
    assert find(index, title, feed="ukrinform", at=T0 + 24 * HOUR) is None  # the next day's news
    assert find(index, reworded, feed="suspilne") == 1


def test_short_titles_group_by_url_only() -> None:
    title = "Air raid alert in Kyiv"
    assert title_signature(title) == {"air", "raid", "alert", "kyiv"}
    assert find(one_story(title), title) == 1
    strict = one_story(title, min_title_tokens=5)
    assert find(strict, title) is None
    assert find(strict, title, url="https://first.example/1") == 1


def test_languages_group_only_when_the_words_are_the_same() -> None:
    index = one_story("США передадуть Україні 31 танк Abrams", feed="ukrpravda")
    assert find(index, "США передадут Украине 31 танк Abrams", feed="meduza") == 1
    assert find(index, "US to send 31 Abrams tanks to Ukraine", feed="reuters") is None


def test_the_most_similar_story_wins() -> None:
    index = index_with(
        (
            1,
            "https://a.example/1",
            "Germany to send Leopard 2 tanks to Ukraine, Scholz says",
            T0,
            "a",
        ),
        (2, "https://b.example/2", "Germany will send Leopard 2 tanks to Ukraine", T0, "b"),
    )
    assert find(index, "Germany will send Leopard 2 tanks to Ukraine soon") == 2


def test_prune_forgets_old_articles_and_frees_the_index() -> None:
    index = index_with(
        (1, REUTERS_URL, KRAMATORSK, T0, "reuters"),
        (1, "https://ap.example/1", "Russian missile kills 2 in Kramatorsk", T0 + HOUR, "ap"),
        (2, "https://bbc.example/1", "Germany confirms Leopard 2 tanks", T0 + 30 * HOUR, "bbc"),
    )
    assert index.prune(T0 + 2 * HOUR) == 2
    assert len(index) == 1
    assert find(index, "x", url=REUTERS_URL, at=T0 + 3 * HOUR) is None
    assert find(index, KRAMATORSK, at=T0 + 3 * HOUR) is None
    assert index.prune(T0 + 2 * HOUR) == 0
    assert index.prune(T0 + 100 * HOUR) == 1 and len(index) == 0
    assert not index._tokens and not index._urls and not index._first


def test_naive_times_and_bad_thresholds_are_refused() -> None:
    index = StoryIndex()
    with pytest.raises(ValueError, match="naive; pass a UTC datetime"):
        index.add(1, url="", title="x", published=datetime(2023, 1, 1), feed="a")
    with pytest.raises(ValueError, match=r"title_threshold: 1\.5 must be in \(0, 1\]"):
        StoryConfig(title_threshold=1.5)
    with pytest.raises(ValueError, match="min_title_tokens: 0 must be 1 or more"):
        StoryConfig(min_title_tokens=0)


TOKENS = st.lists(
    st.sampled_from(["aa", "bb", "cc", "dd", "ee", "ff", "7", "9", "Odesa", "Kyiv"]),
    min_size=2,
    max_size=7,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(TOKENS, st.integers(0, 30), st.sampled_from(["f1", "f2", "f3"])),
        min_size=1,
        max_size=20,
    ),
    TOKENS,
)
def test_the_inverted_index_finds_what_a_full_scan_finds(
    articles: list[tuple[list[str], int, str]], query: list[str]
) -> None:
    """The candidate filter is an optimisation only: it never loses a match."""
    indexed, scanned = (StoryIndex(StoryConfig(min_title_tokens=3)) for _ in range(2))
    scanned._candidates = lambda signature, need: set(scanned._entries)  # type: ignore[method-assign]
    for n, (tokens, hours, feed) in enumerate(articles):
        title = "Вибухи " + " ".join(tokens)
        for index in (indexed, scanned):
            index.add(n, url="", title=title, published=T0 + hours * HOUR, feed=feed)
    title, at = "Вибухи " + " ".join(query), T0 + 20 * HOUR
    expected = scanned.find(url="", title=title, published=at, feed="f1")
    assert indexed.find(url="", title=title, published=at, feed="f1") == expected


# --- quality on the corpus (bars, not timings) ---------------------------------------------------


def test_corpus_precision_and_recall() -> None:
    """Measured with the defaults: precision 1.000, recall 0.095 (51/539 pairs; en-en 44/153).

    Recall is low by design: most gold pairs are translations (en-uk, en-ru), which title
    matching leaves apart. The bars leave a small margin below the measured values."""
    stories_eval = load_eval()
    score = stories_eval.evaluate(stories_eval.load_corpus(stories_eval.CORPUS))
    assert score.precision >= 0.95, score.false_merges
    assert score.recall >= 0.085
    found, gold = score.recall_by_lang["en-en"]
    assert found / gold >= 0.26


def test_heldout_precision() -> None:
    stories_eval = load_eval()
    score = stories_eval.evaluate(stories_eval.load_corpus(stories_eval.HELDOUT))
    assert score.precision >= 0.95, score.false_merges
    assert score.recall >= 0.1  # measured 0.117 (13/111)
