"""One alert per story across feeds (issue #9): "also reported by", follow-ups at most once per
window, min_sources, the "unconfirmed" label lifted, and `vedette stories` / `backtest`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.cli import main
from daemon.config import load_settings
from daemon.service import Runtime, poll_once
from support import Item, Receiver, rss, webhook_receiver, write_config

NOW = datetime.now(UTC) - timedelta(minutes=30)
CLAIM = "Wagner claims capture of Soledar after weeks of fighting"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def serve(httpserver: HTTPServer, feeds: dict[str, list[Item]]) -> list[tuple[str, str]]:
    for name, items in feeds.items():

        def handler(request: Request, items: list[Item] = items) -> Response:
            return Response(rss(items), content_type="application/rss+xml")

        httpserver.expect_request(f"/{name}").respond_with_handler(handler)
    return [(name, httpserver.url_for(f"/{name}")) for name in feeds]


def runtime_for(
    tmp_path: Path, feeds: list[tuple[str, str]], receiver: Receiver, extra: str = ""
) -> Runtime:
    watchlist = "terms:\n  places: [Soledar]\n" + extra
    config = write_config(
        tmp_path,
        feeds=feeds,
        watchlists={"soledar": watchlist},
        extra=f"apprise_urls: ['json://{receiver.url}/hook']\n",
    )
    return Runtime.open(load_settings(config, environ={}))


async def test_same_story_from_three_feeds_alerts_once_then_one_follow_up(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    feeds: dict[str, list[Item]] = {"wire": [], "paper": [], "radio": [], "tv": []}
    runtime = runtime_for(tmp_path, serve(httpserver, feeds), receiver)
    feeds["wire"].append(Item(CLAIM, "https://wire.example/1", "", "w1", NOW))
    feeds["paper"].append(Item(CLAIM + " - Paper", "https://paper.example/9", "", "p1", NOW))
    _, drained = await poll_once(runtime)
    assert drained.sent == 1  # two feeds, one story, one alert
    (first,) = receiver.received()
    assert "also reported by" in first["message"]

    feeds["radio"].append(Item(CLAIM, "https://radio.example/3", "", "r1", NOW))
    feeds["tv"].append(Item(CLAIM, "https://tv.example/4", "", "t1", NOW))
    _, drained = await poll_once(runtime)
    messages = receiver.received()
    assert len(messages) == 2, [m["title"] for m in messages]  # one follow-up, not two alerts
    follow_up = messages[1]
    assert follow_up["title"].startswith("FOLLOW-UP")
    assert "radio" in follow_up["message"] and "tv" in follow_up["message"]
    runtime.close()


async def test_min_sources_holds_until_enough_feeds_carry_it(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    feeds: dict[str, list[Item]] = {"wire": [], "paper": []}
    runtime = runtime_for(tmp_path, serve(httpserver, feeds), receiver, "min_sources: 2\n")
    feeds["wire"].append(Item(CLAIM, "https://wire.example/1", "", "w1", NOW))
    _, drained = await poll_once(runtime)
    assert drained.sent == 0 and receiver.received() == []
    feeds["paper"].append(Item(CLAIM, "https://paper.example/1", "", "p1", NOW))
    _, drained = await poll_once(runtime)
    (alert,) = receiver.received()
    assert (
        "also reported by wire" in alert["message"] or "also reported by paper" in alert["message"]
    )
    runtime.close()


async def test_unhedged_source_lifts_the_unconfirmed_label(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    feeds: dict[str, list[Item]] = {"wire": [], "paper": []}
    runtime = runtime_for(tmp_path, serve(httpserver, feeds), receiver)
    feeds["wire"].append(Item(CLAIM, "https://news.example/soledar", "", "w1", NOW))
    await poll_once(runtime)
    (first,) = receiver.received()
    assert first["title"].startswith("UNCONFIRMED")
    # A syndicated copy of the same report (same link) that states it without a hedge.
    feeds["paper"].append(
        Item(
            "Soledar falls to Wagner, Ukraine confirms",
            "https://news.example/soledar",
            "",
            "p1",
            NOW,
        )
    )
    await poll_once(runtime)
    second = receiver.received()[1]
    assert "NO LONGER UNCONFIRMED (reported without hedge by paper)" in second["title"]

    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "vedette.yaml"), "stories", "--json"]
    )
    (story,) = [json.loads(line) for line in result.output.splitlines()]
    assert story["status"] == "confirmed" and story["sources"] == ["wire", "paper"]
    assert [a["hedged"] for a in story["articles"]] == [True, False]

    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "vedette.yaml"), "backtest", "--json"]
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["story"] for r in rows} == {1} and [r["first_of_story"] for r in rows] == [
        True,
        False,
    ]
    runtime.close()


async def test_different_stories_with_similar_titles_alert_separately(
    httpserver: HTTPServer, tmp_path: Path, receiver: Receiver
) -> None:
    feeds = {
        "wire": [
            Item("Russian missile strike on Soledar kills 3", "https://a.example/1", "", "1", NOW)
        ],
        "paper": [
            Item("Russian missile strike on Soledar kills 11", "https://b.example/2", "", "2", NOW)
        ],
    }
    runtime = runtime_for(tmp_path, serve(httpserver, feeds), receiver)
    _, drained = await poll_once(runtime)
    assert drained.sent == 2
    runtime.close()


def test_hedges_are_data_users_can_extend(tmp_path: Path) -> None:
    from daemon.alert import hedge_pattern, is_unconfirmed

    title = {"title": "Soledar taken, Moscow-installed officials say"}
    assert not is_unconfirmed(title)
    assert is_unconfirmed(title, hedge_pattern(["Moscow-installed officials say"]))
    assert is_unconfirmed({"title": "Бахмут оточено, не підтверджено"})
    assert is_unconfirmed({"title": "В Артемовске, по данным источника, идут бои"})
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "hedges: [sources say, за словами джерел]\n")
    assert load_settings(config, environ={}).hedges == ("sources say", "за словами джерел")
