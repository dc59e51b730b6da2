"""Delivery through Apprise to real loopback receivers: an SMTP server (aiosmtpd) and a webhook."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from support import Receiver, wait_until, webhook_receiver

from daemon.errors import ConfigError
from daemon.notify import AppriseNotifier
from daemon.render import render_alert

PAYLOAD = {
    "watchlist": "bakhmut",
    "title": "Wagner claims Soledar <b>@everyone</b>",
    "feed": "wire-en",
    "url": "https://news.example/a",
    "published": "2023-01-10T12:00+00:00",
    "terms": ["Soledar"],
    "snippet": "Wagner says it took Soledar",
    "highlights": [[20, 27]],
}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


def test_email_has_html_and_text_parts(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = AppriseNotifier(
        urls=[f"mailto://127.0.0.1:{port}?from=vedette@example.org&to=a@example.org&mode=insecure"]
    )
    (target,) = notifier.targets_for([])
    assert notifier.send(target, render_alert(PAYLOAD)) is None
    wait_until(lambda: inbox.messages, what="the e-mail")
    message = inbox.messages[0]
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    assert "<b>Soledar</b>" in html and "&lt;b&gt;" in html and "@everyone" not in html
    assert "Soledar" in text_part.get_content()


def test_tags_route_and_failures_are_reported(receiver: Receiver, tmp_path: Path) -> None:
    config = tmp_path / "apprise.yaml"
    config.write_text(
        "urls:\n"
        f"  - json://{receiver.url}/analysts:\n      - tag: analysts\n"
        f"  - json://{receiver.url}/ops:\n      - tag: ops\n",
        encoding="utf-8",
    )
    notifier = AppriseNotifier(config_file=config)
    assert len(notifier.targets_for([])) == 2
    (analysts,) = notifier.targets_for(["analysts"])
    assert notifier.targets_for(["nobody"]) == []
    assert notifier.send(analysts, render_alert(PAYLOAD)) is None
    assert receiver.received()[0]["title"].endswith("Soledar")
    receiver.status = 500
    error = notifier.send(analysts, render_alert(PAYLOAD))
    assert error is not None and "500" in error


def test_env_secrets_expand_and_never_show_in_target_names(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = tmp_path / "apprise.yaml"
    config.write_text("urls:\n  - json://user:${HOOK_PASSWORD}@" + receiver.url + "/x\n")
    notifier = AppriseNotifier(config_file=config, environ={"HOOK_PASSWORD": "s3cret-planted"})
    (target,) = notifier.targets_for([])
    assert "s3cret-planted" not in target


def test_bad_urls_and_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"apprise_urls\[0\]: not a valid Apprise URL"):
        AppriseNotifier(urls=["nonsense-scheme://x"])
    broken = tmp_path / "apprise.yaml"
    broken.write_text("urls: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="Apprise could not load"):
        AppriseNotifier(config_file=broken)
    with pytest.raises(ConfigError, match="cannot read Apprise config"):
        AppriseNotifier(config_file=tmp_path / "missing.yaml")
