"""Loopback receivers for alert tests: a webhook that can go down and come back (and answer in
Apprise's json, Discord's or Slack's shape), an SMTP inbox, and a clock tests move by hand."""

from __future__ import annotations

import email
import email.message
import email.policy
import http.server
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiosmtpd.controller import Controller

ID_PATTERN = re.compile(r"vedette-(?:alert|digest)-\d+")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clock:
    """The injected clock: time moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Received:
    path: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """The message body, whichever shape carried it."""
        for key in ("message", "content", "text"):
            if isinstance(self.body.get(key), str):
                return str(self.body[key])
        return ""

    @property
    def ids(self) -> list[str]:
        return ID_PATTERN.findall(self.text)


def _shape_error(path: str, body: Any) -> str | None:
    """Reject what the real service would: Discord wants `content`, Slack `text` (each at most
    what that service accepts), anything else Apprise's json:// fields."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if path.startswith("/api/webhooks/"):
        if set(body) != {"content"} or not isinstance(body["content"], str):
            return f"Discord wants {{content}}, got {sorted(body)}"
        return "content over 2000 characters" if len(body["content"]) > 2000 else None
    if path.startswith("/hooks/"):  # Mattermost
        return None if isinstance(body.get("text"), str) else "Mattermost wants {text}"
    if path.startswith("/services/"):
        if set(body) != {"text"} or not isinstance(body["text"], str):
            return f"Slack wants {{text}}, got {sorted(body)}"
        return None
    if not {"title", "message", "type"} <= set(body):
        return f"not Apprise's json:// shape: {sorted(body)}"
    return None


@dataclass
class Hook:
    """A webhook receiver on a fixed 127.0.0.1 port. `stop()` makes it refuse connections (a
    receiver that is down), `start()` brings it back on the same port. `before_reply` runs in
    the request's thread after the body is recorded and may block (to hold a send in flight)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    before_reply: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Hook:
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                declared = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(declared)
                if len(raw) < declared:
                    return  # the sender died mid-request (a SIGKILL test): nothing arrived
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                problem = _shape_error(self.path, body)
                status = 400 if problem else hook.status
                if problem:
                    with hook.lock:
                        hook.rejected.append(problem)
                elif status < 300:
                    item = Received(self.path, body)
                    with hook.lock:
                        hook.received.append(item)
                    if hook.before_reply is not None:
                        hook.before_reply(item)
                if self.path.startswith("/api/webhooks/") and status == 200:
                    status = 204  # what Discord answers
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender was killed while we held its request

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def ids(self) -> list[str]:
        return [found for item in self.messages() for found in item.ids]

    def count(self, message_id: str) -> int:
        return sum(item.ids[-1:] == [message_id] for item in self.messages())


class Inbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that hands mail to `handler`; yields its port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def mail_parts(message: email.message.EmailMessage) -> tuple[str, str]:
    """The HTML and plain-text parts of an alert e-mail."""
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None, message.get_content_type()
    return str(html_part.get_content()), str(text_part.get_content())  # type: ignore[attr-defined]


def mailto(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=vedette@example.org&to=desk@example.org&mode=insecure"


def discord_shaped(hook: Hook) -> str:
    """json:// posting Discord's webhook body ({"content": Markdown}) to the loopback hook."""
    return (
        f"json://{hook.address}/api/webhooks/1234/s3cr3t-discord-token?format=markdown"
        "&:message=content&:title=&:type=&:version=&:attachments="
    )


def slack_shaped(hook: Hook) -> str:
    """json:// posting Slack's incoming-webhook body ({"text": Markdown}) to the hook."""
    return (
        f"json://{hook.address}/services/T000/B000/s3cr3tslacktoken?format=markdown"
        "&:message=text&:title=&:type=&:version=&:attachments="
    )


def story(n: int, watchlist: str = "bakhmut", **extra: Any) -> dict[str, Any]:
    return {
        "watchlist": watchlist,
        "watchlist_title": "Bakhmut axis",
        "title": f"Story {n} from Bakhmut",
        "feed": "wire",
        "url": f"https://news.example/{n}",
        "published": "2024-01-15T09:00+00:00",
        "first_seen": "2024-01-15T09:05+00:00",
        "terms": ["Bakhmut"],
        "snippet": f"Fighting near Bakhmut, report {n}",
        "highlights": [[16, 23]],
    } | extra
