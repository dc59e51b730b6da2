"""Channel faults through the outbox, against real loopback servers and an injected clock.

One target (tag `faulty`) misbehaves: an SMTP server that refuses the message (554), drops the
connection in the middle of DATA, or is slow; a webhook answering 500, 429 with Retry-After, or
never answering (Apprise's `rto` read timeout); a hostname under `.invalid` (RFC 6761) that fails
at resolution. Another target (tag `healthy`) keeps working. For each fault: the faulty alerts stay
queued with a readable, redacted `last_error`, their retries back off (30 s, then 60 s), the
healthy target still gets every alert as it comes, and once the channel returns every alert is
delivered exactly once.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.email import NotifyEmail
from receivers import ID_PATTERN, Clock, Hook, smtp_server, story

from daemon.notify import AppriseNotifier
from daemon.outbox import Outbox
from daemon.store import Store
from support import wait_until

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
SECRET = "s3cret-channel-password"


class Mailbox:
    """aiosmtpd handler with a switchable mode: accept, refuse (554), drop (close mid-DATA) or
    slow (hold DATA until the test sets `release`, then accept)."""

    def __init__(self) -> None:
        self.mode = "accept"
        self.ids: list[str] = []
        self.holding = threading.Event()
        self.release: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.mode == "refuse":
            return "554 5.7.1 Message refused by policy"
        if self.mode == "drop":
            server.transport.close()
            return "421 4.3.0 connection dropped"
        if self.mode == "slow":
            self.loop = asyncio.get_running_loop()
            self.release = asyncio.Event()
            self.holding.set()
            await self.release.wait()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.as_string()
        self.ids.extend(dict.fromkeys(ID_PATTERN.findall(text)))
        return "250 OK"

    def let_go(self) -> None:
        if self.loop is not None and self.release is not None:
            self.loop.call_soon_threadsafe(self.release.set)


@dataclass
class Webhook:
    """A webhook that answers `status` (and records the body only when it accepts it), or holds
    the request unanswered until `released` (then drops it unrecorded)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    ids: list[str] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                hook.requests += 1
            if hook.hang:
                hook.released.wait(timeout=60)
                self.close_connection = True
                return  # never answered: the sender timed out long ago
            if hook.status < 300:
                text = str(json.loads(raw).get("message", ""))
                with hook.lock:
                    hook.ids.extend(ID_PATTERN.findall(text))
            self.send_response(hook.status)
            for name, value in hook.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.port = server.server_address[1]
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    yield hook
    hook.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, int]]:
    # Apprise waits 5.5 s between two sends to one e-mail service; loopback needs no courtesy.
    monkeypatch.setattr(NotifyEmail, "request_rate_per_sec", 0)
    box = Mailbox()
    with smtp_server(box) as port:
        yield box, port
        box.let_go()


@pytest.fixture
def healthy() -> Iterator[Hook]:
    running = Hook().start()
    yield running
    running.stop()


