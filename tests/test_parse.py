"""Tests for daemon/parse.py: feed cases from tests/data/feeds, then the helpers, then safety."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import parse
from daemon.errors import ParseError
from daemon.models import ParsedFeed
from daemon.parse import canonical_url, html_to_text, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
DEMO = Path(__file__).parent.parent / "daemon" / "data" / "demo"
FEED_URL = "https://news.example.com/feeds/main.xml"
FETCHED_AT = datetime(2023, 5, 20, 12, 0, tzinfo=UTC)
DEFAULT_HEADERS = {"Content-Type": "application/rss+xml"}

CASES = sorted(path.stem for path in FEEDS.glob("*.xml"))


def parse_case(name: str) -> ParsedFeed:
    headers_file = FEEDS / f"{name}.headers.json"
    headers = json.loads(headers_file.read_text()) if headers_file.exists() else DEFAULT_HEADERS
    content = (FEEDS / f"{name}.xml").read_bytes()
    return parse_feed(content, headers, url=FEED_URL, fetched_at=FETCHED_AT)


def test_every_case_has_an_expectation() -> None:
    assert len(CASES) >= 15
    missing = [name for name in CASES if not (FEEDS / f"{name}.expected.json").exists()]
    assert missing == []


@pytest.mark.parametrize("name", CASES)
def test_feed_case(name: str) -> None:
    expected: Any = json.loads((FEEDS / f"{name}.expected.json").read_text(encoding="utf-8"))
    if isinstance(expected, dict) and "error" in expected:
        with pytest.raises(ParseError) as excinfo:
            parse_case(name)
        assert expected["error"] in str(excinfo.value)
        assert excinfo.value.url == FEED_URL
        return
    parsed = parse_case(name)
    if isinstance(expected, list):
        expected = {"articles": expected}
    if "bozo" in expected:
        assert parsed.bozo_reason is not None
        assert expected["bozo"] in parsed.bozo_reason
    else:
        assert parsed.bozo_reason is None
    if "feed_title" in expected:
        assert parsed.title == expected["feed_title"]
    assert len(parsed.articles) == len(expected["articles"])
    for article, want in zip(parsed.articles, expected["articles"], strict=True):
        got = {
            "entry_id": article.entry_id,
            "url": article.url,
            "title": article.title,
            "summary": article.summary,
            "content": article.content,
            "author": article.author,
            "published": article.published.isoformat(),
        }
        assert {key: got[key] for key in want} == want


def test_every_article_is_clean() -> None:
    """Invariants over every usable case: UTC dates, 64-hex hashes, no control characters."""
    for name in CASES:
        try:
            parsed = parse_case(name)
        except ParseError:
            continue
        for article in parsed.articles:
            assert article.published.tzinfo is UTC
            assert len(article.content_hash) == 64
            for text in (article.title, article.summary, article.content, article.author):
                assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in text)
            assert "\n" not in article.title


def test_hash_ids_are_stable_across_polls_and_edits() -> None:
    first = parse_case("rss_no_guid_no_link")
    again = parse_case("rss_no_guid_no_link")
    assert [a.entry_id for a in first.articles] == [a.entry_id for a in again.articles]
    assert len({a.entry_id for a in first.articles}) == 3
    edited = (
        (FEEDS / "rss_no_guid_no_link.xml").read_bytes().replace(b"Day one.", b"Day 1 (edited).")
    )
    after = parse_feed(edited, {}, url=FEED_URL, fetched_at=FETCHED_AT + timedelta(hours=1))
    assert after.articles[0].entry_id == first.articles[0].entry_id
    assert after.articles[0].content_hash != first.articles[0].content_hash
    assert after.articles[1].content_hash == first.articles[1].content_hash


def test_content_hash_covers_title_summary_content_and_url() -> None:
    article = parse_case("rss2_basic").articles[0]
    hashes = {article.content_hash}
    for changed in (
        replace(article, title="x"),
        replace(article, summary="x"),
        replace(article, content="x"),
        replace(article, url="https://x.example/"),
    ):
        hashes.add(parse._sha256(changed.title, changed.summary, changed.content, changed.url))
    assert len(hashes) == 5


def test_missing_content_type_means_xml_rules_not_latin1() -> None:
    body = '<rss version="2.0"><channel><item><title>Бахмут</title></item></channel></rss>'
    parsed = parse_feed(body.encode(), {}, url=FEED_URL, fetched_at=FETCHED_AT)
    assert parsed.articles[0].title == "Бахмут"
    assert parsed.bozo_reason is None


def test_windows1251_declared_only_in_content_type_text_xml() -> None:
    content = (FEEDS / "rss_windows1251_header.xml").read_bytes()
    headers = {"content-type": "text/xml; charset=windows-1251"}
    parsed = parse_feed(content, headers, url=FEED_URL, fetched_at=FETCHED_AT)
    assert parsed.articles[0].title == "Бои в районе Артемовска продолжаются"


def test_naive_fetched_at_is_a_caller_bug() -> None:
    content = (FEEDS / "rss2_basic.xml").read_bytes()
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed(content, {}, url=FEED_URL, fetched_at=datetime(2023, 5, 20))


def test_unexpected_parser_failure_becomes_chained_parse_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("daemon.parse.feedparser.parse", explode)
    with pytest.raises(ParseError, match="feed parser failed: RuntimeError: boom") as excinfo:
        parse_feed(b"<rss/>", {}, url=FEED_URL, fetched_at=FETCHED_AT)
    assert isinstance(excinfo.value.__cause__, RuntimeError)


def test_feedparser_is_never_given_a_path_or_url(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    real_parse = feedparser.parse

    def spy(source: object, **kwargs: object) -> object:
        seen.append(source)
        assert "content-location" not in kwargs["response_headers"]  # type: ignore[operator]
        return real_parse(source, **kwargs)

    monkeypatch.setattr("daemon.parse.feedparser.parse", spy)
    for body in (b"https://example.com/feed.xml", b"/etc/passwd"):
        with pytest.raises(ParseError, match="not a feed"):
            parse_feed(body, {}, url=FEED_URL, fetched_at=FETCHED_AT)
    assert len(seen) == 2
    assert all(hasattr(source, "read") for source in seen)


# --- entity expansion -------------------------------------------------------------------------


def quadratic_blowup(entity_chars: int = 50_000, references: int = 50_000) -> str:
    return (
        '<?xml version="1.0" encoding="{enc}"?>\n<!DOCTYPE rss [\n'
        f'<!ENTITY a "{"x" * entity_chars}">\n]>\n'
        f'<rss version="2.0"><channel><item><title>{"&a;" * references}</title>'
        "</item></channel></rss>"
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_quadratic_blowup_is_refused_quickly(encoding: str) -> None:
    """feedparser's fallback parser alone takes over a minute and 2.5 GB on this body."""
    content = quadratic_blowup().replace("{enc}", encoding).encode(encoding)
    start = time.monotonic()
    with pytest.raises(ParseError, match="would expand to more than"):
        parse_feed(content, {}, url=FEED_URL, fetched_at=FETCHED_AT)
    assert time.monotonic() - start < 2


