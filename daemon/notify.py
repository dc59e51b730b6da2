"""Sends rendered messages through Apprise, one target at a time. The only module importing
apprise.

Targets are addressed by their privacy-safe URL (`Apprise.urls(privacy=True)` form), which is what
the delivery log records: secrets never reach logs or the database. Sending per target (rather
than one `notify()` for all) lets the outbox retry only the targets that failed, so a flaky
webhook never causes a duplicate e-mail.
"""

from __future__ import annotations

import copy
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import apprise

from daemon.config import expand_env_text
from daemon.errors import ConfigError, NotifyError
from daemon.logs import redact
from daemon.render import Message, escape_markdown

CONSOLE_TARGET = "console://"


class Notifier(Protocol):
    """What the outbox needs: which targets a set of tags selects, and a way to send to one."""

    def targets_for(self, tags: Sequence[str]) -> list[str]: ...

    def tagged_targets(self, tags: Sequence[str]) -> list[str]:
        """Only targets that carry one of `tags` explicitly (for ops notices)."""
        ...

    def send(self, target: str, message: Message) -> None:
        """Deliver to one target. Raises NotifyError with the reason (secrets redacted)."""
        ...


class ConsoleNotifier:
    """Prints alerts when no Apprise target is configured (and in `vedette demo`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def targets_for(self, tags: Sequence[str]) -> list[str]:
        return [CONSOLE_TARGET]

    def tagged_targets(self, tags: Sequence[str]) -> list[str]:
        return []  # the console carries no tags: ops notices go to the log instead

    def send(self, target: str, message: Message) -> None:
        rule = "─" * 72
        self.stream.write(f"{rule}\n🔔 {message.title}\n{message.text}\n")
        self.stream.flush()


class AppriseNotifier:
    """Apprise services loaded from `apprise.yaml` (Apprise's YAML format, with tags) and/or
    `apprise_urls:`. Raises ConfigError when a URL or the file cannot be loaded."""

    def __init__(
        self,
        *,
        config_file: Path | None = None,
        urls: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._apprise = apprise.Apprise()
        if config_file is not None:
            self._load_config(config_file, environ)
        for index, url in enumerate(urls):
            if not self._apprise.add(url):
                raise ConfigError(
                    f"not a valid Apprise URL: {redact(url)} (see Apprise's URL list)",
                    key=f"apprise_urls[{index}]",
                )
        # A target's name is its privacy URL with tokens redacted too (Apprise keeps a webhook's
        # path token), numbered when two targets would read the same. Names reach the
        # delivery log and the logs, so they must never carry a secret.
        self._services: dict[str, Any] = {}
        self._names: dict[str, str] = {}
        for service in self._apprise.find(tag=apprise.common.MATCH_ALL_TAG):
            private = service.url(privacy=True)
            if private in self._names:
                continue
            name = base = redact(private)
            counter = 2
            while name in self._services:
                name, counter = f"{base}#{counter}", counter + 1
            self._names[private] = name
            self._services[name] = service

    def _load_config(self, path: Path, environ: Mapping[str, str] | None) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read Apprise config ({exc.strerror})", file=str(path)
            ) from exc
        text = expand_env_text(text, environ, source=str(path))
        config = apprise.AppriseConfig()
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            loaded = config.add_config(text, format="yaml")
            # Apprise 2.x names it services(); 1.x servers()
            listing = getattr(config, "services", None) or getattr(config, "servers")  # noqa: B009
            services = listing() if loaded else []
        if not loaded or (text.strip() and not services and "urls" in text):
            detail = redact(_last_line(captured))
            raise ConfigError(
                f"Apprise could not load this file{': ' + detail if detail else ''}",
                file=str(path),
            )
        self._apprise.add(config)

    @property
    def target_names(self) -> list[str]:
        return list(self._services)

    def targets_for(self, tags: Sequence[str]) -> list[str]:
        selected = self._apprise.find(tag=list(tags)) if tags else self._apprise.find()
        return list(dict.fromkeys(self._names[service.url(privacy=True)] for service in selected))

    def tagged_targets(self, tags: Sequence[str]) -> list[str]:
        return self.targets_for(tags) if tags else []

    def send(self, target: str, message: Message) -> None:
        """Deliver to one target. Raises NotifyError with Apprise's own complaint, redacted."""
        service = self._services.get(target)
        if service is None:
            raise NotifyError(f"target {target} is no longer configured")
        body_format = _format_for(service)
        body, title = _body_for(body_format, message), message.title
        if getattr(service, "title_maxlen", 1) <= 0:
            # Apprise would paste the title into the body unescaped; do it ourselves, escaped.
            body, title = _heading(body_format, message.title) + body, ""
        single = apprise.Apprise()
        single.add(_fitting(service, len(title) + len(body)))
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            result = single.notify(body=body, title=title, body_format=body_format)
        if not result:
            reason = redact(_last_line(captured)) or "Apprise reported failure (no detail)"
            raise NotifyError(reason)


def _fitting(service: Any, length: int) -> Any:
    """The service, set to split a message longer than it accepts (a digest on Discord, whose
    limit is 2000 characters). Apprise's default, "upstream", would send it whole, the service
    would refuse it every time, and the alert would die. `?overflow=truncate` in a URL is kept."""
    limit = getattr(service, "body_maxlen", 0) or 0
    if not limit or length <= limit or service.overflow_mode != apprise.OverflowMode.UPSTREAM:
        return service
    clone = copy.copy(service)
    clone.overflow_mode = apprise.OverflowMode.SPLIT
    return clone


def _format_for(service: Any) -> str:
    """The format a target renders: HTML for e-mail, Markdown for chat, text elsewhere.

    An explicit `?format=` in the URL wins. Apprise 2.x lists a service's formats with its
    default first; chat services whose default is text but which render Markdown anyway (Discord)
    get Markdown, so feed text is escaped for what the reader sees. Generic webhooks (json://,
    form://) offer every format and get plain text unless `?format=` says otherwise.
    """
    formats = _formats(getattr(service, "_format_override", None))
    formats = formats or _formats(getattr(service, "notify_format", apprise.NotifyFormat.TEXT))
    if not formats:
        return str(apprise.NotifyFormat.TEXT.value)
    first = formats[0]
    if first == "text" and "markdown" in formats and "html" not in formats:
        return "markdown"
    return first


def _formats(value: Any) -> list[str]:
    """Apprise 1.x keeps one format, 2.x a tuple; either way, as plain names."""
    if value is None:
        return []
    values = value if isinstance(value, tuple | list) else [value]
    return [str(getattr(v, "value", v)).lower() for v in values]


def _body_for(body_format: str, message: Message) -> str:
    if body_format == "html":
        return message.html
    return message.markdown if body_format == "markdown" else message.text


def _heading(body_format: str, title: str) -> str:
    if body_format == "html":
        return f"<p><b>{html.escape(title)}</b></p>\n"
    return f"**{escape_markdown(title)}**\n" if body_format == "markdown" else f"{title}\n"


def _last_line(captured: io.StringIO | Any) -> str:
    lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