def mailto(port: int, **params: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"mailto://127.0.0.1:{port}?from=vedette@example.org&to=desk@example.org&mode=insecure{extra}"


@dataclass
class Channel:
    url: str
    heal: Callable[[], None]
    delivered: Callable[[], list[str]]
    error: str  # what last_error must mention


def enqueue(store: Store, n: int, tag: str) -> int:
    alert_id = store.enqueue_alert(
        watchlist="bakhmut",
        article_id=n,
        story_key=f"url:{n}",
        tags=(tag,),
        payload=story(n),
        expires=store.clock() + timedelta(days=1),
    )
    assert alert_id is not None
    return alert_id


def notifier_for(tmp_path: Path, faulty: str, healthy: Hook) -> AppriseNotifier:
    config = tmp_path / "apprise.yaml"
    config.write_text(
        f"urls:\n  - '{faulty}':\n      - tag: faulty\n"
        f"  - 'json://{healthy.address}/ok':\n      - tag: healthy\n",
        encoding="utf-8",
    )
    return AppriseNotifier(config_file=config)


def channel_for(
    kind: str, webhook: Webhook, mailbox: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> Channel:
    box, port = mailbox
    secret_hook = f"json://vedette:{SECRET}@{webhook.address}/hook?rto=1&cto=1"

    def accept() -> None:
        box.mode = "accept"

    def webhook_ok() -> None:
        webhook.status, webhook.headers, webhook.hang = 200, {}, False
        webhook.released.set()

    if kind == "smtp-refuses":
        box.mode = "refuse"
        return Channel(mailto(port), accept, lambda: list(box.ids), "failed")
    if kind == "smtp-drops-mid-data":
        box.mode = "drop"
        return Channel(mailto(port), accept, lambda: list(box.ids), "")
    if kind == "webhook-500":
        webhook.status = 500
        return Channel(secret_hook, webhook_ok, lambda: list(webhook.ids), "500")
    if kind == "webhook-429":
        webhook.status, webhook.headers = 429, {"Retry-After": "120"}
        return Channel(secret_hook, webhook_ok, lambda: list(webhook.ids), "429")
    if kind == "webhook-timeout":
        webhook.hang = True
        return Channel(secret_hook, webhook_ok, lambda: list(webhook.ids), "")
    assert kind == "dns-failure"
    real = socket.getaddrinfo

    def resolver_back() -> None:
        def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "hook.vedette-test.invalid":
                host = "127.0.0.1"
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)

    url = f"json://vedette:{SECRET}@hook.vedette-test.invalid:{webhook.port}/hook?rto=1&cto=1"
    return Channel(url, resolver_back, lambda: list(webhook.ids), "")


FAULTS = [
    "smtp-refuses",
    "smtp-drops-mid-data",
    "webhook-500",
    "webhook-429",
    "webhook-timeout",
    "dns-failure",
]


@pytest.mark.parametrize("kind", FAULTS)
async def test_faulty_channel_queues_backs_off_and_delivers_once_when_back(
    kind: str,
    tmp_path: Path,
    webhook: Webhook,
    mailbox: tuple[Mailbox, int],
    healthy: Hook,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = channel_for(kind, webhook, mailbox, monkeypatch)
    clock = Clock(T0)
    store = Store.open(tmp_path / "vedette.db", clock=clock)
    outbox = Outbox(store, notifier_for(tmp_path, channel.url, healthy))
    faulty = [enqueue(store, n, "faulty") for n in (1, 2)]
    fine = [enqueue(store, 3, "healthy")]

    started = time.monotonic()
    first = await outbox.drain()
    took = time.monotonic() - started
    if kind == "dns-failure" and took > 5:
        pytest.skip(f"the resolver here does not fail fast for .invalid ({took:.1f}s)")
    assert (first.sent, first.failed, first.dead) == (1, 2, 0)
    assert took < 10, f"a fault must not stall the outbox ({took:.1f}s)"
    delays = []
    for _round in range(2):
        for alert_id in faulty:
            (alert,) = [a for a in store.list_alerts() if a.id == alert_id]
            assert alert.status == "queued"
            error = alert.last_error or ""
            assert error.startswith("mailto://" if kind.startswith("smtp") else "json://"), error
            assert channel.error in error and SECRET not in error, error
            assert len(error) < 1000 and error.isprintable(), error
        (alert,) = [a for a in store.list_alerts() if a.id == faulty[0]]
        delays.append((alert.next_attempt - clock.now).total_seconds())
        # Not due yet: nothing is tried; the healthy target gets a new alert meanwhile.
        clock.advance(seconds=delays[-1] - 1)
        fine.append(enqueue(store, 10 + _round, "healthy"))
        waiting = await outbox.drain()
        assert (waiting.sent, waiting.failed) == (1, 0)
        clock.advance(seconds=1)
        if _round == 0:
            assert (await outbox.drain()).failed == 2  # still down
    assert delays == [30.0, 60.0], delays  # exponential backoff
    assert sorted(healthy.ids()) == [f"vedette-alert-{i}" for i in fine]

    channel.heal()
    back = await outbox.drain()
    assert (back.sent, back.failed, back.dead) == (2, 0, 0)
    assert (await outbox.drain()).messages == 0
    assert Counter(channel.delivered()) == {f"vedette-alert-{i}": 1 for i in faulty}
    assert Counter(healthy.ids()) == {f"vedette-alert-{i}": 1 for i in fine}
    assert {a.status for a in store.list_alerts()} == {"sent"}
    logged = " ".join(str(d["error"]) for i in faulty for d in store.deliveries(i))
    assert SECRET not in logged + caplog.text
    store.close()


async def test_slow_smtp_holds_the_send_then_delivers_once(
    tmp_path: Path, mailbox: tuple[Mailbox, int], healthy: Hook
) -> None:
    """A slow server (within the timeout) delays delivery but loses and repeats nothing."""
    box, port = mailbox
    box.mode = "slow"
    clock = Clock(T0)
    store = Store.open(tmp_path / "vedette.db", clock=clock)
    outbox = Outbox(store, notifier_for(tmp_path, mailto(port, cto="30"), healthy))
    slow = enqueue(store, 1, "faulty")
    fine = enqueue(store, 2, "healthy")
    drain = asyncio.create_task(outbox.drain())
    await asyncio.to_thread(wait_until, box.holding.is_set, timeout_s=20, what="DATA held")
    (held,) = [a for a in store.list_alerts() if a.id == slow]
    assert held.status == "queued" and store.deliveries(slow) == []
    box.let_go()
    result = await asyncio.wait_for(drain, timeout=30)
    assert (result.sent, result.failed) == (2, 0)
    assert box.ids == [f"vedette-alert-{slow}"]
    assert healthy.ids() == [f"vedette-alert-{fine}"]
    assert (await outbox.drain()).messages == 0
    store.close()
