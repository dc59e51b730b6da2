"""The `vedette` command line, in process (click's runner) and as real subprocesses."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import click
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from daemon.cli import main
from support import Item, log_events, rss, start_daemon, wait_until, write_config

ITEMS = [
    Item("Wagner claims Soledar", "https://news.example/1", "Soledar salt mines", "1"),
    Item("Бої за Бахмут тривають", "https://news.example/2", "Оборона", "2"),
    Item("Kyiv opera season opens", "https://news.example/3", "Richard Wagner", "3"),
]


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_check_bundled_defaults_pass() -> None:
    result = CliRunner().invoke(main, ["--config", "config/vedette.yaml", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 7 feeds, 2 watchlists, console alerts")


def test_check_reports_broken_watchlist_with_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, watchlists={"bad": "title: x\nterms:\n  a: [x]\nmatch: a and b\n"}
    )
    code, output = invoke(config, "check")
    assert code == 1
    assert "bad.yaml:4: match:" in output and "FAILED" in output


def test_check_reports_config_error_and_env_config(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "defaults:\n  interval: soon\n")
    result = CliRunner().invoke(main, ["check"], env={"VEDETTE_CONFIG": str(config)})
    assert result.exit_code == 1
    assert 'vedette.yaml:6: defaults.interval: "soon" is not a duration' in result.output


def test_usage_error_exits_2() -> None:
    assert CliRunner().invoke(main, ["poll", "--nope"]).exit_code == 2
    assert CliRunner().invoke(main, ["no-such-command"]).exit_code == 2


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    commands = all_commands(main)
    assert len(commands) >= 16
    for args in commands:
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, args
        help_text = main.get_command(click.Context(main), args[0])
        assert help_text is not None and (help_text.help or "").strip(), args
        assert "vedette " + " ".join(args) in readme, args


def test_poll_search_feeds_alerts_backtest_explain(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss(ITEMS), content_type="application/rss+xml"
    )
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    code, output = invoke(config, "poll")
    assert code == 0 and "3 new articles, 0 updated, 2 alerts (2 sent" in output

    code, output = invoke(config, "feeds", "list", "--json")
    (row,) = [json.loads(line) for line in output.splitlines()]
    assert (row["name"], row["status"], row["article_count"]) == ("wire", "ok", 3)
    assert row["next_poll"] and row["last_error"] is None

    code, output = invoke(config, "search", "Soledar", "--json")
    assert [json.loads(line)["url"] for line in output.splitlines()] == ["https://news.example/1"]

    code, output = invoke(config, "alerts", "list", "--json")
    rows = [json.loads(line) for line in output.splitlines()]
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == 2
    assert {"id", "watchlist", "article_id", "status", "attempts", "last_error"} <= set(rows[0])

    code, output = invoke(config, "backtest", "--json")
    rows = [json.loads(line) for line in output.splitlines()]
    assert sorted(r["terms"][0] for r in rows) == ["Bakhmut", "Soledar"]
    assert {"watchlist", "article_id", "feed", "url", "title", "published", "terms", "hits"} <= set(
        rows[0]
    )

    code, output = invoke(config, "explain", "bakhmut", "--text", "Richard Wagner in Bakhmut")
    assert code == 0 and "NO MATCH" in output and "Richard Wagner" in output
    code, output = invoke(config, "explain", "bakhmut", "--url", "https://news.example/2")
    assert code == 0 and output.splitlines()[-1].startswith("MATCH")


def test_feeds_add_and_opml_round_trip(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, output = invoke(
        config, "feeds", "add", "https://a.example/rss", "--name", "a", "--tag", "x"
    )
    assert code == 0, output
    assert invoke(config, "feeds", "add", "https://a.example/rss", "--name", "a")[0] == 1
    assert invoke(config, "feeds", "add", "not-a-url")[0] == 2
    code, opml = invoke(config, "feeds", "export-opml")
    assert 'xmlUrl="https://a.example/rss"' in opml and 'category="x"' in opml
    (tmp_path / "other").mkdir()
    other = write_config(tmp_path / "other")
    (tmp_path / "feeds.opml").write_text(opml, encoding="utf-8")
    code, output = invoke(other, "feeds", "import-opml", str(tmp_path / "feeds.opml"))
    assert code == 0 and "imported 1 feeds" in output
    code, output = invoke(other, "feeds", "list", "--json")
    assert json.loads(output)["url"] == "https://a.example/rss"


def test_demo_runs_offline_and_prints_alerts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "🔔" in result.stdout and "Bakhmut" in result.stdout
    assert "answered 304 Not Modified" in result.stdout
    alerts = result.stdout.split("🔔")[1:]
    assert len(alerts) >= 5
    assert not any("opera" in alert.lower() for alert in alerts)  # the Richard Wagner decoys


def test_run_serves_health_alerts_and_stops_on_sigterm(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        rss(ITEMS), content_type="application/rss+xml"
    )
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    config.write_text(
        config.read_text().replace("http: null", "http: {listen: '127.0.0.1:0'}")
        + "defaults: {jitter: 0s}\n"
    )
    log = tmp_path / "daemon.log"
    with log.open("w") as sink, (tmp_path / "console.txt").open("w") as console:
        process = start_daemon(config, stdout=console, stderr=sink)
    try:
        logged = functools.partial(log_events, log)

        wait_until(lambda: logged("http_listening"), what="the HTTP server")
        port = logged("http_listening")[0]["address"].rsplit(":", 1)[1]
        wait_until(lambda: logged("alert_sent"), what="alerts", timeout_s=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b'vedette_polls_total{outcome="changed"} 1.0' in response.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert logged("daemon_stopped")
    finally:
        if process.poll() is None:
            process.kill()
