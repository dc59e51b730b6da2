"""Turns `config/vedette.yaml` into a frozen, validated `Settings`.

The only reader of `os.environ` (through `${NAME}` / `${NAME:-default}` expansion, with the
environment passed in) and the only module importing pydantic. Relative paths resolve against the
config file's folder. Every error names file, line, key and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from daemon import __version__
from daemon.errors import ConfigError
from daemon.logs import redact, register_secret
from daemon.models import Feed
from daemon.yamlfile import LineMap, line_of, load_yaml

DEFAULT_CONFIG_PATH = Path("config/vedette.yaml")
_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {"b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000}
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: object) -> float:
    """`30s`, `10m`, `1h`, `2d` (or a bare number of seconds) → seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value))
    if not match:
        raise ValueError(f'"{value}" is not a duration (use e.g. 30s, 10m, 1h, 2d)')
    return float(match.group(1)) * _DURATION_UNITS_S[match.group(2)]


def parse_size(value: object) -> int:
    """`512KB`, `10MB` (or a bare number of bytes) → bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b)\s*", str(value).lower())
    if not match:
        raise ValueError(f'"{value}" is not a size (use e.g. 512KB, 10MB)')
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


FEED_NAME_RULE = (
    "use letters, digits, '_', '.', '-' and spaces, starting with a letter or digit, "
    "at most 100 characters"
)
_FEED_NAME_RE = re.compile(r"\w[\w.\- ]{0,99}")


def check_feed_name(name: str) -> str:
    """Return `name` if it is a valid feed name; else ValueError with the rule. Names reach
    logs, metrics and file-like places (OPML, exports), so `../../etc/passwd` is refused."""
    if not _FEED_NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid feed name ({FEED_NAME_RULE})")
    return name


def _parse_backlog(value: object) -> float | None:
    if value in ("all", None):
        return None
    if value == "none":
        return 0.0
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f'"{value}" is not a duration, "all" or "none"') from None


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Backlog = Annotated[float | None, BeforeValidator(_parse_backlog)]


def default_parse_workers() -> int:
    """Two parser processes, or one on a single-core machine. With one, parsing is the critical
    path of a cold poll while the daemon process uses about 60 % of the other core; with two,
    1,000 feeds took ~15 % less time on two cores (bench/RESULTS.md). A second worker starts
    only when the first has a feed waiting, and costs ~30 MB while there is parsing to do."""
    return min(2, os.cpu_count() or 1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Defaults(_Strict):
    interval: Duration = 600.0
    jitter: Duration = 30.0
    timeout: Duration = 20.0
    max_bytes: Size = 10_000_000
    per_host: int = Field(2, ge=1, le=64)


class _FeedEntry(_Strict):
    name: Annotated[str, AfterValidator(check_feed_name)]
    url: str = Field(pattern=r"^https?://\S+$")
    tags: list[str] = []
    interval: Duration | None = None
    jitter: Duration | None = None
    timeout: Duration | None = None
    max_bytes: Size | None = None


class _Http(_Strict):
    listen: str | None = Field("127.0.0.1:8080", pattern=r"^[^\s:]*:\d{1,5}$")


class _ConfigFile(_Strict):
    database: str = "../data/vedette.db"
    watchlists: str = "../watchlists"
    apprise: str | None = None
    apprise_urls: list[str] = []
    alert_backlog: Backlog = 86400.0
    alert_expiry: Duration = 86400.0
    feed_failing_after: Duration = 6 * 3600.0
    ops_tag: str | None = Field("ops", min_length=1)
    hedges: list[str] = []
    parse_workers: int = Field(default_factory=default_parse_workers, ge=0, le=8)
    defaults: _Defaults = Field(default_factory=_Defaults)
    concurrency: int = Field(16, ge=1, le=256)
    user_agent: str = "Vedette/{version} (+https://github.com/vedette-news/vedette)"
    http: _Http | None = Field(default_factory=_Http)
    retention: Duration = 180 * 86400.0
    feeds: list[_FeedEntry] = []
    opml: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration handed to every stage."""

    source: Path
    database: Path
    watchlists_dir: Path
    apprise_config: Path | None
    apprise_urls: tuple[str, ...]
    alert_backlog_s: float | None  # None: alert on everything, even on a first poll
    alert_expiry_s: float
    feed_failing_after_s: float
    default_interval_s: float
    default_jitter_s: float
    default_timeout_s: float
    default_max_bytes: int
    per_host: int
    concurrency: int
    user_agent: str
    http_listen: str | None
    retention_s: float
    feeds: tuple[Feed, ...]
    opml: Path | None
    ops_tag: str | None = "ops"  # Apprise tag for "feed failing"/"recovered"; None: log only
    hedges: tuple[str, ...] = ()  # extra phrases that mark a report as unconfirmed
    # parser processes; 0 parses in a thread of the daemon
    parse_workers: int = field(default_factory=default_parse_workers)

    def make_feed(self, name: str, url: str, tags: tuple[str, ...] = ()) -> Feed:
        """A feed with this config's defaults (for OPML and `feeds add`)."""
        return Feed(
            name=name,
            url=url,
            tags=tags,
            interval_s=self.default_interval_s,
            jitter_s=self.default_jitter_s,
            timeout_s=self.default_timeout_s,
            max_bytes=self.default_max_bytes,
        )


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str]) -> Path:
    """`--config`, else `$VEDETTE_CONFIG`, else `config/vedette.yaml`."""
    return Path(cli_path or environ.get("VEDETTE_CONFIG") or DEFAULT_CONFIG_PATH)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate the config file. Raises ConfigError with file:line."""
    env = os.environ if environ is None else environ
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config ({exc.strerror}); pass --config or set VEDETTE_CONFIG",
            file=source,
        ) from exc
    raw, lines = load_yaml(text, source=source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a mapping of keys", file=source, line=1)
    expanded = _expand_env(raw, env, source, lines, "")
    try:
        model = _ConfigFile.model_validate(expanded)
    except ValidationError as exc:
        raise _config_error(exc, source, lines) from None
    return _to_settings(model, path)


def expand_env_text(text: str, environ: Mapping[str, str] | None = None, *, source: str) -> str:
    """Expand `${NAME}` / `${NAME:-default}` in a whole file's text (for apprise.yaml)."""
    env = os.environ if environ is None else environ
    lines = {"": 1}
    result: str = _expand_env(text, env, source, lines, "")
    return result


