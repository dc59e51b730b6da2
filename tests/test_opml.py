from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.models import Feed
from daemon.opml import read_opml, write_opml


def test_nested_outlines_become_tags_and_names_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "f.opml"
    path.write_text(
        '<opml version="2.0"><body><outline text="Ukraine">'
        '<outline text="Wire" xmlUrl="https://a/rss" category="en,/news"/>'
        '<outline text="Wire" xmlUrl="https://b/rss"/></outline>'
        '<outline title="Top" xmlUrl="https://c/rss"/></body></opml>',
        encoding="utf-8",
    )
    subs = read_opml(path)
    assert [(s.name, s.url, s.tags) for s in subs] == [
        ("wire", "https://a/rss", ("ukraine", "en", "news")),
        ("wire-2", "https://b/rss", ("ukraine",)),
        ("top", "https://c/rss", ()),
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.opml"
    path.write_text(write_opml([Feed("kyiv", "https://k/rss?a=1&b=2", tags=("en", "ua"))]))
    (sub,) = read_opml(path)
    assert (sub.name, sub.url, sub.tags) == ("kyiv", "https://k/rss?a=1&b=2", ("en", "ua"))


def test_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline></body>", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.opml:1: invalid OPML"):
        read_opml(bad)
    bad.write_text("<rss/>", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an OPML file"):
        read_opml(bad)
