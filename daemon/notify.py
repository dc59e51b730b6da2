"""Sends rendered messages through Apprise, one target at a time. The only module importing
apprise.

Targets are addressed by their privacy-safe URL (`Apprise.urls(privacy=True)` form), which is what
the delivery log records: secrets never reach logs or the database. Sending per target (rather
than one `notify()` for all) lets the outbox retry only the targets that failed, so a flaky
webhook never causes a duplicate e-mail.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import apprise

from daemon.config import expand_env_text
from daemon.errors import ConfigError
from daemon.logs import redact
from daemon.render import Message

CONSOLE_TARGET = "console://"


class Notifier(Protocol):
    """What the outbox needs: which targets a set of tags selects, and a way to send to one."""

    def targets_for(self, tags: Sequence[str]) -> list[str]: ...

    def send(self, target: str, message: Message) -> str | None:
        """Deliver; None on success, else the reason (secrets redacted)."""
        ...


class ConsoleNotifier:
    """Prints alerts when no Apprise target is configured (and in `vedette demo`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def targets_for(self, tags: Sequence[str]) -> list[str]:
        return [CONSOLE_TARGET]

    def send(self, target: str, message: Message) -> str | None:
        rule = "─" * 72
        self.stream.write(f"{rule}\n🔔 {message.title}\n{message.text}\n")
        self.stream.flush()
        return None


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
        self._services: dict[str, Any] = {}
        for service in self._apprise.find(tag=apprise.common.MATCH_ALL_TAG):
            self._services.setdefault(service.url(privacy=True), service)

    def _load_config(self, path: Path, environ: Mapping[str, str] | None) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read Apprise config ({exc.strerror})", file=str(path)
            ) from exc
        text = expand_env_text(text, environ, source=str(path))
        config = apprise.AppriseConfig()
        with apprise.LogCapture(level=logging.WARNING) as captured:
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
        return list(dict.fromkeys(service.url(privacy=True) for service in selected))

    def send(self, target: str, message: Message) -> str | None:
        service = self._services.get(target)
        if service is None:
            return f"target {target} is no longer configured"
        single = apprise.Apprise()
        single.add(service)
        body, body_format = _body_for(service, message)
        with apprise.LogCapture(level=logging.WARNING) as captured:
            result = single.notify(body=body, title=message.title, body_format=body_format)
        if bool(result):
            return None
        return redact(_last_line(captured)) or "Apprise reported failure (no detail)"


def _body_for(service: Any, message: Message) -> tuple[str, str]:
    """Give each target the format it renders (HTML for email, Markdown for chat)."""
    wanted = getattr(service, "notify_format", apprise.NotifyFormat.TEXT)
    if isinstance(wanted, tuple | list):  # Apprise 2.x: preferred format first
        wanted = wanted[0] if wanted else apprise.NotifyFormat.TEXT
    if wanted == apprise.NotifyFormat.HTML:
        return message.html, apprise.NotifyFormat.HTML
    if wanted == apprise.NotifyFormat.MARKDOWN:
        return message.markdown, apprise.NotifyFormat.MARKDOWN
    return message.text, apprise.NotifyFormat.TEXT


def _last_line(captured: io.StringIO | Any) -> str:
    lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
