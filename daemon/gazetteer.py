"""Suggests alias sets for places from a bundled GeoNames extract (`vedette gazetteer NAME`).

The extract (daemon/data/gazetteer-ua.json, built by scripts/build-gazetteer.py) lists Ukrainian
towns of ≥ 15,000 people with their Latin and Cyrillic names. A query matches a town when its
matching skeleton (`text.skeleton`: case, script merges, apostrophes) equals or begins one of
the town's names, so "Artemivsk", "артемовск" and "bakhm" all find Bakhmut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from daemon.match import compile_watchlists
from daemon.models import TermSpec, Watchlist
from daemon.text import skeleton

GAZETTEER_PATH = Path(__file__).parent / "data" / "gazetteer-ua.json"


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    population: int
    names: tuple[str, ...]


def load_gazetteer(path: Path = GAZETTEER_PATH) -> list[Place]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return [Place(p["name"], int(p["population"]), tuple(p["names"])) for p in document["places"]]


def suggest(places: list[Place], query: str, *, limit: int = 5) -> list[Place]:
    """Places whose name or alternate names match `query`, exact matches first, then by size."""
    wanted = skeleton(query)
    if len(wanted) < 3:
        return []
    scored = []
    for place in places:
        keys = [skeleton(n) for n in (place.name, *place.names)]
        if wanted in keys:
            scored.append((0, -place.population, place))
        elif any(key.startswith(wanted) for key in keys):
            scored.append((1, -place.population, place))
    return [place for _, _, place in sorted(scored, key=lambda s: s[:2])][:limit]


def alias_line(place: Place) -> str:
    """A watchlist entry: the GeoNames name as the canonical term plus only the aliases that
    add coverage (names the entry would not already match through transliteration or
    inflection are kept; "Краматорска" is dropped once "Краматорск" is in)."""
    aliases: list[str] = []
    candidates = sorted(place.names, key=lambda n: (not _is_cyrillic(n), len(n), n))
    for name in candidates:
        if _looks_like_a_name(name) and not _already_matched(place.name, aliases, name):
            aliases.append(name)
    quoted = ", ".join(_yaml_scalar(a) for a in aliases)
    return f"{_yaml_scalar(place.name)}: [{quoted}]"


def _already_matched(canonical: str, aliases: list[str], name: str) -> bool:
    entry = TermSpec(canonical, tuple(aliases))
    matcher = compile_watchlists([Watchlist("gazetteer", "", {"places": (entry,)})])
    return bool(matcher.match({"title": name}))


def _looks_like_a_name(name: str) -> bool:
    """Drop airport codes (KRQ) and romanisations of other scripts (bafumuto, ha er ke fu)."""
    return name[:1].isupper() and not name.isupper() and " " not in name.strip()


def _is_cyrillic(name: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in name)


def _yaml_scalar(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in "'\":,[]{}#") else value