def test_billion_laughs_is_refused_quickly_even_behind_a_comment() -> None:
    laughs = (FEEDS / "billion_laughs.xml").read_bytes()
    hidden = laughs.replace(b"<!DOCTYPE", b"<!-- <a> -->\n<!DOCTYPE", 1)
    for content in (laughs, hidden):
        start = time.monotonic()
        with pytest.raises(ParseError, match="refers to other entities"):
            parse_feed(content, {}, url=FEED_URL, fetched_at=FETCHED_AT)
        assert time.monotonic() - start < 1


@pytest.mark.parametrize(
    "declarations",
    [
        '<!ENTITY a "x"><!ENTITY b "&#38;a;&#38;a;&#38;a;">',  # a reference smuggled as "&#38;"
        '<!ENTITY a "x"><!ENTITY b "&#x26;a;&#x26;a;">',
        "<!ENTITY % p \"&#60;!ENTITY b 'x'>\"> %p;",  # a parameter entity writing declarations
        "<!ENTITY a 'x'><!ENTITY b '&a;&a;'>",
    ],
)
def test_entity_nesting_in_disguise_is_refused(declarations: str) -> None:
    content = f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{declarations}\n]>\n<rss version="2.0"/>'
    with pytest.raises(ParseError, match="refers to other entities or is a parameter entity"):
        parse_feed(content.encode(), {}, url=FEED_URL, fetched_at=FETCHED_AT)


def test_small_entity_expansion_is_allowed() -> None:
    content = quadratic_blowup(entity_chars=10, references=1000).replace("{enc}", "utf-8")
    parsed = parse_feed(content.encode(), {}, url=FEED_URL, fetched_at=FETCHED_AT)
    assert parsed.articles[0].title == "x" * 10_000


# --- robustness ---------------------------------------------------------------------------------

NASTY_BODIES = [
    b"\x00",
    b"\xff\xfe\x00\x00",
    b"\xef\xbb\xbf",
    b"<",
    b"<rss",
    b"<?xml version='1.0' encoding='no-such-codec'?><rss><channel><item><title>x",
    b"<?xml version='1.0' encoding='utf-7'?><rss><channel><item><title>+ADw-x",
    b"<rss version='2.0'><channel><item><pubDate>Mon, 99 Foo 99999 99:99:99</pubDate>",
    b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><updated>9999-12-31T23:59:59-23:59",
    b"<rss><channel><item><link>http://[::1/</link><title>x</title></item></channel></rss>",
    b"<rss><channel><item><link>http://h:99999999/</link></item></channel></rss>",
    b"<rss><channel><item><title>&#xD800;&#0;&#x110000;</title></item></channel></rss>",
    b"<rss>" + b"<item>" * 2000,
    b"<html><body><rss><item><title>inside html</title></item></rss></body></html>",
]


