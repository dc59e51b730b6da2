"""Shared fixtures. Every test runs with a clean environment: no VEDETTE_* and no proxies."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from receivers import Inbox, smtp_server

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VEDETTE_") or name.upper() in PROXY_VARS:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def forget_registered_secrets() -> None:
    """Secrets registered for redaction by one test must not leak into the next."""
    from daemon import logs

    logs._registered_secrets.clear()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """An SMTP inbox on 127.0.0.1 and its port."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        yield inbox, port


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`soak` tests (long fault and load runs) only run when selected: `pytest -m soak`. Each
    has a bounded, shorter form that runs with the rest of the suite."""
    expression = str(config.getoption("-m") or "")
    if "soak" in expression and "not soak" not in expression:
        return
    skip = pytest.mark.skip(reason="long-running: select it with `pytest -m soak`")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