def _expand_env(value: Any, env: Mapping[str, str], source: str, lines: LineMap, path: str) -> Any:
    if isinstance(value, dict):
        return {
            k: _expand_env(v, env, source, lines, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, env, source, lines, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(found: re.Match[str]) -> str:
        name, default = found.group(1), found.group(2)
        if name in env:
            if "://" in value:  # a password or token in an Apprise or feed URL: never log it
                register_secret(env[name])
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
            file=source,
            line=line_of(lines, path),
            key=path,
        )

    return _ENV_PATTERN.sub(substitute, value)


def _config_error(exc: ValidationError, source: str, lines: LineMap) -> ConfigError:
    """The first pydantic error, rephrased with its key path, line and a fix."""
    error = exc.errors()[0]
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error["type"] == "extra_forbidden":
        parent, _, key = path.rpartition(".")
        model = _model_at(parent)
        valid = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(valid)})"
        return ConfigError(
            f"unknown key '{key}'{hint}", file=source, line=line_of(lines, path), key=parent
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "string_pattern_mismatch":  # a URL may carry a password
        message = f"{redact(str(error.get('input')))!r} is not valid here ({message})"
    return ConfigError(message, file=source, line=line_of(lines, path), key=path)


def _model_at(path: str) -> type[BaseModel] | None:
    model: type[BaseModel] = _ConfigFile
    for part in re.split(r"\.|\[\d+\]", path):
        if not part:
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        found = _first_model(annotation)
        if found is None:
            return None
        model = found
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _to_settings(model: _ConfigFile, path: Path) -> Settings:
    base = path.parent

    def resolve(p: str) -> Path:
        return (base / p).resolve() if not Path(p).is_absolute() else Path(p)

    defaults = model.defaults
    feeds = tuple(
        Feed(
            name=entry.name,
            url=entry.url,
            tags=tuple(entry.tags),
            interval_s=entry.interval if entry.interval is not None else defaults.interval,
            jitter_s=entry.jitter if entry.jitter is not None else defaults.jitter,
            timeout_s=entry.timeout if entry.timeout is not None else defaults.timeout,
            max_bytes=entry.max_bytes if entry.max_bytes is not None else defaults.max_bytes,
        )
        for entry in model.feeds
    )
    names = [feed.name for feed in feeds]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"feed names must be unique; repeated: {', '.join(duplicates)}",
            file=str(path),
            key="feeds",
        )
    return Settings(
        source=path,
        database=resolve(model.database),
        watchlists_dir=resolve(model.watchlists),
        apprise_config=resolve(model.apprise) if model.apprise else None,
        apprise_urls=tuple(model.apprise_urls),
        alert_backlog_s=model.alert_backlog,
        alert_expiry_s=model.alert_expiry,
        feed_failing_after_s=model.feed_failing_after,
        default_interval_s=defaults.interval,
        default_jitter_s=defaults.jitter,
        default_timeout_s=defaults.timeout,
        default_max_bytes=defaults.max_bytes,
        per_host=defaults.per_host,
        concurrency=model.concurrency,
        user_agent=model.user_agent.replace("{version}", __version__),
        http_listen=model.http.listen if model.http else None,
        retention_s=model.retention,
        feeds=feeds,
        opml=resolve(model.opml) if model.opml else None,
        ops_tag=model.ops_tag,
        hedges=tuple(model.hedges),
        parse_workers=model.parse_workers,
    )
