"""Secrets planted in the config (an Apprise URL with a password and tokens from `${ENV}`, feed
URLs with basic-auth credentials, literal and from `${ENV}`) must not appear in logs (ours as
recorded, and the daemon's stderr even at -vv), `vedette check`, error messages, /metrics,
`feeds list`, `alerts list`, search results, alert messages or the database.

The one exception is by necessity: `feeds.url` and `feeds.config_url` hold the URL Vedette
polls, credentials included (keep the database file private).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon import logs
from daemon.cli import main
from daemon.config import load_settings
from daemon.service import Runtime, poll_once
from support import Receiver, log_events, start_daemon, wait_until, webhook_receiver

ENV = {
    "HOOK_PASSWORD": "hook-pw-5f4dcc3b5aa7",
    "HOOK_TOKEN": "hooktoken-a1b2c3d4e5f6",
    "HOOK_PATH_TOKEN": "PathToken0123456789abcdefXYZ",
    "FEED_PASSWORD": "feed-pw-9e107d9d372bb6",
}
LITERAL_PASSWORD = "literal-feed-pw-0cc175b9"
FEED_TOKEN = "feed-query-token-77aa"  # a private feed's ?token=
SECRETS = [*ENV.values(), LITERAL_PASSWORD, FEED_TOKEN]
FEED = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Private</title>'
    "<item><title>Бахмут: relative link</title><link>/news/1</link><guid>1</guid></item>"
    "<item><title>Bakhmut: absolute link</title><link>https://news.example/2</link>"
    "<guid>2</guid></item></channel></rss>"
)


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def planted(httpserver: HTTPServer, receiver: Receiver, tmp_path: Path) -> Path:
    """A config full of secrets, and feeds that fail in every way that quotes a URL."""
    allowed = {f"reader:{ENV['FEED_PASSWORD']}", f"reader:{LITERAL_PASSWORD}"}

    def private(request: Request) -> Response:
        auth = request.authorization
        if auth is None or f"{auth.username}:{auth.password}" not in allowed:
            return Response("who are you?", status=401)
        return Response(FEED, content_type="application/rss+xml")

    httpserver.expect_request("/private").respond_with_handler(private)
    for path, status, to in (
        ("/moved", 301, "/gone"),
        ("/loop-a", 302, "/loop-b"),
        ("/loop-b", 302, "/loop-a"),
    ):
        httpserver.expect_request(path).respond_with_data(
            "", status=status, headers={"Location": to}
        )
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    base = httpserver.url_for("/").rstrip("/").replace("://", "://reader:{pw}@")
    env_pw, literal = "${FEED_PASSWORD}", LITERAL_PASSWORD
    feeds = {
        "private": base.format(pw=env_pw) + "/private",
        "literal": base.format(pw=literal) + f"/private?token={FEED_TOKEN}",
        "moved": base.format(pw=env_pw) + "/moved",
        "looping": base.format(pw=env_pw) + "/loop-a",
        "refused": f"http://reader:{env_pw}@127.0.0.1:{closed}/feed",
    }
    hook = (
        f"json://alerts:${{HOOK_PASSWORD}}@{receiver.url}/hook/${{HOOK_PATH_TOKEN}}"
        "?token=${HOOK_TOKEN}"
    )
    lists = tmp_path / "watchlists"
    lists.mkdir()
    (lists / "bakhmut.yaml").write_text(
        "terms:\n  places:\n    Bakhmut: [Бахмут]\n", encoding="utf-8"
    )
    config = tmp_path / "vedette.yaml"
    config.write_text(
        "database: data/vedette.db\nwatchlists: watchlists\nalert_backlog: all\n"
        "http: {listen: '127.0.0.1:0'}\ndefaults: {interval: 1s, jitter: 0s}\n"
        f"apprise_urls: ['{hook}']\nfeeds:\n"
        + "".join(f"  - {{name: {name}, url: '{url}'}}\n" for name, url in feeds.items()),
        encoding="utf-8",
    )
    return config


# Alert delivery (another engineer's area, issue #8 part B) names targets by Apprise's privacy
# URL, which keeps json:// paths: see test_delivery_side_hides_webhook_path_tokens.
DELIVERY_LOGGERS = ("daemon.outbox", "daemon.notify", "daemon.alert", "daemon.render")
DELIVERY_COLUMNS = {("deliveries", "channel")}


def database_text(runtime: Runtime, *, skip: set[tuple[str, str]] = DELIVERY_COLUMNS) -> str:
    """Every value in the database, except the URLs Vedette must keep to poll (and `skip`)."""
    db = runtime.store.db
    skip = skip | {("feeds", "url"), ("feeds", "config_url")}
    parts = []
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns = [c[1] for c in db.execute(f"PRAGMA table_info([{table}])")]
        keep = [c for c in columns if (table, c) not in skip]
        if keep:
            select = ", ".join(f"[{c}]" for c in keep)
            parts += [repr(row) for row in db.execute(f"SELECT {select} FROM [{table}]")]
    return "\n".join(parts)


async def test_no_secret_in_logs_errors_outputs_or_the_database(
    planted: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runtime = Runtime.open(load_settings(planted, environ=ENV), environ=ENV, console=io.StringIO())
    try:
        receiver.status = 500  # failed deliveries are logged, with their errors
        outcomes, _ = await poll_once(runtime)
        receiver.status = 200
        runtime.store.retry_alerts()
        await runtime.outbox().drain()
        errors = {o.feed: o.error for o in outcomes}
        stored = database_text(runtime)
    finally:
        runtime.close()
    assert errors["private"] is None and errors["literal"] is None  # credentials were sent
    assert "HTTP 410 Gone from http://reader:***@" in (errors["moved"] or "")
    assert "redirect loop: http://reader:***@" in (errors["looping"] or "")
    # What operators see: every record (ours and the libraries') through the daemon's formatter.
    formatter = logs._RedactingFormatter(as_json=False)
    assert leaks("\n".join(formatter.format(record) for record in caplog.records)) == []
    # What the pipeline logs is clean even before formatting (STYLE: never log raw URLs).
    ours = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("daemon") and record.name not in DELIVERY_LOGGERS
    )
    assert "poll_failed feed=moved" in ours
    assert leaks(ours) == []
    assert leaks(json.dumps(errors)) == []
    assert leaks(stored) == []
    assert "https://news.example/2" in stored and "/news/1" in stored
    messages = json.dumps(receiver.received(), ensure_ascii=False)
    assert "/news/1" in messages and leaks(messages) == []

    runner = CliRunner()
    outputs = {}
    for args in (
        ["feeds", "list", "--json"],
        ["feeds", "list"],
        ["alerts", "list", "--json"],
        ["search", "Bakhmut", "--json"],
        ["check"],
    ):
        result = runner.invoke(main, ["--config", str(planted), *args], env=ENV)
        outputs[" ".join(args)] = result.output
    added = runner.invoke(
        main,
        ["--config", str(planted), "feeds", "add", f"https://u:{LITERAL_PASSWORD}@x.example/rss"],
        env=ENV,
    )
    assert added.exit_code == 0, added.output
    outputs["feeds add"] = added.output
    assert {name: leaks(text) for name, text in outputs.items()} == {key: [] for key in outputs}
    rows = [json.loads(line) for line in outputs["feeds list --json"].splitlines()]
    assert {r["name"]: r["url"].split("@")[0] for r in rows}["private"] == "http://reader:***"


@pytest.mark.parametrize(
    ("feed_url", "apprise_url"),
    [
        ("ftp://reader:${FEED_PASSWORD}@news.example/rss", "json://127.0.0.1:9/x"),
        ("http://reader:${FEED_PASSWORD}@news.example/rss with space", "json://127.0.0.1:9/x"),
        ("https://news.example/rss", "nosuchservice://alerts:${HOOK_PASSWORD}@host/${HOOK_TOKEN}"),
    ],
)
def test_check_reports_bad_urls_without_their_secrets(
    tmp_path: Path, feed_url: str, apprise_url: str
) -> None:
    config = tmp_path / "vedette.yaml"
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "a.yaml").write_text("terms:\n  a: [x]\n", encoding="utf-8")
    config.write_text(
        f"watchlists: watchlists\napprise_urls: ['{apprise_url}']\n"
        f"feeds:\n  - {{name: a, url: '{feed_url}'}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(config), "check"], env=ENV)
    assert result.exit_code == 1
    assert "vedette.yaml:" in result.output
    assert leaks(result.output) == []


def test_daemon_stderr_metrics_and_health_carry_no_secret(
    planted: Path, receiver: Receiver, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    with log.open("w") as sink, (tmp_path / "console.txt").open("w") as console:
        daemon = start_daemon(planted, stdout=console, stderr=sink, options=["-vv"], env=ENV)
    try:
        events = functools.partial(log_events, log)

        wait_until(lambda: events("http_listening"), what="the HTTP server", timeout_s=20)
        wait_until(lambda: len(receiver.received()) >= 2, what="alerts", timeout_s=30)
        wait_until(lambda: events("poll_failed"), what="failed polls", timeout_s=20)
        port = events("http_listening")[0]["address"].rsplit(":", 1)[1]
        pages = []
        for path in ("/metrics", "/healthz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                pages.append(response.read().decode())
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    stderr = log.read_text(encoding="utf-8")
    assert "HTTP Request: GET http://" in stderr  # -vv really logs the requests
    assert leaks(stderr) == []
    assert leaks("\n".join(pages)) == []
    assert leaks((tmp_path / "console.txt").read_text(encoding="utf-8")) == []
    assert leaks(json.dumps(receiver.received(), ensure_ascii=False)) == []


async def test_delivery_side_hides_webhook_path_tokens(
    planted: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runtime = Runtime.open(load_settings(planted, environ=ENV), environ=ENV, console=io.StringIO())
    try:
        receiver.status = 500
        await poll_once(runtime, ["private"])
        stored = database_text(runtime, skip=set())
    finally:
        runtime.close()
    raw = "\n".join(r.getMessage() for r in caplog.records if r.name in DELIVERY_LOGGERS)
    assert leaks(stored) == [] and leaks(raw) == []
