"""Loads YAML safely and remembers the line of every key, so errors can say `file:line`.

The only module importing PyYAML. Hostile files are bounded: size and nesting depth are capped
(depth while composing, before PyYAML's recursion could overflow the stack), what aliases may
expand to is capped (a "billion laughs" of anchors), and only the safe loader is used (no Python
objects, no tags beyond plain YAML).

Composing is done by libyaml (`CSafeLoader`, ten times faster on a config of 1,000 feeds) when
PyYAML has it and libyaml caps nesting itself (at 1,000 levels), so its recursive composer
cannot overflow the C stack. Any trouble there (invalid YAML, nesting over MAX_DEPTH, no libyaml)
sends the text through the pure-Python composer instead, which gives the same errors and lines
as it always did.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from daemon.errors import ConfigError

MAX_YAML_BYTES = 2_000_000
MAX_DEPTH = 32
# Nodes that aliases may add when expanded: ample for anchors reused by hand, while nine levels
# of nine aliases each (a 250-byte file) would otherwise expand to 387 million nodes.
MAX_ALIAS_NODES = 10_000

LineMap = dict[str, int]
_AnyLoader = yaml.SafeLoader | yaml.CSafeLoader


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing deep nesting while composing: PyYAML composes recursively, so
    a 2 KB file of 1,000 `[` would otherwise escape as RecursionError instead of a ConfigError."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:  # the root is depth 1, as in _build's count
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ConfigError(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    file=self.source,
                    line=event.start_mark.line + 1,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Budget:
    """Counts nodes visited again through an alias (see MAX_ALIAS_NODES)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.aliased = 0


def load_yaml(text: str, *, source: str) -> tuple[Any, LineMap]:
    """Parse `text` into plain Python values plus a map from key path to 1-based line.

    Key paths look like `defaults.interval`, `feeds[2].url`, `terms.places.Bakhmut`.
    Raises ConfigError (with the line) for invalid YAML, oversized or too deeply nested input.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(
            f"file is larger than {MAX_YAML_BYTES // 1_000_000} MB; split it", file=source
        )
    fast = _libyaml_loader()
    if fast is not None:
        try:
            return _load(fast(text), source, check_depth=True)
        except (yaml.YAMLError, ConfigError, ValueError):  # ValueError: libyaml wants UTF-8
            pass  # the pure-Python composer below words the error as it always has
    try:
        return _load(_Loader(text, source), source, check_depth=False)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=source) from exc


def _load(loader: _AnyLoader, source: str, *, check_depth: bool) -> tuple[Any, LineMap]:
    """Compose with `loader` (nesting checked after composing when `check_depth`), then build."""
    try:
        node = loader.get_single_node()
        lines: LineMap = {}
        if node is None:
            return None, lines
        if check_depth and _nested_too_deep(node):
            raise ConfigError(f"nesting deeper than {MAX_DEPTH} levels", file=source)
        return _build(loader, node, "", lines, 0, source, _Budget()), lines
    finally:
        loader.dispose()


@functools.cache
def _libyaml_loader() -> type[yaml.CSafeLoader] | None:
    """`yaml.CSafeLoader`, if PyYAML has libyaml and that libyaml refuses nesting deeper than
    1,000 levels (its composer recurses in C for every level, so an older libyaml would let a
    file of 100,000 `[` overflow the stack); otherwise None."""
    loader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return None
    for deep in ("[" * 1001 + "]" * 1001, "- " * 1001 + "x"):
        try:
            yaml.compose(deep, Loader=loader)
        except yaml.MarkedYAMLError as exc:
            if "nesting depth" in (exc.problem or ""):
                continue
        return None
    return loader


def _nested_too_deep(root: yaml.Node) -> bool:
    """Whether the document nests deeper than MAX_DEPTH as written, counting an alias where it
    stands rather than what it expands to: the check `_Loader.compose_node` makes.

    Walks the collections without recursion and in document order, so the first visit of a
    node is where it is written (its anchor) and any later visit is an alias."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            continue
        if children and depth + 1 > MAX_DEPTH:
            return True
        stack.extend(
            (child, depth + 1)
            for child in reversed(children)
            if isinstance(child, yaml.CollectionNode)
        )
    return False


def _build(
    loader: _AnyLoader,
    node: yaml.Node,
    path: str,
    lines: LineMap,
    depth: int,
    source: str,
    budget: _Budget,
) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"nesting deeper than {MAX_DEPTH} levels",
            file=source,
            line=node.start_mark.line + 1,
            key=path,
        )
    if id(node) in budget.seen:  # reached again: through an alias
        budget.aliased += 1
        if budget.aliased > MAX_ALIAS_NODES:
            raise ConfigError(
                f"aliases (*name) expand to more than {MAX_ALIAS_NODES:,} values (a YAML alias "
                "bomb?); write the values out instead of repeating anchors",
                file=source,
                line=node.start_mark.line + 1,
                key=path,
            )
    else:
        budget.seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, path, source)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "keys must be plain scalars", file=source, line=key_node.start_mark.line + 1
                )
            key_path = f"{path}.{key}" if path else str(key)
            lines[key_path] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, key_path, lines, depth + 1, source, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            item_path = f"{path}[{index}]"
            lines[item_path] = item_node.start_mark.line + 1
            items.append(_build(loader, item_node, item_path, lines, depth + 1, source, budget))
        return items
    return _construct(loader, node, path, source)


def _construct(loader: _AnyLoader, node: yaml.Node, path: str, source: str) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a date that does not exist, such as 2024-13-45
        raise ConfigError(
            f"invalid value: {exc}", file=source, line=node.start_mark.line + 1, key=path
        ) from exc


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
