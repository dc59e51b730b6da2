"""Loads YAML safely and remembers the line of every key, so errors can say `file:line`.

The only module importing PyYAML. Hostile files are bounded: size and nesting depth are capped,
and only the safe loader is used (no Python objects, no tags beyond plain YAML).
"""

from __future__ import annotations

from typing import Any

import yaml

from daemon.errors import ConfigError

MAX_YAML_BYTES = 2_000_000
MAX_DEPTH = 32

LineMap = dict[str, int]


def load_yaml(text: str, *, source: str) -> tuple[Any, LineMap]:
    """Parse `text` into plain Python values plus a map from key path to 1-based line.

    Key paths look like `defaults.interval`, `feeds[2].url`, `terms.places.Bakhmut`.
    Raises ConfigError (with the line) for invalid YAML, oversized or too deeply nested input.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(
            f"file is larger than {MAX_YAML_BYTES // 1_000_000} MB; split it", file=source
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: LineMap = {}
        if node is None:
            return None, lines
        return _build(loader, node, "", lines, 0, source), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=source) from exc
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: str, lines: LineMap, depth: int, source: str
) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"nesting deeper than {MAX_DEPTH} levels",
            file=source,
            line=node.start_mark.line + 1,
            key=path,
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "keys must be plain scalars", file=source, line=key_node.start_mark.line + 1
                )
            key_path = f"{path}.{key}" if path else str(key)
            lines[key_path] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, key_path, lines, depth + 1, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            item_path = f"{path}[{index}]"
            lines[item_path] = item_node.start_mark.line + 1
            items.append(_build(loader, item_node, item_path, lines, depth + 1, source))
        return items
    return loader.construct_object(node, deep=True)


def line_of(lines: LineMap, path: str) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return lines.get(path)
        path = path[:cut]
    return None
