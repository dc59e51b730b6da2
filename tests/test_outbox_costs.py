"""The outbox's cheaper path (issue #7) keeps its promises: console alerts are written without a
thread hop, other notifiers still send from a worker thread, and the delivery log still holds
every finished attempt, each one committed before the next target is tried."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from receivers import Clock

from daemon import outbox as outbox_module
from daemon.errors import NotifyError
from daemon.notify import ConsoleNotifier
from daemon.outbox import Outbox
from daemon.render import Message
from daemon.store import Store

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


class Crash(BaseException):
    """The process dying in the middle of a send."""


class Targets:
    """A notifier with named targets that accept, refuse or crash, and that records which
    thread each send ran in and what the delivery log held at that moment."""

    def __init__(self, store: Store, outcomes: dict[str, str]) -> None:
        self.store = store
        self.outcomes = outcomes
        self.sends: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.threads: set[int] = set()

    def targets_for(self, tags: Sequence[str]) -> list[str]:
        return list(self.outcomes)

    def tagged_targets(self, tags: Sequence[str]) -> list[str]:
        return []

    def send(self, target: str, message: Message) -> None:
        self.threads.add(threading.get_ident())
        logged = [(d["channel"], d["status"]) for d in self.store.deliveries(1)]
        self.sends.append((target, message.title, logged))
        outcome = self.outcomes[target]
        if outcome == "crash":
            raise Crash
        if outcome == "refuse":
            raise NotifyError("503 from the receiver")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "vedette.db", clock=Clock(T0))


def enqueue(store: Store, count: int) -> list[int]:
    ids = []
    for n in range(1, count + 1):
        alert_id = store.enqueue_alert(
            watchlist="bakhmut",
            article_id=n,
            story_key=f"url:{n}",
            tags=(),
            payload={"watchlist": "bakhmut", "title": f"Story {n}", "url": f"https://x.test/{n}"},
            expires=store.clock() + timedelta(hours=24),
        )
        assert alert_id is not None
        ids.append(alert_id)
    return ids


def log(store: Store, alert_id: int) -> list[tuple[str, str]]:
    return [(d["channel"], d["status"]) for d in store.deliveries(alert_id)]


async def test_console_alerts_are_written_in_place_and_each_logged_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_thread(*args: object) -> None:
        raise AssertionError("a console write went through a worker thread")

    monkeypatch.setattr(outbox_module.asyncio, "to_thread", no_thread)
    ids = enqueue(store, 30)
    console = io.StringIO()
    result = await Outbox(store, ConsoleNotifier(console)).drain()
    assert (result.sent, result.failed, result.messages) == (30, 0, 30)
    assert [console.getvalue().count(f"vedette-alert-{n}\n") for n in ids] == [1] * 30
    assert all(log(store, n) == [("console://", "ok")] for n in ids)
    assert {alert.status for alert in store.list_alerts()} == {"sent"}
    assert (await Outbox(store, ConsoleNotifier(console)).drain()).sent == 0


async def test_other_notifiers_still_send_from_a_worker_thread(store: Store) -> None:
    enqueue(store, 1)
    targets = Targets(store, {"a://": "accept"})
    assert (await Outbox(store, targets).drain()).sent == 1
    assert threading.get_ident() not in targets.threads


async def test_each_attempt_is_logged_before_the_next_target_is_tried(store: Store) -> None:
    (alert_id,) = enqueue(store, 1)
    targets = Targets(store, {"a://": "accept", "b://": "refuse", "c://": "accept"})
    assert (await Outbox(store, targets).drain()).failed == 1
    assert [logged for _, _, logged in targets.sends] == [
        [],
        [("a://", "ok")],
        [("a://", "ok"), ("b://", "failed")],
    ]
    assert log(store, alert_id) == [("a://", "ok"), ("b://", "failed"), ("c://", "ok")]
    (alert,) = store.list_alerts()
    assert (alert.status, alert.attempts) == ("queued", 1)
    assert "b://: 503 from the receiver" in (alert.last_error or "")


async def test_a_crash_during_the_last_send_repeats_only_that_send(store: Store) -> None:
    (alert_id,) = enqueue(store, 1)
    crashing = Targets(store, {"a://": "accept", "b://": "crash"})
    with pytest.raises(Crash):
        await Outbox(store, crashing).drain()
    assert log(store, alert_id) == [("a://", "ok")]
    (alert,) = store.list_alerts()
    assert (alert.status, alert.attempts) == ("queued", 0)

    restarted = Targets(store, {"a://": "accept", "b://": "accept"})
    assert (await Outbox(store, restarted).drain()).sent == 1
    assert [target for target, _, _ in restarted.sends] == ["b://"]
    assert log(store, alert_id) == [("a://", "ok"), ("b://", "ok")]
    (alert,) = store.list_alerts()
    assert (alert.status, alert.attempts) == ("sent", 1)
