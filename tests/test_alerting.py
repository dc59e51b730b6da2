"""Alerts end to end through the real stages (loopback feed server → SQLite → Apprise) to real
loopback receivers: an SMTP server, a json:// webhook, and Discord- and Slack-shaped webhooks
(Apprise's json:// with its `:key=` remapping posts exactly their bodies to 127.0.0.1)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from receivers import (
    Clock,
    Hook,
    Inbox,
    discord_shaped,
    free_port,
    mail_parts,
    mailto,
    slack_shaped,
)
from werkzeug import Request, Response

from daemon.cli import main
from daemon.config import load_settings
from daemon.outbox import Outbox
from daemon.pipeline import Pipeline
from daemon.service import Runtime, poll_once
from support import Item, rss, wait_until, write_config

RECENT = datetime.now(UTC) - timedelta(hours=1)
HOSTILE = (
    "@everyone <img src=x onerror=alert(1)> **Bakhmut** [click](http://evil.example)"
    " <!channel> <@&123> @here # heading `code`"
)
MENTIONS = ("@everyone", "@here", "<!channel>", "<@&123>")


@pytest.fixture
def hook() -> Iterator[Hook]:
    running = Hook().start()
    yield running
    running.stop()


def apprise_file(folder: Path, entries: list[tuple[str, str | None]]) -> str:
    lines = ["urls:"]
    for url, tag in entries:
        lines.append(f'  - "{url}"' + (f":\n      - tag: {tag}" if tag else ""))
    (folder / "apprise.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "apprise: apprise.yaml\n"


async def test_hostile_feed_text_reaches_every_receiver_defused(
    httpserver: HTTPServer, tmp_path: Path, smtp: tuple[Inbox, int], hook: Hook
) -> None:
    inbox, port = smtp
    # One story, so one e-mail: Apprise waits 5.5 s between two e-mails to the same server.
    title = HOSTILE + " " + "A" * 100_000
    items = [Item(title, "https://news.example/1", "Bakhmut <b>@everyone</b> <!here>", "1", RECENT)]
    httpserver.expect_request("/feed").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    targets = [(f"json://{hook.address}/plain", None), (mailto(port), None)]
    targets += [(discord_shaped(hook), None), (slack_shaped(hook), None)]
    config = write_config(
        tmp_path,
        feeds=[("wire", httpserver.url_for("/feed"))],
        extra=apprise_file(tmp_path, targets),
    )
    runtime = Runtime.open(load_settings(config, environ={}))
    (outcome,), drained = await poll_once(runtime)
    runtime.close()
    assert (outcome.alerts, drained.sent, drained.failed) == (1, 1, 0)
    wait_until(lambda: inbox.messages, what="the e-mail")
    assert hook.rejected == []
    by_path: dict[str, list[str]] = {}
    for item in hook.messages():
        by_path.setdefault(item.path.split("/")[1], []).append(item.text)
    assert {path: len(texts) for path, texts in by_path.items()} == {
        "plain": 1,
        "api": 1,
        "services": 1,
    }
    html_parts, text_parts = zip(*(mail_parts(m) for m in inbox.messages), strict=True)
    bodies = [*by_path["plain"], *by_path["api"], *by_path["services"], *html_parts, *text_parts]
    for body in bodies:
        assert not any(mention in body for mention in MENTIONS), body
        assert "@\u200beveryone" in body and "AAAA…" in body  # the 100 KB title, cut short
        assert len(body) < 2000 and "ID: vedette-alert-1" in body.rstrip().splitlines()[-1]
    for markdown in by_path["api"] + by_path["services"]:
        assert "\\[click\\]\\(http://evil.example\\)" in markdown
        assert "\\*\\*Bakhmut\\*\\*" in markdown and "\\`code\\`" in markdown
        assert "\\# heading" in markdown and "\\<img" in markdown
    (html,) = html_parts
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" in text_parts[0]  # plain text needs no escaping, only defused mentions


async def test_email_alert_is_html_with_a_plain_text_part(
    httpserver: HTTPServer, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    item = Item("Wagner claims Soledar", "https://news.example/s", "Soledar salt mine", "s", RECENT)
    httpserver.expect_request("/feed").respond_with_data(
        rss([item]), content_type="application/rss+xml"
    )
    config = write_config(
        tmp_path,
        feeds=[("wire-en", httpserver.url_for("/feed"))],
        extra=f"apprise_urls: ['{mailto(port)}']\n",
    )
    runtime = Runtime.open(load_settings(config, environ={}))
    await poll_once(runtime)
    runtime.close()
    wait_until(lambda: inbox.messages, what="the e-mail")
    (message,) = inbox.messages
    assert message["Subject"] == "UNCONFIRMED · Bakhmut: Soledar, Wagner Group"
    html, text = mail_parts(message)
    assert "<b>Wagner claims Soledar</b>" in html and "<b>Soledar</b> salt mine" in html
    assert '<a href="https://news.example/s">' in html and "first seen" in html
    assert "wire-en · published" in text and "https://news.example/s" in text
    assert "<b>" not in text and text.rstrip().endswith("ID: vedette-alert-1")


async def test_watchlist_template_and_notify_tags_route_end_to_end(
    httpserver: HTTPServer, tmp_path: Path, hook: Hook
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss([Item("Бої за Бахмут", "https://news.example/b", "Оборона", "b", RECENT)]),
        content_type="application/rss+xml",
    )
    watchlist = (
        "title: Bakhmut\nnotify: [analysts]\nterms:\n  places:\n    Bakhmut: [Бахмут]\n"
        "template:\n  text: '$terms: $title | $feed | $link'\n"
    )
    targets = [
        (f"json://{hook.address}/analysts", "analysts"),
        (f"json://{hook.address}/ops", "ops"),
    ]
    config = write_config(
        tmp_path,
        feeds=[("novyny", httpserver.url_for("/feed"))],
        watchlists={"bakhmut": watchlist},
        extra=apprise_file(tmp_path, targets),
    )
    runtime = Runtime.open(load_settings(config, environ={}))
    await poll_once(runtime)
    runtime.close()
    (item,) = hook.messages()
    assert item.path == "/analysts"
    assert item.text == (
        "Bakhmut: Бої за Бахмут | novyny | https://news.example/b\nID: vedette-alert-1"
    )


async def test_feed_failing_and_recovered_send_one_ops_notice_each(
    httpserver: HTTPServer, tmp_path: Path, hook: Hook
) -> None:
    state = {"up": False}

    def feed(request: Request) -> Response:
        if not state["up"]:
            return Response("down for maintenance", status=503)
        return Response(rss([]), content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(feed)
    targets = [(f"json://{hook.address}/ops", "ops"), (f"json://{hook.address}/desk", "analysts")]
    config = write_config(tmp_path, extra=apprise_file(tmp_path, targets))
    config.write_text(
        config.read_text()
        + f"feeds:\n  - {{name: wire, url: '{httpserver.url_for('/feed')}', interval: 4h}}\n"
    )
    clock = Clock(datetime(2024, 1, 15, 0, 0, tzinfo=UTC))
    runtime = Runtime.open(load_settings(config, environ={}))
    runtime.store.clock = clock
    outbox = Outbox(runtime.store, runtime.notifier)

    async def poll_at(hours: float) -> list[str]:
        clock.now = datetime(2024, 1, 15, 0, 0, tzinfo=UTC) + timedelta(hours=hours)
        async with runtime.fetcher() as fetcher:
            pipeline = Pipeline(
                settings=runtime.settings,
                store=runtime.store,
                fetcher=fetcher,
                watchlists=runtime.watchlists,
                clock=clock,
                rng=random.Random(5),
            )
            (wire,) = runtime.store.active_feeds()
            await pipeline.poll_feed(wire, force=True)
        await outbox.drain()
        return [item.text.splitlines()[0] for item in hook.messages()]

    assert await poll_at(0) == []
    assert await poll_at(4) == []  # backoff would wait 8 h; it is cut to the 6 h mark
    assert runtime.store.feed_state("wire").next_poll == clock.now + timedelta(hours=2)
    notices = await poll_at(6)
    assert len(notices) == 1 and notices[0].startswith("wire (http://") and "6.0 h" in notices[0]
    assert "503" in notices[0] and [m.path for m in hook.messages()] == ["/ops"]
    assert await poll_at(7) == notices  # one per outage
    state["up"] = True
    recovered = await poll_at(8)
    assert len(recovered) == 2 and "works again after 8.0 h" in recovered[1]
    assert await poll_at(9) == recovered
    assert [m.body["title"] for m in hook.messages()] == [
        "Feed failing: wire",
        "Feed recovered: wire",
    ]
    runtime.close()


async def test_without_an_ops_target_a_failing_feed_is_only_logged(
    httpserver: HTTPServer, tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/feed").respond_with_data("gone", status=410)
    config = write_config(
        tmp_path,
        feeds=[("wire", httpserver.url_for("/feed"))],
        extra=f"feed_failing_after: 0s\napprise_urls: ['json://{hook.address}/all']\n",
    )
    runtime = Runtime.open(load_settings(config, environ={}))
    _, drained = await poll_once(runtime)
    runtime.close()
    assert drained.sent == 1 and hook.messages() == []  # untagged targets are not ops targets
    assert "feed_failing feed=wire" in caplog.text and "ops_notice" in caplog.text


def test_notify_test_reports_each_target(tmp_path: Path, hook: Hook) -> None:
    dead_port = free_port()
    targets = [
        (f"json://{hook.address}/ops", "ops"),
        (f"json://user:pa55-s3cret@127.0.0.1:{dead_port}/analysts", "analysts"),
    ]
    config = write_config(tmp_path, extra=apprise_file(tmp_path, targets))
    result = CliRunner().invoke(main, ["--config", str(config), "notify-test"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("ok", "FAILED"))]
    assert len(lines) == 2 and lines[0].startswith("ok     json://127.0.0.1:")
    assert lines[1].startswith("FAILED json://user:***@127.0.0.1:")
    assert "pa55-s3cret" not in result.output
    result = CliRunner().invoke(main, ["--config", str(config), "notify-test", "--tag", "ops"])
    assert result.exit_code == 0 and len(result.output.splitlines()) == 1
    assert [m.body["title"] for m in hook.messages()] == ["Vedette test message"] * 2
    result = CliRunner().invoke(main, ["--config", str(config), "notify-test", "--tag", "nobody"])
    assert result.exit_code == 1 and "no notification target with tag nobody" in result.output


def test_alerts_list_shows_held_alerts_and_check_validates_volume_keys(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss([Item("Bakhmut at night", "https://news.example/n", "", "n", RECENT)]),
        content_type="application/rss+xml",
    )
    watchlist = "terms:\n  places: [Bakhmut]\ndigest: 1h\nrate_limit: 10/h\n"
    config = write_config(
        tmp_path, feeds=[("wire", httpserver.url_for("/feed"))], watchlists={"night": watchlist}
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "poll"]).exit_code == 0
    listed = runner.invoke(main, ["--config", str(config), "alerts", "list", "--json"])
    assert '"hold": "digest"' in listed.output and '"status": "queued"' in listed.output
    text = runner.invoke(main, ["--config", str(config), "alerts", "list"]).output
    assert "held (digest) until" in text
    bad = {
        "a": "terms:\n  x: [y]\nquiet_hours: 22-07\n",
        "b": "terms:\n  x: [y]\n\nrate_limit: ten per hour\n",
        "c": "terms:\n  x: [y]\ntemplate:\n  text: $title $body\n",
        "d": "terms:\n  x: [y]\ntemplate:\n  sms: $title\n",
    }
    (tmp_path / "bad").mkdir()
    config = write_config(tmp_path / "bad", watchlists=bad)
    output = runner.invoke(main, ["--config", str(config), "check"]).output
    assert 'a.yaml:3: quiet_hours: "22-07" is not a time span' in output
    assert 'b.yaml:4: rate_limit: "ten per hour" is not a rate' in output
    assert "c.yaml:4: template.text: unknown field $body" in output
    assert "d.yaml:4: template.sms: unknown format 'sms'" in output
