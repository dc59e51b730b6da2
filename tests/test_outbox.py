"""The outbox against real loopback webhooks, with an injected clock: retries and backoff (also
across a restart), expiry, per-target bookkeeping, digests, quiet hours and the rate cap."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receivers import Clock, Hook, story

from daemon.alert import OPS_WATCHLIST, feed_notice
from daemon.models import Feed, FeedState
from daemon.notify import AppriseNotifier
from daemon.outbox import Outbox
from daemon.store import Store

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
SECRET = "s3cret-hook-password"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def hooks() -> Iterator[tuple[Hook, Hook]]:
    first, second = Hook().start(), Hook().start()
    yield first, second
    first.stop()
    second.stop()


def open_store(tmp_path: Path, clock: Clock) -> Store:
    return Store.open(tmp_path / "vedette.db", clock=clock)


def json_url(hook: Hook, path: str = "hook") -> str:
    return f"json://vedette:{SECRET}@{hook.address}/{path}"


def enqueue(
    store: Store,
    n: int,
    *,
    watchlist: str = "bakhmut",
    delivery: Mapping[str, Any] | None = None,
    **extra: Any,
) -> int:
    payload = story(n, watchlist, **extra) | ({"delivery": dict(delivery)} if delivery else {})
    alert_id = store.enqueue_alert(
        watchlist=watchlist,
        article_id=n,
        story_key=f"url:{n}",
        tags=(),
        payload=payload,
        expires=store.clock() + timedelta(hours=24),
    )
    assert alert_id is not None
    return alert_id


async def test_receiver_down_for_a_while_then_everything_arrives_once(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    up, down = hooks
    down.stop()
    notifier = AppriseNotifier(urls=[json_url(up), json_url(down)])
    store = open_store(tmp_path, clock)
    ids = [enqueue(store, n) for n in (1, 2, 3)]
    first = await Outbox(store, notifier).drain()
    assert (first.sent, first.failed) == (0, 3)
    assert sorted(up.ids()) == [f"vedette-alert-{i}" for i in ids]
    (failure,) = [d for d in store.deliveries(ids[0]) if d["status"] == "failed"]
    assert failure["error"] and failure["channel"].startswith("json://")
    clock.advance(seconds=29)
    assert (await Outbox(store, notifier).drain()).failed == 0  # backing off: nothing due
    clock.advance(seconds=1)
    assert (await Outbox(store, notifier).drain()).failed == 3  # still down; 60 s next
    store.close()

    # A restart keeps the backoff: nothing is due until the stored retry time.
    store = open_store(tmp_path, clock)
    clock.advance(seconds=59)
    assert (await Outbox(store, notifier).drain()).sent == 0
    down.start()
    clock.advance(seconds=1)
    back = await Outbox(store, notifier).drain()
    assert (back.sent, back.failed, back.messages) == (3, 0, 3)
    for hook in (up, down):
        assert sorted(hook.ids()) == [f"vedette-alert-{i}" for i in ids], hook.address
    assert (await Outbox(store, notifier).drain()).sent == 0
    errors = [d["error"] or "" for i in ids for d in store.deliveries(i)]
    assert len(errors) == 3 * 4 and SECRET not in " ".join(errors) + caplog.text
    assert [a.status for a in store.list_alerts()] == ["sent"] * 3
    store.close()


async def test_expired_alert_turns_dead_and_retry_revives_it(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    hook.status = 503
    notifier = AppriseNotifier(urls=[json_url(hook)])
    store = open_store(tmp_path, clock)
    alert_id = store.enqueue_alert(
        watchlist="bakhmut",
        article_id=1,
        story_key="url:1",
        tags=(),
        payload=story(1),
        expires=T0 + timedelta(minutes=2),
    )
    outcomes = []
    for wait_s in (0, 30, 60):  # 30 s, then 60 s; the next retry would pass the expiry
        clock.advance(seconds=wait_s)
        outcomes.append(await Outbox(store, notifier).drain())
    assert [(o.failed, o.dead) for o in outcomes] == [(1, 0), (1, 0), (0, 1)]
    (dead,) = store.list_alerts(status="dead")
    assert dead.id == alert_id and "503" in (dead.last_error or "")
    hook.status = 200
    assert store.retry_alerts() == 1
    assert (await Outbox(store, notifier).drain()).sent == 1
    assert hook.ids() == [f"vedette-alert-{alert_id}"]


async def test_a_target_that_already_succeeded_is_not_sent_again(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    """What a crash after the first target's success leaves behind: only the rest is sent."""
    done, pending = hooks
    notifier = AppriseNotifier(urls=[json_url(done, "a"), json_url(pending, "b")])
    store = open_store(tmp_path, clock)
    alert_id = enqueue(store, 1)
    outbox = Outbox(store, notifier)
    outbox.plan()
    target_a = notifier.targets_for([])[0]
    store.record_delivery(alert_id, channel=target_a, ok=True, error=None)
    assert (await outbox.drain()).sent == 1
    assert (done.ids(), pending.ids()) == ([], [f"vedette-alert-{alert_id}"])


