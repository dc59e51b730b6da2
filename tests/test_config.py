from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.config import load_settings, parse_duration, parse_size, resolve_config_path
from daemon.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vedette.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "feeds: []\n"), environ={})
    assert settings.database == (tmp_path / "../data/vedette.db").resolve()
    assert settings.watchlists_dir == (tmp_path / "../watchlists").resolve()
    assert settings.default_interval_s == 600
    assert settings.alert_backlog_s == 86400
    assert settings.http_listen == "127.0.0.1:8080"
    assert "Vedette/" in settings.user_agent and "{version}" not in settings.user_agent
    assert settings.parse_workers == min(2, os.cpu_count() or 1)


def test_bundled_config_is_valid() -> None:
    settings = load_settings(Path("config/vedette.yaml"), environ={})
    assert len(settings.feeds) >= 5
    assert {"en", "uk", "ru"} <= {tag for feed in settings.feeds for tag in feed.tags}


def test_feed_overrides_defaults(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            "defaults: {interval: 2m, max_bytes: 1MB}\n"
            "feeds:\n  - {name: a, url: 'https://a.example/rss', interval: 30s, tags: [x]}\n"
            "  - {name: b, url: 'https://b.example/rss'}\n",
        ),
        environ={},
    )
    a, b = settings.feeds
    assert (a.interval_s, a.max_bytes, a.tags) == (30, 1_000_000, ("x",))
    assert b.interval_s == 120


def test_bad_duration_names_file_line_key_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "database: x.db\ndefaults:\n  interval: 10 minutes\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(error.value) == (
        f'{path}:3: defaults.interval: "10 minutes" is not a duration (use e.g. 30s, 10m, 1h, 2d)'
    )
    assert error.value.line == 3 and error.value.key == "defaults.interval"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds:\n  - name: a\n    url: https://a.example/\n    tgas: [x]\n")
    with pytest.raises(
        ConfigError, match=r":4: feeds\[0\]: unknown key 'tgas' \(did you mean 'tags'\?\)"
    ):
        load_settings(path, environ={})


def test_unknown_top_level_key_lists_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":1: unknown key 'colour' \(valid keys: .*database"):
        load_settings(write(tmp_path, "colour: blue\n"), environ={})


def test_missing_required_and_bad_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":2: feeds\[0\]\.url: is required"):
        load_settings(write(tmp_path, "feeds:\n  - name: a\n"), environ={})
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.url: 'ftp://x' is not valid"):
        load_settings(write(tmp_path, "feeds:\n  - {name: a, url: 'ftp://x'}\n"), environ={})


def test_duplicate_feed_names(tmp_path: Path) -> None:
    text = "feeds:\n  - {name: a, url: 'https://a/'}\n  - {name: a, url: 'https://b/'}\n"
    with pytest.raises(ConfigError, match="repeated: a"):
        load_settings(write(tmp_path, text), environ={})


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":3: invalid YAML"):
        load_settings(write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"), environ={})


def test_env_expansion_with_default_and_missing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "apprise_urls: ['json://${HOOK_HOST}/x']\nuser_agent: 'V ${AGENT_SUFFIX:-plain}'\n",
    )
    settings = load_settings(path, environ={"HOOK_HOST": "127.0.0.1:9"})
    assert settings.apprise_urls == ("json://127.0.0.1:9/x",)
    assert settings.user_agent == "V plain"
    with pytest.raises(ConfigError, match=r":1: apprise_urls\[0\]: environment variable HOOK_HOST"):
        load_settings(path, environ={})


def test_backlog_words(tmp_path: Path) -> None:
    assert (
        load_settings(write(tmp_path, "alert_backlog: all\n"), environ={}).alert_backlog_s is None
    )
    assert load_settings(write(tmp_path, "alert_backlog: none\n"), environ={}).alert_backlog_s == 0
    with pytest.raises(ConfigError, match="alert_backlog"):
        load_settings(write(tmp_path, "alert_backlog: lots\n"), environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_config_path_resolution() -> None:
    assert resolve_config_path("x.yaml", {"VEDETTE_CONFIG": "y.yaml"}) == Path("x.yaml")
    assert resolve_config_path(None, {"VEDETTE_CONFIG": "y.yaml"}) == Path("y.yaml")
    assert resolve_config_path(None, {}) == Path("config/vedette.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h", 3600), ("2d", 172800), (45, 45)]
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_size() -> None:
    assert parse_size("512KB") == 512_000
    assert parse_size("10MB") == 10_000_000
    with pytest.raises(ValueError, match="not a size"):
        parse_size("ten")


def test_yaml_limits(tmp_path: Path) -> None:
    deep = "a: " + "[" * 40 + "]" * 40 + "\n"
    with pytest.raises(ConfigError, match="nesting deeper"):
        load_settings(write(tmp_path, deep), environ={})
