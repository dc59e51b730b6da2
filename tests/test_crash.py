"""`kill -9` between "sent" and "marked sent": a real `vedette poll` subprocess delivers to a
loopback webhook that holds one request open until the test has SIGKILLed the process.

The contract (README, Notifications): delivery is at-least-once. After the restart the alert
that was in flight is sent again (same id, so the receiver can drop it), every alert whose send
had completed is not sent again, and nothing is lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from receivers import Hook, Received

from daemon.store import Store
from support import Item, rss, write_config

ROOT = Path(__file__).resolve().parent.parent
RECENT = datetime.now(UTC) - timedelta(hours=1)


def vedette(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", "--config", str(config), *args]


@pytest.fixture
def hook() -> Iterator[Hook]:
    running = Hook().start()
    yield running
    running.stop()


@pytest.mark.slow
def test_sigkill_while_a_send_is_in_flight(
    httpserver: HTTPServer, tmp_path: Path, hook: Hook
) -> None:
    items = [
        Item(f"Bakhmut report {n}", f"https://news.example/{n}", "Bakhmut", str(n), RECENT)
        for n in range(1, 5)
    ]
    httpserver.expect_request("/feed").respond_with_data(
        rss(items), content_type="application/rss+xml"
    )
    in_flight, release = threading.Event(), threading.Event()

    def hold_the_second_alert(item: Received) -> None:
        if item.ids == ["vedette-alert-2"] and not in_flight.is_set():
            in_flight.set()
            release.wait(timeout=60)  # until the sender is dead

    hook.before_reply = hold_the_second_alert
    config = write_config(
        tmp_path,
        feeds=[("wire", httpserver.url_for("/feed"))],
        # rto: Apprise must still be waiting for the answer when the kill comes
        extra=f"apprise_urls: ['json://{hook.address}/hook?rto=60']\n",
    )
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(vedette(config, "poll"), cwd=ROOT, stdout=log, stderr=log)
    try:
        assert in_flight.wait(timeout=60), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        release.set()
        if first.poll() is None:
            first.kill()
        log.close()

    store = Store.open(tmp_path / "data" / "vedette.db")
    after_crash = {a.id: (a.status, len(store.deliveries(a.id))) for a in store.list_alerts()}
    store.close()
    # Alert 1 was sent and marked; 2 reached the receiver but was never marked; 3 and 4 wait.
    assert after_crash == {1: ("sent", 1), 2: ("queued", 0), 3: ("queued", 0), 4: ("queued", 0)}
    assert hook.ids() == ["vedette-alert-1", "vedette-alert-2"]

    second = subprocess.run(
        vedette(config, "poll"), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "(3 sent, 0 queued for retry)" in second.stdout
    received = Counter(hook.ids())
    assert received == {
        "vedette-alert-1": 1,  # completed before the kill: never repeated
        "vedette-alert-2": 2,  # in flight at the kill: sent again, same id (at-least-once)
        "vedette-alert-3": 1,  # not yet tried: sent once, nothing lost
        "vedette-alert-4": 1,
    }
    store = Store.open(tmp_path / "data" / "vedette.db")
    assert [a.status for a in store.list_alerts()] == ["sent"] * 4
    assert [d["status"] for d in store.deliveries(2)] == ["ok"]
    store.close()
    print(f"\nSIGKILL test: receiver counts {dict(sorted(received.items()))}")