async def test_digest_window_sends_one_message_listing_the_stories(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    notifier = AppriseNotifier(urls=[json_url(hook)])
    store = open_store(tmp_path, clock)
    outbox = Outbox(store, notifier)
    hourly = {"digest_s": 3600}
    first = enqueue(store, 1, delivery=hourly)
    assert (await outbox.drain()).held == 1
    clock.advance(minutes=10)
    second = enqueue(store, 2, delivery=hourly)
    other = enqueue(store, 3, watchlist="other")  # a list without a digest is not held
    assert (await outbox.drain()).sent == 1 and hook.ids() == [f"vedette-alert-{other}"]
    clock.advance(minutes=49, seconds=59)
    assert (await outbox.drain()).messages == 0
    clock.advance(seconds=1)
    result = await outbox.drain()
    assert (result.sent, result.messages, result.held) == (2, 1, 0)
    digest = hook.messages()[-1]
    assert digest.ids == [f"vedette-alert-{first}", f"vedette-alert-{second}", "vedette-digest-1"]
    assert "2 stories for Bakhmut axis, digest every 1h" in digest.text
    assert "Story 1 from Bakhmut" in digest.text and "https://news.example/2" in digest.text
    assert {d["message_id"] for i in (first, second) for d in store.deliveries(i)} == {
        "vedette-digest-1"
    }
    # The next alert opens a new window.
    clock.advance(minutes=1)
    enqueue(store, 4, delivery=hourly)
    await outbox.drain()
    (held,) = store.list_alerts(status="queued")
    assert held.release_at == clock.now + timedelta(hours=1) and held.hold == "digest"


async def test_quiet_hours_hold_then_one_digest_when_they_end(
    tmp_path: Path, hooks: tuple[Hook, Hook]
) -> None:
    kyiv = {"quiet_hours": "22:00-07:00 Europe/Kyiv"}  # UTC+2 in January
    clock = Clock(datetime(2024, 1, 15, 19, 30, tzinfo=UTC))  # 21:30 in Kyiv
    hook, _ = hooks
    store = open_store(tmp_path, clock)
    outbox = Outbox(store, AppriseNotifier(urls=[json_url(hook)]))
    enqueue(store, 1, delivery=kyiv)
    assert (await outbox.drain()).sent == 1
    clock.advance(hours=1)  # 22:30 in Kyiv
    enqueue(store, 2, delivery=kyiv)
    enqueue(store, 3, delivery=kyiv)
    assert (await outbox.drain()).held == 2
    clock.now = datetime(2024, 1, 16, 4, 0, tzinfo=UTC)  # 06:00
    enqueue(store, 4, delivery=kyiv)
    assert (await outbox.drain()).held == 3
    clock.now = datetime(2024, 1, 16, 4, 59, 59, tzinfo=UTC)
    assert (await outbox.drain()).messages == 0 and len(hook.messages()) == 1
    clock.advance(seconds=1)  # 07:00 in Kyiv
    assert (await outbox.drain()).sent == 3
    digest = hook.messages()[-1]
    assert digest.ids == [
        "vedette-alert-2",
        "vedette-alert-3",
        "vedette-alert-4",
        "vedette-digest-2",
    ]
    assert "held during quiet hours (22:00-07:00 Europe/Kyiv)" in digest.text
    clock.advance(minutes=1)
    enqueue(store, 5, delivery=kyiv)
    assert (await outbox.drain()).sent == 1 and hook.messages()[-1].ids == ["vedette-alert-5"]


async def test_rate_cap_folds_the_overflow_into_a_digest(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    store = open_store(tmp_path, clock)
    outbox = Outbox(store, AppriseNotifier(urls=[json_url(hook)]))
    capped = {"rate_limit": "2/h"}
    for n in range(1, 6):
        enqueue(store, n, delivery=capped)
    burst = await outbox.drain()
    assert (burst.sent, burst.messages, burst.held) == (2, 2, 3)
    clock.advance(minutes=59)
    assert (await outbox.drain()).messages == 0
    clock.advance(minutes=1)
    assert (await outbox.drain()).sent == 3
    assert hook.messages()[-1].ids[-1] == "vedette-digest-3"
    assert "held over the rate limit (2/h)" in hook.messages()[-1].text
    clock.advance(minutes=1)
    enqueue(store, 6, delivery=capped)  # one message (the digest) in the last hour: room
    enqueue(store, 7, delivery=capped)  # two now: wait until the digest is an hour old
    assert (await outbox.drain()).sent == 1
    (held,) = store.list_alerts(status="queued")
    assert held.release_at == T0 + timedelta(hours=2) and held.hold == "rate_limit"
    assert len(hook.messages()) == 4  # nothing dropped, nothing twice
    clock.now = T0 + timedelta(hours=2)
    assert (await outbox.drain()).sent == 1
    assert sorted(hook.ids()) == sorted(
        [f"vedette-alert-{n}" for n in range(1, 8)] + ["vedette-digest-3"]
    )


async def test_a_long_batch_goes_out_as_several_digests(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    hook, _ = hooks
    store = open_store(tmp_path, clock)
    outbox = Outbox(store, AppriseNotifier(urls=[json_url(hook)]))
    for n in range(1, 31):
        enqueue(store, n, delivery={"digest_s": 60})
    await outbox.drain()
    clock.advance(minutes=1)
    result = await outbox.drain()
    assert (result.sent, result.messages) == (30, 2)
    assert [m.ids[-1] for m in hook.messages()] == ["vedette-digest-1", "vedette-digest-26"]
    assert len(set(hook.ids())) == 32


async def test_a_digest_too_long_for_a_chat_service_is_split_not_refused(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    """Apprise limits Mattermost to 4000 characters (Discord: 2000); 25 long headlines are more."""
    hook, _ = hooks
    url = f"mmost://{hook.address}/3ccdd113474722377935511fc85d3dd4?format=markdown"
    store = open_store(tmp_path, clock)
    outbox = Outbox(store, AppriseNotifier(urls=[url]))
    for n in range(1, 26):
        enqueue(store, n, delivery={"digest_s": 60}, title=f"Bakhmut report {n} " + "x" * 250)
    await outbox.drain()
    clock.advance(minutes=1)
    result = await outbox.drain()
    assert (result.sent, result.messages, result.failed) == (25, 1, 0)
    parts = [item.text for item in hook.messages()]
    assert len(parts) > 1 and all(len(part) <= 4000 for part in parts)
    listed = re.findall(r"vedette-alert-(\d+)", "\n".join(parts))  # Apprise splits at lines
    assert sorted(map(int, listed)) == list(range(1, 26))
    assert parts[-1].rstrip().endswith("ID: vedette-digest-1")


async def test_ops_notice_without_an_ops_target_goes_to_the_log(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook], caplog: pytest.LogCaptureFixture
) -> None:
    hook, _ = hooks
    config = tmp_path / "apprise.yaml"
    config.write_text(f"urls:\n  - {json_url(hook)}:\n      - tag: analysts\n")
    store = open_store(tmp_path, clock)
    state = FeedState("wire", "https://wire.example/rss", status="failing", error_count=9)
    key, payload = feed_notice("failing", Feed("wire", state.url), state, now=T0)
    alert_id = store.enqueue_alert(
        watchlist=OPS_WATCHLIST,
        article_id=0,
        story_key=key,
        tags=("ops",),
        payload=payload,
        expires=T0 + timedelta(hours=1),
    )
    assert alert_id is not None
    with caplog.at_level(logging.WARNING):
        assert (await Outbox(store, AppriseNotifier(config_file=config)).drain()).sent == 1
    assert hook.messages() == []
    assert "ops_notice" in caplog.text and "Feed failing: wire" in caplog.text
    assert [d["channel"] for d in store.deliveries(alert_id)] == ["log://"]


async def test_alerts_queued_before_the_upgrade_are_planned_and_sent(
    tmp_path: Path, clock: Clock, hooks: tuple[Hook, Hook]
) -> None:
    from sqlite_utils import Database

    from daemon.storeschema import MIGRATIONS

    db = Database(tmp_path / "vedette.db")
    MIGRATIONS[0](db)
    db["schema_migrations"].insert({"version": 1, "applied": "2024-01-01T00:00:00+00:00"})
    db["alerts"].insert(
        {
            "watchlist": "bakhmut",
            "article_id": 1,
            "story_key": "url:1",
            "tags": "[]",
            "payload": '{"title": "Queued by the old version"}',
            "status": "queued",
            "attempts": 0,
            "created": T0.isoformat(),
            "next_attempt": T0.isoformat(),
            "expires": (T0 + timedelta(days=1)).isoformat(),
        }
    )
    db.close()
    hook, _ = hooks
    store = open_store(tmp_path, clock)
    assert (await Outbox(store, AppriseNotifier(urls=[json_url(hook)])).drain()).sent == 1
    assert "Queued by the old version" in hook.messages()[0].text
