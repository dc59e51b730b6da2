"""Loads `watchlists/*.yaml` into validated `Watchlist` values and keeps the last good version.

A watchlist that fails to load (bad YAML, unknown key, bad rule, invalid regex) is reported as
`watchlists/NAME.yaml:LINE: ...` and, when a previous version loaded, that version stays active.
`WatchlistSet.refresh()` is cheap (one `stat` per file) so it runs before every matching pass:
saving a file takes effect on the next poll, without a restart.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from daemon.config import parse_duration
from daemon.digest import parse_quiet_hours, parse_rate_limit
from daemon.errors import ConfigError
from daemon.match import Matcher, compile_watchlists
from daemon.models import ARTICLE_FIELDS, TermSpec, Watchlist
from daemon.templates import FORMATS, check_template
from daemon.yamlfile import LineMap, line_of, load_yaml

logger = logging.getLogger(__name__)

WATCHLIST_KEYS = (
    "title",
    "notify",
    "feeds",
    "terms",
    "match",
    "exclude",
    "fields",
    "min_sources",
    "digest",
    "quiet_hours",
    "rate_limit",
    "template",
)


def parse_watchlist(text: str, *, name: str, source: str) -> Watchlist:
    """Validate one watchlist file's text. Raises ConfigError with file:line."""
    raw, lines = load_yaml(text, source=source)
    if not isinstance(raw, dict):
        raise ConfigError("a watchlist must be a mapping with at least `terms:`", file=source)
    reader = _Reader(source, lines)
    for key in raw:
        if key not in WATCHLIST_KEYS:
            close = difflib.get_close_matches(str(key), WATCHLIST_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(WATCHLIST_KEYS)}"
            reader.fail(str(key), f"unknown key '{key}' ({hint})", show_key=False)
    if "terms" not in raw:
        raise ConfigError("missing `terms:` (the named groups of terms to watch)", file=source)
    terms = raw["terms"]
    if not isinstance(terms, dict) or not terms:
        reader.fail("terms", "must map group names to terms, e.g. `places: {Bakhmut: [Бахмут]}`")
    groups = {str(g): reader.term_specs(f"terms.{g}", value) for g, value in terms.items()}
    fields = tuple(reader.strings("fields", raw.get("fields", list(ARTICLE_FIELDS))))
    for index, name_ in enumerate(fields):
        if name_ not in ARTICLE_FIELDS:
            reader.fail(f"fields[{index}]", f"'{name_}' is not a field (use {ARTICLE_FIELDS})")
    min_sources = raw.get("min_sources", 1)
    if not isinstance(min_sources, int) or isinstance(min_sources, bool) or min_sources < 1:
        reader.fail("min_sources", f"{min_sources!r} must be a whole number ≥ 1")
    rule = raw.get("match")
    if rule is not None and not isinstance(rule, str):
        reader.fail("match", "must be a rule such as `places and (units or keywords)`")
    watchlist = Watchlist(
        name=name,
        title=str(raw.get("title") or name),
        groups=groups,
        rule=rule,
        exclude=reader.term_specs("exclude", raw.get("exclude", [])),
        notify=tuple(reader.strings("notify", raw.get("notify", []))),
        feeds=tuple(reader.strings("feeds", raw.get("feeds", []))),
        fields=fields,
        min_sources=min_sources,
        digest_s=reader.duration("digest", raw.get("digest")),
        quiet_hours=reader.checked("quiet_hours", raw.get("quiet_hours"), parse_quiet_hours),
        rate_limit=reader.checked("rate_limit", raw.get("rate_limit"), parse_rate_limit),
        template=reader.template(raw.get("template")),
        source=source,
        lines=dict(lines),
    )
    try:
        compile_watchlists([watchlist])  # rule syntax, group names and regexes fail here
    except ConfigError as exc:
        raise ConfigError(
            exc.message, file=source, line=line_of(lines, exc.key), key=exc.key
        ) from exc
    return watchlist


