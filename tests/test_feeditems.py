"""Parsing only the items a feed gained: `feeditems.split_items` and `parse_feed(known_items=)`.

The shortcut must never change what is stored: for any feed and any set of items seen before,
the articles of an incremental parse are exactly the full parse's articles of the unseen items.
Whenever the split is unsure, the whole body is parsed (and the store deduplicates).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.feeditems import split_items
from daemon.parse import parse_feed
from support import Item, rss

NOW = datetime(2023, 1, 10, tzinfo=UTC)
HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


def items(count: int, *, start: int = 0) -> list[Item]:
    return [
        Item(f"Report {n} from Бахмут", f"https://news.example/{n}", f"<p>Body {n}</p>", None,
             NOW - timedelta(hours=n))
        for n in range(start, start + count)
    ]  # fmt: skip


def parse(body: bytes, known: frozenset[str] = frozenset(), headers: dict[str, str] = HEADERS):  # type: ignore[no-untyped-def]
    return parse_feed(body, headers, url="https://news.example/feed", fetched_at=NOW,
                      known_items=known)  # fmt: skip


def test_a_second_poll_parses_only_the_new_items() -> None:
    before = parse(rss(items(20)).encode())
    assert len(before.item_digests) == 20 and len(set(before.item_digests)) == 20
    after = parse(rss(items(3, start=20) + items(20)).encode(), frozenset(before.item_digests))
    assert [a.title for a in after.articles] == [f"Report {n} from Бахмут" for n in (20, 21, 22)]
    assert len(after.item_digests) == 23
    assert set(before.item_digests) < set(after.item_digests)


def test_an_edited_item_is_parsed_again() -> None:
    first = items(5)
    before = parse(rss(first).encode())
    first[2].title = "Report 2 from Бахмут (updated)"
    after = parse(rss(first).encode(), frozenset(before.item_digests))
    assert [a.title for a in after.articles] == ["Report 2 from Бахмут (updated)"]


def test_nothing_new_parses_no_item_but_keeps_the_title() -> None:
    body = rss(items(5), title="Kyiv wire").encode()
    before = parse(body)
    after = parse(body, frozenset(before.item_digests))
    assert after.articles == () and after.title == "Kyiv wire"
    assert after.item_digests == before.item_digests


def test_the_same_bytes_under_another_charset_are_not_the_same_item() -> None:
    body = rss(items(2)).encode()
    utf8 = parse(body)
    cp1251 = parse(body, frozenset(utf8.item_digests), {"content-type": "text/xml; charset=cp1251"})
    assert len(cp1251.articles) == 2 and not set(utf8.item_digests) & set(cp1251.item_digests)


def test_atom_entries_split_too() -> None:
    entry = ("<entry><id>urn:{n}</id><title>Soledar {n}</title><updated>2023-01-09T00:00:00Z"
             "</updated><link href='https://news.example/{n}'/></entry>")  # fmt: skip

    def atom(numbers: range) -> bytes:
        body = "".join(entry.format(n=n) for n in numbers)
        return (f"<feed xmlns='http://www.w3.org/2005/Atom'><title>A</title>{body}</feed>").encode()

    before = parse(atom(range(4)))
    after = parse(atom(range(6)), frozenset(before.item_digests))
    assert [a.title for a in after.articles] == ["Soledar 4", "Soledar 5"]


def test_tags_inside_cdata_and_comments_are_not_items() -> None:
    body = (
        b"<rss version='2.0'><channel><title>t</title><!-- <item> a comment </item> -->"
        b"<item><title>One</title><description><![CDATA[<p>an </item><item> in HTML</p>]]>"
        b"</description><guid>1</guid></item><item><title>Two</title><guid>2</guid></item>"
        b"</channel></rss>"
    )
    split = split_items(body)
    assert split is not None and len(split.spans) == 2
    before = parse(body)
    assert [a.title for a in before.articles] == ["One", "Two"]
    assert len(before.item_digests) == 2


def test_shapes_it_cannot_be_sure_of_are_parsed_whole() -> None:
    unsure = [
        b"<rss><channel><item><title>a</title><item>nested</item></item></channel></rss>",
        b"<rss><channel><item><title>unclosed</title></channel></rss>",
        b"<rss><channel><item/><item><title>b</title></item></channel></rss>",
        b"<feed><entry><title>a</title></entry><item><title>b</title></item></feed>",
        b'<!DOCTYPE rss [<!ENTITY w "Wagner">]><rss><channel><item>&w;</item></channel></rss>',
        b"<rss><channel><title>no items</title></channel></rss>",
        b"<rss><channel><item><![CDATA[ never closed </item></channel></rss>",
        rss(items(2)).encode("utf-16"),
    ]
    assert [split_items(body) for body in unsure] == [None] * len(unsure)


def test_a_hostile_body_is_scanned_in_linear_time() -> None:
    # An unclosed CDATA opener per 9 bytes: a lazy `<![CDATA[.*?]]>` would rescan to the end
    # for each of them (quadratic); this has to finish at once.
    assert split_items(b"<rss><item>" + b"<![CDATA[" * 300_000) is None
    assert split_items(b"<rss>" + b"<item></item>" * 100_000) is not None


@settings(max_examples=60, deadline=None)
@given(
    titles=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=12),
    seen=st.sets(st.integers(0, 11)),
)
def test_incremental_parse_equals_the_full_parse_of_unseen_items(
    titles: list[str], seen: set[int]
) -> None:
    feed_items = [
        Item(t, f"https://news.example/{n}", f"<b>{t}</b>", f"id-{n}", NOW)
        for n, t in enumerate(titles)
    ]
    body = rss(feed_items).encode()
    full = parse(body)
    known = frozenset(d for n, d in enumerate(full.item_digests) if n in seen)
    incremental = parse(body, known)
    if not full.item_digests:  # not split: nothing to compare
        assert incremental.articles == full.articles
        return
    unseen = [a for n, a in enumerate(full.articles) if full.item_digests[n] not in known]
    # Exactly the unseen items; or, when the cut body is not clean XML (a title of "\x1f"
    # makes feedparser complain), the whole feed again, which the store deduplicates.
    assert list(incremental.articles) in (unseen, list(full.articles))
    assert incremental.item_digests == full.item_digests
