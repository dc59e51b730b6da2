from __future__ import annotations

import pytest

from daemon.alert import make_snippet
from daemon.models import Hit
from daemon.render import neutralise_mentions, render_alert, render_digest, render_notice
from daemon.templates import check_template

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


def test_every_format_carries_both_times_the_watchlist_and_the_stable_id() -> None:
    message = render_alert(
        PAYLOAD | {"first_seen": "2023-01-10T12:07+00:00"}, message_id="vedette-alert-7"
    )
    for body in (message.text, message.markdown, message.html):
        assert "published 2023-01-10 12:00 UTC" in body
        assert "first seen 2023-01-10 12:07 UTC" in body
        assert "Bakhmut axis" in body
        assert body.rstrip().endswith(("ID: vedette-alert-7", "ID: vedette-alert-7</small></p>"))
    assert render_alert(PAYLOAD, message_id="vedette-alert-7") == render_alert(
        PAYLOAD, message_id="vedette-alert-7"
    )  # the same bytes on every retry


def test_watchlist_template_override_gets_escaped_values() -> None:
    template = {
        "title": "[$watchlist] $terms",
        "text": "$label$title ($feed)\n$link",
        "markdown": "### $title\n> $snippet",
        "html": "<h3>$title</h3><p>$snippet</p>",
    }
    hostile = PAYLOAD | {"template": template, "title": "<b>@everyone</b> *Soledar*"}
    message = render_alert(hostile, message_id="vedette-alert-1")
    assert message.title == "[Bakhmut axis] Soledar, Wagner Group"
    assert message.text.splitlines() == [
        "UNCONFIRMED · <b>@\u200beveryone</b> *Soledar* (wire-en)",
        "https://news.example/a?id=1",
        "ID: vedette-alert-1",
    ]
    assert message.markdown.startswith("### \\<b\\>@\u200beveryone\\</b\\> \\*Soledar\\*\n> ")
    assert "**Wagner**" in message.markdown
    assert message.html.startswith("<h3>&lt;b&gt;@\u200beveryone&lt;/b&gt; *Soledar*</h3>")
    partial = render_alert(PAYLOAD | {"template": {"text": "only $title"}})
    assert partial.text == "only Wagner claims Soledar" and "<p>" in partial.html


def test_template_check_names_the_problem() -> None:
    check_template("$title — ${feed} costs $$5")
    with pytest.raises(ValueError, match=r"unknown field \$body"):
        check_template("$title $body")
    with pytest.raises(ValueError, match=r"write \$\$ for \$"):
        check_template("costs $5")


def test_mention_split_by_a_highlight_is_still_defused() -> None:
    snippet = "ping @everyone now"
    start = snippet.index("everyone")
    message = render_alert(PAYLOAD | {"snippet": snippet, "highlights": [[start, start + 8]]})
    assert "@\u200b**everyone**" in message.markdown
    assert "@\u200b<b>everyone</b>" in message.html


def test_digest_lists_each_story_escaped_with_its_own_id() -> None:
    stories = [
        ("vedette-alert-3", PAYLOAD | {"title": "<script>x</script> @here [a](b)"}),
        ("vedette-alert-4", PAYLOAD | {"title": "Second", "unconfirmed": False, "url": ""}),
    ]
    message = render_digest(stories, message_id="vedette-digest-3", note="digest every 1h")
    assert message.title == "Digest · Bakhmut axis: 2 stories"
    assert message.text.startswith("2 stories for Bakhmut axis, digest every 1h\n")
    assert "&lt;script&gt;" in message.html and "<script>" not in message.html
    assert "\\[a\\]\\(b\\)" in message.markdown
    for body in (message.text, message.markdown, message.html):
        assert "@here" not in body and body.count("vedette-alert-") == 2
        assert "ID: vedette-digest-3" in body
    assert "<ol>" in message.html and message.html.count("<li>") == 2
