from __future__ import annotations

from daemon.alert import make_snippet
from daemon.models import Hit
from daemon.render import neutralise_mentions, render_alert, render_notice

PAYLOAD = {
    "watchlist": "bakhmut",
    "watchlist_title": "Bakhmut axis",
    "title": "Wagner claims Soledar",
    "feed": "wire-en",
    "url": "https://news.example/a?id=1",
    "published": "2023-01-10T12:00+00:00",
    "terms": ["Soledar", "Wagner Group"],
    "snippet": "Fighters of Wagner say they took Soledar",
    "highlights": [[12, 18], [33, 40]],
    "unconfirmed": True,
}


def test_alert_in_three_formats_with_highlights() -> None:
    message = render_alert(PAYLOAD)
    assert message.title == "UNCONFIRMED · Bakhmut axis: Soledar, Wagner Group"
    assert "**Wagner**" in message.markdown and "**Soledar**" in message.markdown
    assert (
        "<b>Wagner</b>" in message.html and '<a href="https://news.example/a?id=1">' in message.html
    )
    assert "Fighters of Wagner say they took Soledar" in message.text
    assert "https://news.example/a?id=1" in message.text


def test_hostile_feed_text_is_escaped_and_mentions_neutralised() -> None:
    hostile = PAYLOAD | {
        "title": "@everyone <script>alert(1)</script> [click](http://evil) <!channel> <@123>",
        "snippet": "**bold** <b>x</b> @here",
        "highlights": [],
        "url": "javascript:alert(1)",
    }
    message = render_alert(hostile)
    for body in (message.markdown, message.html, message.text, message.title):
        assert "@everyone" not in body and "@here" not in body
        assert "<!channel>" not in body and "<@123>" not in body
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "\\[click\\]\\(http://evil\\)" in message.markdown
    assert "\\*\\*bold\\*\\*" in message.markdown
    assert "javascript:" not in message.html + message.markdown + message.text


def test_huge_title_is_bounded() -> None:
    message = render_alert(PAYLOAD | {"title": "Bakhmut " * 20_000})
    assert len(message.text) < 2_000 and message.text.splitlines()[0].endswith("…")


def test_notice_and_mentions() -> None:
    assert neutralise_mentions("hi @everyone") == "hi @\u200beveryone"
    notice = render_notice("Feed failing", "wire: HTTP 503 <b>")
    assert notice.html == "<p>wire: HTTP 503 &lt;b&gt;</p>"


def test_snippet_keeps_highlights_on_words_after_whitespace_collapse() -> None:
    text = "Intro.\n\n   Heavy   fighting continues near Bakhmut  today."
    start = text.index("Bakhmut")
    hits = [Hit("summary", start, start + 7, "Bakhmut", "Bakhmut", "places")]
    snippet, spans = make_snippet({"title": "", "summary": text, "content": ""}, hits)
    assert snippet == "Intro. Heavy fighting continues near Bakhmut today."
    ((a, b),) = spans
    assert snippet[a:b] == "Bakhmut"
