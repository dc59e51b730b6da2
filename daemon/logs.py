"""Log format (text `event key=value` or JSON lines), levels, and redaction of secrets.

Named `logs` so it does not shadow the standard library's `logging`. Log calls elsewhere look
like `logger.info("poll_done feed=%s new=%d", name, new)`: the first word is the event.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^/\s@]+)@", re.I)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:token|key|apikey|api_key|secret|password|pass|pwd|auth|access_token|"
    r"webhook|sig|signature)=)[^&\s]+",
    re.I,
)
_URL_PATH_TOKENS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<rest>[^\s\"'<>]+)", re.I)
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,}")
_PLAIN_SCHEMES = ("http://", "https://")
_registered_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a value that must never be printed (e.g. an expanded `${ENV}` secret)."""
    if len(value) >= 4:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    """Hide passwords in URLs, secret query parameters, long tokens in non-HTTP service URLs
    (Apprise's `discord://ID/TOKEN` style), and any registered secret."""
    for secret in sorted(_registered_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(lambda m: m["scheme"] + _mask_userinfo(m["userinfo"]) + "@", text)
    text = _SECRET_QUERY.sub(lambda m: m["key"] + "***", text)

    def mask_path(found: re.Match[str]) -> str:
        if found["scheme"].lower() in _PLAIN_SCHEMES:
            return found.group(0)
        return found["scheme"] + _LONG_TOKEN.sub("***", found["rest"])

    return _URL_PATH_TOKENS.sub(mask_path, text)


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _ = userinfo.partition(":")
    return f"{user}:***" if sep else userinfo


class _RedactingFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        if record.exc_info:
            message += "\n" + redact(self.formatException(record.exc_info))
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if self.as_json:
            event, _, rest = message.partition(" ")
            entry = {"time": moment, "level": record.levelname.lower(), "logger": record.name}
            if _EVENT.fullmatch(event):
                entry |= {"event": event, **_fields(rest)}
            entry["message"] = message
            return json.dumps(entry, ensure_ascii=False)
        return f"{moment} {record.levelname:<7} {message}"


_EVENT = re.compile(r"[a-z][a-z0-9_]*")
_FIELD = re.compile(r"""(?:^|\s)(\w+)=("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S+)""")


def _fields(text: str) -> dict[str, str]:
    """`a=1 b="x y" c='z'` → {"a": "1", "b": "x y", "c": "z"} (quotes from %r are removed)."""
    return {
        key: value[1:-1] if value[:1] in "\"'" else value for key, value in _FIELD.findall(text)
    }


def setup_logging(*, log_format: str, verbosity: int, stream: TextIO | None = None) -> None:
    """Configure the root logger once, from the CLI."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_RedactingFormatter(as_json=log_format == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    quiet = logging.WARNING if verbosity < 2 else logging.INFO
    for noisy in ("httpx", "httpcore", "apscheduler", "apprise", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(quiet)
