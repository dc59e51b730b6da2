"""load_yaml composes with libyaml when it can, and the result is the pure-Python composer's:
the same values, the same line of every key, the same errors on the same lines (issue #7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon import yamlfile
from daemon.errors import ConfigError
from daemon.yamlfile import MAX_DEPTH, load_yaml

needs_libyaml = pytest.mark.skipif(
    yamlfile._libyaml_loader() is None, reason="PyYAML without a nesting-capped libyaml"
)


def outcome(text: str) -> tuple[str, Any]:
    try:
        return "loaded", load_yaml(text, source="w.yaml")
    except ConfigError as exc:
        return "refused", (str(exc), exc.line, exc.key)


def pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlfile, "_libyaml_loader", lambda: None)


def feeds_config(count: int) -> str:
    """Shaped like bench/run.py's generated config: one flow mapping per feed."""
    lines = ["database: v.db", "defaults: {interval: 10m, jitter: 30s}", "feeds:"]
    lines += [
        f"  - {{name: feed-{n}, url: {json.dumps(f'http://127.0.0.1/{n}.xml')}, tags: [en]}}"
        for n in range(count)
    ]
    return "\n".join(lines) + "\n"


def nested(levels: int, opener: str = "[", closer: str = "]") -> str:
    """`terms: {a: ...}` holding `levels` more levels: the root counts as the first."""
    return "terms:\n  a: " + opener * (levels - 2) + "x" + closer * (levels - 2) + "\n"


SAME_EITHER_WAY = [
    Path("config/vedette.yaml").read_text(encoding="utf-8"),
    feeds_config(50),
    "",
    "# only a comment\n",
    "just a scalar",
    "terms:\n  places: [Бахмут, Bakhmut]\n  when: 2024-05-01\n",
    "common: &c [a, b]\nterms:\n  x: *c\n  y: *c\n",
    "? [a, b]\n: complex key\n",
    "a: 1\r\nb:\r\n  - 2\r\n",
    "a: |\n  two\n  lines\n",
    "<<: {a: 1}\nb: 2\n",
    nested(MAX_DEPTH + 1),  # the deepest allowed
    nested(MAX_DEPTH + 2),
    nested(MAX_DEPTH + 2, "{a: ", "}"),
    "terms:\n" + "".join("  " * n + f"k{n}:\n" for n in range(1, MAX_DEPTH + 2)),
    "b: &b " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\nc: [[[[*b]]]]\n",  # deep by alias
    "a: &a [x, *a]\n",  # recursive
    "a: [1, 2\n",
    "a: 'unclosed\n",
    "a: b: c\n",
    "a:\n  - b\n - c\n",
    "a: 1\n\tb: 2\n",
    "a: {b: 1, b: 2}\n",
    "a: !!python/object:os.system x\n",
    "a: \x07\n",
    "a: \ud800\n",  # a lone surrogate, which libyaml cannot even be given
    "a: 2024-13-45\n",
    "---\na: 1\n---\nb: 2\n",
]


@pytest.mark.parametrize("text", SAME_EITHER_WAY, ids=range(len(SAME_EITHER_WAY)))
def test_libyaml_and_pure_python_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = outcome(text)
    pure_python(monkeypatch)
    assert fast == outcome(text)


@needs_libyaml
def test_a_valid_file_never_reaches_the_pure_python_composer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("composed in Python")

    monkeypatch.setattr(yamlfile, "_Loader", refuse)
    value, lines = load_yaml(feeds_config(1000), source="v.yaml")
    assert len(value["feeds"]) == 1000
    assert value["feeds"][999]["url"] == "http://127.0.0.1/999.xml"
    assert lines["feeds[999].url"] == 1003


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        "- " * 100_000 + "x\n",
        "{a: " * 100_000 + "x" + "}" * 100_000,
        "? " + "[" * 900 + "]" * 900 + "\n: key nested too deep\n",
        "".join(" " * n + "k:\n" for n in range(1500)),
    ],
    ids=["open", "closed", "block", "mappings", "key", "indented"],
)
def test_deep_nesting_is_a_config_error_with_the_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, source="watchlists/evil.yaml")
    assert caught.value.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert caught.value.file == "watchlists/evil.yaml"
    assert caught.value.line is not None


def test_a_date_that_does_not_exist_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml("feeds:\n  - since: 2024-13-45\n", source="v.yaml")
    assert str(caught.value) == "v.yaml:2: feeds[0].since: invalid value: month must be in 1..12"


def test_no_libyaml_means_the_pure_python_composer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert yamlfile._libyaml_loader.__wrapped__() is None


def test_a_libyaml_without_a_nesting_cap_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its composer would recurse in C once per `[`, so 100,000 of them could crash."""

    class Uncapped(yaml.SafeLoader):
        def get_single_node(self) -> yaml.Node:
            return yaml.ScalarNode("tag:yaml.org,2002:str", "composed at any depth")

    monkeypatch.setattr(yaml, "CSafeLoader", Uncapped, raising=False)
    assert yamlfile._libyaml_loader.__wrapped__() is None