@dataclass(slots=True)
class _Reader:
    source: str
    lines: LineMap

    def fail(self, key: str, message: str, *, show_key: bool = True) -> NoReturn:
        raise ConfigError(
            message, file=self.source, line=line_of(self.lines, key), key=key if show_key else ""
        )

    def strings(self, key: str, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.fail(key, "must be a list of names, e.g. [analysts, ops]")
        return [str(v) for v in value]

    def optional_string(self, key: str, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            self.fail(key, 'must be text such as "22:00-07:00 Europe/Kyiv", or null')
        return value

    def checked(self, key: str, value: Any, parse: Callable[[str], object]) -> str | None:
        """Optional text that `parse` accepts (quiet hours, rate limit), kept as written."""
        text = self.optional_string(key, value)
        if text is not None:
            try:
                parse(text)
            except ValueError as exc:
                self.fail(key, str(exc))
        return text

    def template(self, value: Any) -> dict[str, str]:
        """`template: {title:, text:, markdown:, html:}`: string.Template text per format."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail("template", f"must map formats ({', '.join(FORMATS)}) to template text")
        for part, text in value.items():
            key = f"template.{part}"
            if part not in FORMATS:
                self.fail(key, f"unknown format '{part}' (use: {', '.join(FORMATS)})")
            if not isinstance(text, str):
                self.fail(key, "must be template text such as '$title ($feed)'")
            try:
                check_template(text)
            except ValueError as exc:
                self.fail(key, str(exc))
        return {str(part): text for part, text in value.items()}

    def duration(self, key: str, value: Any) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(key, str(exc))

    def term_specs(self, key: str, value: Any) -> tuple[TermSpec, ...]:
        """A group is a mapping `term: [aliases]` or a list of terms / one-key mappings."""
        if value is None:
            return ()
        entries: list[tuple[str, Any, str]] = []
        if isinstance(value, dict):
            entries = [(str(k), v, f"{key}.{k}") for k, v in value.items()]
        elif isinstance(value, list):
            for index, item in enumerate(value):
                path = f"{key}[{index}]"
                if isinstance(item, dict) and len(item) == 1:
                    ((term, aliases),) = item.items()
                    entries.append((str(term), aliases, path))
                elif isinstance(item, str | int | float) and not isinstance(item, bool):
                    entries.append((str(item), None, path))
                else:
                    self.fail(path, "each entry must be a term or `term: [aliases]`")
        else:
            self.fail(key, "must be a list of terms or a mapping of `term: [aliases]`")
        specs = []
        for term, aliases, path in entries:
            if not term.strip():
                self.fail(path, "empty term")
            if aliases is None:
                aliases = []
            if isinstance(aliases, str):
                aliases = [aliases]
            if not isinstance(aliases, list) or not all(
                isinstance(a, str | int) and str(a).strip() for a in aliases
            ):
                self.fail(path, f"aliases of '{term}' must be a list of non-empty names")
            specs.append(
                TermSpec(
                    canonical=term.strip(),
                    aliases=tuple(str(a).strip() for a in aliases),
                    line=line_of(self.lines, path),
                )
            )
        return tuple(specs)


@dataclass(slots=True)
class _Loaded:
    mtime_ns: int
    size: int
    watchlist: Watchlist | None
    error: ConfigError | None


@dataclass(slots=True)
class WatchlistSet:
    """The active watchlists of a folder: reloads changed files, keeps last good versions."""

    folder: Path
    on_error: Callable[[ConfigError], None] = field(
        default=lambda exc: logger.error(
            "watchlist_invalid file=%s line=%s error=%r", exc.file, exc.line, str(exc)
        )
    )
    _files: dict[Path, _Loaded] = field(default_factory=dict)
    _matcher: Matcher | None = None

    def refresh(self) -> bool:
        """Reload new or changed files; drop removed ones. True when the active set changed."""
        paths = sorted(self.folder.glob("*.yaml")) + sorted(self.folder.glob("*.yml"))
        changed = False
        for gone in set(self._files) - set(paths):
            del self._files[gone]
            changed = True
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            known = self._files.get(path)
            if known and (known.mtime_ns, known.size) == (stat.st_mtime_ns, stat.st_size):
                continue
            loaded = self._load(path, stat.st_mtime_ns, stat.st_size, known)
            self._files[path] = loaded
            changed = changed or loaded.error is None
        if changed or self._matcher is None:
            self._matcher = compile_watchlists(self.active())
        return changed

    def _load(self, path: Path, mtime_ns: int, size: int, known: _Loaded | None) -> _Loaded:
        previous = known.watchlist if known else None
        try:
            text = path.read_text(encoding="utf-8")
            watchlist = parse_watchlist(text, name=path.stem, source=_display(path))
        except ConfigError as exc:
            self.on_error(exc)
            return _Loaded(mtime_ns, size, previous, exc)
        except (OSError, UnicodeDecodeError) as exc:
            error = ConfigError(f"cannot read: {exc}", file=_display(path))
            self.on_error(error)
            return _Loaded(mtime_ns, size, previous, error)
        if known is not None:
            logger.info("watchlist_reloaded watchlist=%s", path.stem)
        return _Loaded(mtime_ns, size, watchlist, None)

    def active(self) -> list[Watchlist]:
        return [f.watchlist for f in self._files.values() if f.watchlist is not None]

    def errors(self) -> list[ConfigError]:
        return [f.error for f in self._files.values() if f.error is not None]

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            self.refresh()
        assert self._matcher is not None
        return self._matcher

    def get(self, name: str) -> Watchlist | None:
        return next((w for w in self.active() if w.name == name), None)


def _display(path: Path) -> str:
    """`watchlists/bakhmut.yaml` rather than a long absolute path, when possible."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_watchlists(folder: Path) -> tuple[list[Watchlist], list[ConfigError]]:
    """Every watchlist of a folder, and the errors of those that failed (for `vedette check`)."""
    errors: list[ConfigError] = []
    watchlists = WatchlistSet(folder, on_error=errors.append)
    watchlists.refresh()
    return watchlists.active(), errors


__all__: Sequence[str] = ("WatchlistSet", "load_watchlists", "parse_watchlist")