@pytest.mark.parametrize("content", NASTY_BODIES)
def test_nasty_bodies_raise_only_parse_error(content: bytes) -> None:
    try:
        parsed = parse_feed(content, {}, url=FEED_URL, fetched_at=FETCHED_AT)
    except ParseError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, ParsedFeed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.builds(
            lambda middle: b'<rss version="2.0"><channel><item><title>' + middle,
            st.binary(max_size=200),
        ),
    ),
    st.sampled_from([{}, {"content-type": "text/html"}, {"content-type": "text/xml"}]),
)
def test_any_bytes_raise_only_parse_error(content: bytes, headers: dict[str, str]) -> None:
    try:
        parsed = parse_feed(content, headers, url=FEED_URL, fetched_at=FETCHED_AT)
    except ParseError as exc:
        assert exc.url == FEED_URL
    else:
        assert isinstance(parsed, ParsedFeed)


# --- canonical_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?utm_source=x&id=1", "https://example.com/a?id=1"),
        ("HTTPS://Example.COM:443/Path?Q=1#frag", "https://example.com/Path?Q=1"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/?b=2&a=1&c=3", "https://example.com/?b=2&a=1&c=3"),
        ("https://e.com/?fbclid=1&gclid=2&yclid=3&mc_cid=4&mc_eid=5&igshid=6", "https://e.com/"),
        ("https://e.com/?ref_src=twsrc&at_medium=rss&at_campaign=x&msclkid=1", "https://e.com/"),
        ("https://e.com/?UTM_Source=x&Utm_medium=y&keep=1", "https://e.com/?keep=1"),
        ("https://e.com/?q=a%20b+c&utm_term=z&x=%E2%9C%93", "https://e.com/?q=a%20b+c&x=%E2%9C%93"),
        ("https://e.com/?a=1&&b=2&", "https://e.com/?a=1&b=2"),
        ("https://e.com/?flag&utm_source", "https://e.com/?flag"),
        ("https://e.com/?ref=home&page=2", "https://e.com/?ref=home&page=2"),
        ("https://user:PW@Example.com:443/x", "https://user:PW@example.com/x"),
        ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
        ("  https://e.com/x\t", "https://e.com/x"),
        ("https://e.com/Ба?q=Бахмут", "https://e.com/Ба?q=Бахмут"),
        ("https://xn--80aaxgc.example/", "https://xn--80aaxgc.example/"),
        ("http://h:bad/x", "http://h:bad/x"),
        ("mailto:desk@example.com", "mailto:desk@example.com"),
        ("", ""),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    url = "HTTPS://Example.com:443/a/b?utm_source=x&id=1&fbclid=y#top"
    once = canonical_url(url)
    assert canonical_url(once) == once


# --- html_to_text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("Line<br>break<br/>again", "Line\nbreak\nagain"),
        ("<b>Bakh</b>mut", "Bakhmut"),
        ("<td>a</td><td>b</td>", "a b"),
        ("<ul><li>x</li><li>y</li></ul>", "x\ny"),
        (
            "Fish &amp; chips &lt;3 &nbsp;&laquo;ok&raquo; &#8212; &#x41;",
            "Fish & chips <3 «ok» — A",
        ),
        ("a<script>alert('<p>x</p>')</script>b", "ab"),
        ("a<style>p { color: red }</style> b", "a b"),
        ("<noscript>enable js</noscript>shown", "shown"),
        ("  lots \t of\u00a0 space  ", "lots of space"),
        ("<p>\n\n  spaced \n\n</p>", "spaced"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("<!-- comment -->text", "text"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("Бахмут&nbsp;&mdash; <i>під</i> обстрілами", "Бахмут — під обстрілами"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@given(st.text(max_size=300))
def test_html_to_text_never_raises_or_leaves_control_characters(html: str) -> None:
    text = html_to_text(html)
    assert not any(ord(ch) < 32 and ch != "\n" for ch in text)
    assert "\n\n" not in text


def html_to_text_by_htmlparser(html: str) -> str:
    extractor = parse._TextExtractor()
    extractor.feed(html)
    extractor.close()
    return parse._clean_lines("".join(extractor.parts))


TAG_NAMES = st.sampled_from(["p", "P", "br", "b", "a", "td", "li", "div", "span", "h2", "img"])
ATTRIBUTES = st.lists(
    st.tuples(
        st.sampled_from(["href", "class", "data-x", "xml:lang", "alt", "disabled"]),
        st.sampled_from(['=""', '="a b"', "='x'", '="&amp;"', '="a>b"', "=x", "", ' = "q"']),
    ),
    max_size=3,
)
MARKUP_PIECES = st.one_of(
    st.text(alphabet="ab Б\n\t\xa0&;#x<>/!-'\"=", max_size=8),
    st.sampled_from(["&amp;", "&lt;", "&nbsp;", "&#8212;", "&bogus;", "&", "<", ">", "</>"]),
    st.sampled_from(["<!-- <p> -->", "<![CDATA[x]]>", "<script>a<p>b</script>", "<?pi?>"]),
    st.sampled_from(["<style>x</style>", "<title>t<p></title>", "<textarea><b></textarea>"]),
    st.sampled_from(["<p-x>", "<p/x>", "<p\x00>", "<br/ >", "</p\n>", "<a\thref='x'>"]),
    st.builds(
        lambda end, name, attrs, close: (
            f"<{end}{name}" + "".join(f" {key}{value}" for key, value in attrs) + f"{close}>"
        ),
        st.sampled_from(["", "/"]),
        TAG_NAMES,
        ATTRIBUTES,
        st.sampled_from(["", " ", "/", " /", "\n"]),
    ),
)


@given(st.lists(MARKUP_PIECES, max_size=12).map("".join))
def test_html_to_text_fast_path_agrees_with_htmlparser(html: str) -> None:
    """Plain markup is cut with one regex instead of HTMLParser: the text must be identical,
    and anything the regex is unsure of must go to HTMLParser."""
    assert html_to_text(html) == html_to_text_by_htmlparser(html)


def test_html_to_text_takes_the_fast_path_for_plain_markup() -> None:
    html = '<p class="lead">Bakhmut &amp; <a href="https://x.example/?a=1">Soledar</a></p><br/>'
    assert parse._plain_markup_parts(html) is not None
    assert html_to_text(html) == html_to_text_by_htmlparser(html) == "Bakhmut & Soledar"
    for other in ("a <!-- c --> b", "x < y", "<script>z</script>", "<a href=bare>q</a>"):
        assert parse._plain_markup_parts(other) is None


UNICODE_SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


@given(st.text(alphabet=st.sampled_from(UNICODE_SPACES + "ab\u0431<>/p&;\r\n\x07"), max_size=60))
def test_html_to_text_collapses_every_unicode_space(html: str) -> None:
    """Lines come out with single ASCII spaces between words, whichever of Unicode's
    whitespace characters (NBSP, thin space, ideographic space, ...) the feed used."""
    text = html_to_text(html)
    for line in text.split("\n") if text else ():
        assert line
        assert line == line.strip(" ")
        assert "  " not in line
        assert not any(ch.isspace() and ch != " " for ch in line)


# --- bundled demo feeds -------------------------------------------------------------------------

DEMO_COUNTS = {"demo-en-wire.xml": 12, "demo-uk.xml": 10, "demo-ru.xml": 10, "demo-atom.xml": 8}


def test_demo_feeds_parse_cleanly() -> None:
    assert sorted(path.name for path in DEMO.glob("*.xml")) == sorted(DEMO_COUNTS)
    for name, count in DEMO_COUNTS.items():
        content = (DEMO / name).read_bytes()
        assert len(content) < 30_000
        parsed = parse_feed(content, {}, url=f"http://127.0.0.1:8765/{name}", fetched_at=FETCHED_AT)
        assert parsed.bozo_reason is None, name
        assert len(parsed.articles) == count, name
        assert len({a.url for a in parsed.articles}) == count, name
        for article in parsed.articles:
            assert datetime(2023, 1, 1, tzinfo=UTC) <= article.published < FETCHED_AT, name
            assert article.title and article.summary, name


def test_demo_cyrillic_titles_decode() -> None:
    def titles(name: str) -> str:
        content = (DEMO / name).read_bytes()
        parsed = parse_feed(content, {}, url="http://127.0.0.1/", fetched_at=FETCHED_AT)
        return "\n".join(a.title + "\n" + a.summary for a in parsed.articles)

    assert (
        (DEMO / "demo-ru.xml")
        .read_bytes()
        .startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    )
    russian = titles("demo-ru.xml")
    for word in ("Артемовск", "Соледара", "ЧВК «Вагнер»", "заявляют"):
        assert word in russian
    ukrainian = titles("demo-uk.xml")
    for word in ("Бахмут", "Бахмута", "Бахмуті", "під Бахмутом", "Соледарі", "не підтверджено"):
        assert word in ukrainian
    english = titles("demo-en-wire.xml")
    for word in ("Wagner claims it has taken Soledar", "Artemivsk", "Bakhmut's", "Bakhmutovka"):
        assert word in english
