"""Delivery through Apprise to real loopback receivers: an SMTP server (aiosmtpd) and a webhook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from receivers import Inbox

from daemon.errors import ConfigError, NotifyError
from daemon.notify import AppriseNotifier
from daemon.render import render_alert
from support import Receiver, wait_until, webhook_receiver

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
    notifier.send(target, render_alert(PAYLOAD))
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
    notifier.send(analysts, render_alert(PAYLOAD))
    assert receiver.received()[0]["title"].endswith("Soledar")
    receiver.status = 500
    with pytest.raises(NotifyError, match="500"):
        notifier.send(analysts, render_alert(PAYLOAD))
    with pytest.raises(NotifyError, match="no longer configured"):
        notifier.send("json://gone.example/", render_alert(PAYLOAD))


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


def test_each_target_gets_the_format_it_renders() -> None:
    from daemon.notify import _format_for

    expected = {
        "mailto://127.0.0.1:25?from=a@example.org&to=b@example.org": "html",
        "discord://1234/abcdefabcdef": "markdown",  # Apprise's default is text; Discord renders MD
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ": "markdown",
        "tgram://123456789:abcdefg_hijklmnop/12315544/": "html",
        "json://127.0.0.1:9/hook": "text",
        "json://127.0.0.1:9/hook?format=markdown": "markdown",
        "discord://1234/abcdefabcdef?format=text": "text",  # an explicit ?format= wins
    }
    for url, wanted in expected.items():
        notifier = AppriseNotifier(urls=[url])
        (service,) = notifier._services.values()
        assert _format_for(service) == wanted, url


def test_title_is_put_into_the_body_escaped_when_the_service_has_no_title() -> None:
    from receivers import Hook

    hook = Hook().start()
    try:
        url = f"mmost://{hook.address}/3ccdd113474722377935511fc85d3dd4?format=markdown"
        notifier = AppriseNotifier(urls=[url])
        (target,) = notifier.targets_for([])
        payload = PAYLOAD | {"watchlist_title": "*Bakhmut* <axis>"}
        notifier.send(target, render_alert(payload, message_id="vedette-alert-9"))
        (item,) = hook.messages()
        assert item.path.startswith("/hooks/")
        heading, *rest = item.body["text"].splitlines()
        assert heading == "**\\*Bakhmut\\* \\<axis\\>: Soledar**"
        assert rest[-1] == "ID: vedette-alert-9"
    finally:
        hook.stop()
