from __future__ import annotations

import io
import json
import logging

from daemon.logs import redact, register_secret, setup_logging


def test_redacts_passwords_tokens_and_registered_secrets() -> None:
    register_secret("planted-env-secret")
    text = (
        "mailto://user:hunter2@smtp.example.org "
        "discord://1234567890/AbCdEfGhIjKlMnOpQrStUvWx "
        "https://hooks.example.org/x?token=abc123&keep=1 "
        "json://127.0.0.1:9/path value=planted-env-secret"
    )
    out = redact(text)
    for secret in ("hunter2", "AbCdEfGhIjKlMnOpQrStUvWx", "abc123", "planted-env-secret"):
        assert secret not in out
    assert "keep=1" in out and "smtp.example.org" in out


def test_json_lines_with_fields_and_no_secrets() -> None:
    stream = io.StringIO()
    setup_logging(log_format="json", verbosity=0, stream=stream)
    logging.getLogger("daemon.test").info(
        "poll_done feed=%s url=%s new=%d", "wire", "https://u:pw@x.example/rss", 3
    )
    entry = json.loads(stream.getvalue())
    assert entry["event"] == "poll_done" and entry["feed"] == "wire" and entry["new"] == "3"
    assert entry["url"] == "https://u:***@x.example/rss"
    assert "pw@" not in stream.getvalue()
    setup_logging(log_format="text", verbosity=0)
