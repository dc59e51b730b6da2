"""The watchlist rule language: `places and (units or keywords)`, `not`, parentheses and
`a near/N b`. Parsed by a small recursive-descent parser (no eval) and evaluated over the hits of
one article. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from daemon.models import Hit

_TOKEN_RE = re.compile(r"\s*(?:(\()|(\))|(near/\d+)\b|([A-Za-z0-9_][A-Za-z0-9_-]*)|(\S))", re.I)
_ORIGINAL_WORD_RE = re.compile(r"\w+(?:['’ʼ]\w+)*")


@dataclass(frozen=True, slots=True)
class RuleNode:
    op: str  # group | not | and | or | near
    args: tuple[RuleNode, ...] = ()
    name: str = ""
    distance: int = 0


class RuleSyntaxError(ValueError):
    """A match rule could not be parsed; the message says where."""


def parse_rule(rule: str) -> RuleNode:
    """Parse `a and (b or not c)`, `not a near/5 b`; binding: near, then not, and, or."""
    tokens: list[tuple[str, str, int]] = []
    for m in _TOKEN_RE.finditer(rule):
        kind = ("(", ")", "near", "name", "bad")[m.lastindex - 1 if m.lastindex else 4]
        value = m.group(m.lastindex or 5)
        if kind == "name" and value.lower() in ("and", "or", "not"):
            kind = value.lower()
        tokens.append((kind, value, m.start(m.lastindex or 5) + 1))
    pos = 0

    def peek() -> str:
        return tokens[pos][0] if pos < len(tokens) else "end"

    def fail(expected: str) -> RuleSyntaxError:
        got = f"{tokens[pos][1]!r} at column {tokens[pos][2]}" if pos < len(tokens) else "the end"
        return RuleSyntaxError(f"expected {expected} but found {got}")

    def take(kind: str) -> tuple[str, str, int]:
        nonlocal pos
        if peek() != kind:
            raise fail({"name": "a group name", ")": "')'"}.get(kind, kind))
        pos += 1
        return tokens[pos - 1]

    def parse_binary(op: str, sub: Callable[[], RuleNode]) -> RuleNode:
        nonlocal pos
        node = sub()
        while peek() == op:
            pos += 1
            node = RuleNode(op, (node, sub()))
        return node

    def parse_or() -> RuleNode:
        return parse_binary("or", parse_and)

    def parse_and() -> RuleNode:
        return parse_binary("and", parse_not)

    def parse_not() -> RuleNode:
        nonlocal pos
        if peek() == "not":
            pos += 1
            return RuleNode("not", (parse_not(),))
        return parse_near()

    def parse_near() -> RuleNode:
        node = parse_atom()
        while peek() == "near":
            distance = int(take("near")[1].split("/")[1])
            right = parse_atom()
            if node.op != "group" or right.op != "group":
                raise RuleSyntaxError("near/N joins two group names, e.g. 'places near/5 units'")
            node = RuleNode("near", (node, right), distance=distance)
        return node

    def parse_atom() -> RuleNode:
        nonlocal pos
        if peek() == "(":
            pos += 1
            node = parse_or()
            take(")")
            return node
        return RuleNode("group", name=take("name")[1])

    node = parse_or()
    if pos != len(tokens):
        raise fail("'and', 'or' or the end")
    return node


def group_names(node: RuleNode) -> list[str]:
    return [node.name] if node.op == "group" else [n for a in node.args for n in group_names(a)]


class Facts:
    """What the rule is evaluated against: the hits of one watchlist, by group."""

    def __init__(self, hits: Sequence[Hit], fields: Mapping[str, str]) -> None:
        self.by_group: dict[str, list[Hit]] = {}
        for hit in hits:
            self.by_group.setdefault(hit.group, []).append(hit)
        self._fields = fields
        self._word_starts: dict[str, list[int]] = {}

    def _words(self, hit: Hit) -> tuple[int, int]:
        starts = self._word_starts.get(hit.field)
        if starts is None:
            original = self._fields.get(hit.field, "")
            starts = [m.start() for m in _ORIGINAL_WORD_RE.finditer(original)]
            self._word_starts[hit.field] = starts
        return bisect_right(starts, hit.start) - 1, bisect_right(starts, hit.end - 1) - 1

    def near(self, a: str, b: str, distance: int) -> bool:
        for x in self.by_group.get(a, ()):
            for y in self.by_group.get(b, ()):
                if x.field == y.field:
                    (x0, x1), (y0, y1) = self._words(x), self._words(y)
                    if max(y0 - x1, x0 - y1) <= distance:
                        return True
        return False


def evaluate(node: RuleNode, facts: Facts) -> bool:
    if node.op == "group":
        return node.name in facts.by_group
    if node.op == "not":
        return not evaluate(node.args[0], facts)
    if node.op == "near":
        return facts.near(node.args[0].name, node.args[1].name, node.distance)
    results = (evaluate(a, facts) for a in node.args)
    return all(results) if node.op == "and" else any(results)


def trace(node: RuleNode, facts: Facts, parent: str = "or") -> str:
    """The rule with each group's value: `places=true and (units=false or keywords=true)`."""
    if node.op == "group":
        return f"{node.name}={str(node.name in facts.by_group).lower()}"
    if node.op == "near":
        value = str(evaluate(node, facts)).lower()
        return f"({node.args[0].name} near/{node.distance} {node.args[1].name})={value}"
    if node.op == "not":
        return "not " + trace(node.args[0], facts, "not")
    inner = f" {node.op} ".join(trace(a, facts, node.op) for a in node.args)
    return (
        f"({inner})" if (parent in ("and", "not") and node.op == "or") or parent == "not" else inner
    )


# --- compiling ------------------------------------------------------------------------------
