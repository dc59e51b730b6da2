"""Compiles watchlists into one matcher and matches article fields against it. Pure.

All literal terms of all watchlists (with their transliterations and inflected stems, see
`translit.expand_term`) go into ONE Aho-Corasick automaton searched over the skeleton of each
field (`text.fold`), so the cost per article barely depends on the number of terms. `/regex/`
terms are few and run separately on the `normalize`d text (wrapped in word boundaries, and
rejected at compile time when a repeated group repeats again, the classic catastrophic
backtracking shape). Match rules are parsed and evaluated by `rules.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import ahocorasick

from daemon import text, translit
from daemon.errors import ConfigError
from daemon.models import Hit, Match, Watchlist
from daemon.rules import Facts, RuleNode, RuleSyntaxError, evaluate, group_names, parse_rule, trace

EXCLUDE = "exclude"  # Hit.group of exclude hits
MAX_REGEX_CHARS = 500
_GROUP_OPENER_RE = re.compile(r"\((?:\?(?::|P<\w+>))?")
_LITERAL_BRANCH_RE = re.compile(r"[^\\.\[\](){}*+?|^$]+")
# A pattern whose first element repeats (\w+grad, [a-z]+ville, (ed|ing)+x) is retried from every
# position inside a long word: quadratic on a hostile 5 MB "word". A left word boundary makes
# those starts fail at once. Patterns opening with a literal keep sre's fast prefix scan instead.
_FIRST_ATOM_REPEATS_RE = re.compile(r"(?:\\.|\[\^?\]?[^\]]*\]|[^\\\[(|)])[*+{]")


def _nested_quantifier(pattern: str) -> tuple[str, bool] | None:
    """The first `(...)+`-style group that can backtrack exponentially, and whether it does so
    as a choice: one that repeats a repetition, or that repeats a choice between branches that
    may match the same text (`(a|aa)+`); a choice between words starting with different letters
    (`(ed|ing)+`) is safe."""
    repeats, opens, choices = [False], [0], [False]
    for i in _syntax_positions(pattern):
        c = pattern[i]
        if c == "(":
            repeats.append(False)
            choices.append(False)
            opens.append(i)
        elif c == "|":
            choices[-1] = True
        elif c == ")" and len(repeats) > 1:
            inner, choice, start = repeats.pop(), choices.pop(), opens.pop()
            quantified = pattern[i + 1 : i + 2] in ("*", "+", "{")
            if quantified and inner:
                return pattern[start : i + 2], False
            if quantified and choice and not _distinct_words(pattern[start:i]):
                return pattern[start : i + 2], True
            repeats[-1] = repeats[-1] or inner or quantified
        elif c in "*+" or (c == "{" and re.match(r"\{\d*,?\d*\}", pattern[i:])):
            repeats[-1] = True
    return None


def _leading_repeat(pattern: str) -> bool:
    """Whether the pattern's first element (an atom, or a group opened at the very start)
    is repeated with *, + or {}."""
    openers = re.match(r"(?:\((?:\?(?::|P<\w+>))?)*", pattern)
    end = openers.end() if openers else 0
    for start in (m.start() for m in re.finditer(r"\(", pattern[:end])):
        close = _closing_paren(pattern, start)
        if close is not None and pattern[close + 1 : close + 2] in ("*", "+", "{"):
            return True
    return _FIRST_ATOM_REPEATS_RE.match(pattern, end) is not None


def _syntax_positions(pattern: str, start: int = 0) -> Iterator[int]:
    """Indices of the characters that are regex syntax: those outside escapes and [classes]
    (the one scan both regex checks need)."""
    i, in_class = start, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 2 if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]" else 0
        else:
            yield i
        i += 1


def _closing_paren(pattern: str, start: int) -> int | None:
    depth = 0
    for i in _syntax_positions(pattern, start):
        if pattern[i] == "(":
            depth += 1
        elif pattern[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _distinct_words(group: str) -> bool:
    """Whether `(a|b|...` (without its `)`) chooses between plain words with distinct first
    letters, so that repeating it never has two ways to match the same text."""
    opener = _GROUP_OPENER_RE.match(group)
    branches = group[opener.end() if opener else 1 :].split("|")
    if not all(_LITERAL_BRANCH_RE.fullmatch(branch) for branch in branches):
        return False
    firsts = [branch[0].casefold() for branch in branches]
    return len(set(firsts)) == len(firsts)


def _compile_regex(body: str) -> re.Pattern[str]:
    if len(body) > MAX_REGEX_CHARS:
        raise ValueError(f"is longer than {MAX_REGEX_CHARS} characters; split it into terms")
    try:
        compiled = re.compile(body)
    except re.error as exc:
        raise ValueError(
            f"is not a valid regular expression: {exc}. Fix the pattern (Python re syntax) "
            "or remove the slashes to match it as plain text"
        ) from exc
    nested = _nested_quantifier(body)
    if nested and nested[1]:
        raise ValueError(
            f"repeats a choice {nested[0]!r} whose branches can match the same text, which can "
            "take exponential time on some texts; use branches that are plain words starting "
            "with different letters (e.g. '(ed|ing)+'), or a character class ('[ab]+')"
        )
    if nested:
        raise ValueError(
            f"repeats a repeated group {nested[0]!r}, which can take exponential time on some "
            "texts; rewrite it without nesting + or * (e.g. '(ab)+' rather than '(a+b)+')"
        )
    if _leading_repeat(body):
        return re.compile(rf"(?<!\w)(?:{body})")  # the same matches: hits must start a word
    return compiled


@dataclass(frozen=True, slots=True)
class _Entry:
    watchlist: int
    group: str
    canonical: str
    endings: frozenset[str] | None  # None: prefix term, any continuation
    punctuation: frozenset[int]  # what may stand between the words of a phrase


# Per automaton key: its length, whether it is a phrase, its entries, and every word ending any
# of them accepts (None: one is a prefix term), to drop most hits before looking at entries.
_Payload = tuple[int, bool, tuple[_Entry, ...], frozenset[str] | None]


def _endings(entries: Iterable[_Entry]) -> frozenset[str] | None:
    accepted: set[str] = set()
    for entry in entries:
        if entry.endings is None:
            return None
        accepted |= entry.endings
    return frozenset(accepted)


@dataclass(frozen=True, slots=True)
class _RegexTerm:
    watchlist: int
    group: str
    canonical: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a watchlist did or did not match an article (for `vedette explain`)."""

    watchlist: str
    matched: bool
    hits: tuple[Hit, ...]
    excluded_by: tuple[Hit, ...]
    rule: str
    rule_trace: str
    reason: str
    scoped_out: bool


def compile_watchlists(watchlists: Sequence[Watchlist]) -> Matcher:
    """Build one Matcher for all watchlists.

    Raises ConfigError(key=...) naming the watchlist and key at fault; the loader adds file/line.
    """
    keys: dict[str, dict[_Entry, None]] = {}
    regexes: list[_RegexTerm] = []
    rules: list[RuleNode] = []
    for index, wl in enumerate(watchlists):
        rules.append(_compile_rule(wl))
        sections = [(f"terms.{g}", g, specs) for g, specs in wl.groups.items()]
        for key, group, specs in [*sections, ("exclude", EXCLUDE, wl.exclude)]:
            for spec in specs:
                for pattern in spec.patterns:
                    where = f"watchlist '{wl.name}': term {pattern!r}"
                    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
                        try:
                            compiled = _compile_regex(pattern[1:-1])
                        except ValueError as exc:
                            raise ConfigError(f"{where} {exc}", key=key) from exc
                        regexes.append(_RegexTerm(index, group, spec.canonical, compiled))
                        continue
                    if "*" in pattern.rstrip("*") or pattern.endswith("**"):
                        raise ConfigError(
                            f"{where}: '*' may only end a term (a word prefix, e.g. 'Bakhmut*'); "
                            "use /regex/ for anything else",
                            key=key,
                        )
                    expanded = translit.expand_term(pattern)
                    if not expanded:
                        raise ConfigError(f"{where} has no letters or digits; remove it", key=key)
                    marks = text.punctuation(pattern.rstrip("*"))
                    for skel, endings in expanded:
                        entry = _Entry(index, group, spec.canonical, endings, marks)
                        keys.setdefault(skel, {})[entry] = None
    return Matcher(tuple(watchlists), tuple(rules), keys, tuple(regexes))


def _compile_rule(wl: Watchlist) -> RuleNode:
    groups = list(wl.groups)
    if wl.rule is None:
        if not groups:
            return RuleNode("or")
        node = RuleNode("group", name=groups[0])
        for name in groups[1:]:
            node = RuleNode("or", (node, RuleNode("group", name=name)))
        return node
    try:
        node = parse_rule(wl.rule)
    except RuleSyntaxError as exc:
        raise ConfigError(
            f"watchlist '{wl.name}': cannot parse match rule {wl.rule!r}: {exc}. Join group "
            "names with and / or / not / ( ) / near/N, e.g. 'places and (units or keywords)'",
            key="match",
        ) from exc
    unknown = [n for n in group_names(node) if n not in wl.groups]
    if unknown:
        valid = ", ".join(groups) or "(none: add groups under terms)"
        raise ConfigError(
            f"watchlist '{wl.name}': match rule names unknown group {unknown[0]!r}; the groups "
            f"under terms are: {valid}. Fix the name in match or add the group under terms",
            key="match",
        )
    return node


class Matcher:
    """Compiled watchlists: `match` an article's fields, or `explain` one list's decision."""

    def __init__(
        self,
        watchlists: tuple[Watchlist, ...],
        rules: tuple[RuleNode, ...],
        keys: Mapping[str, Mapping[_Entry, None]],
        regexes: tuple[_RegexTerm, ...],
    ) -> None:
        self.watchlists = watchlists
        self._rules = rules
        self._regexes = regexes
        self._scoped = any(wl.feeds for wl in watchlists)
        self._wanting: dict[str, frozenset[int]] = {}
        for index, wl in enumerate(watchlists):
            for field in wl.fields:
                self._wanting[field] = self._wanting.get(field, frozenset()) | {index}
        self._field_order = {field: n for n, field in enumerate(self._wanting)}
        self._payloads: list[_Payload] = []
        self._automaton = ahocorasick.Automaton()
        for skel, entries in keys.items():
            self._automaton.add_word(skel, len(self._payloads))
            self._payloads.append((len(skel), " " in skel[1:], tuple(entries), _endings(entries)))
        if self._payloads:
            self._automaton.make_automaton()

    def _in_scope(self, wl: Watchlist, feed_name: str, feed_tags: Sequence[str]) -> bool:
        return not wl.feeds or feed_name in wl.feeds or any(t in wl.feeds for t in feed_tags)

    def _field_hits(
        self, field: str, original: str, wanted: frozenset[int]
    ) -> list[tuple[int, Hit]]:
        """(watchlist index, hit) for every term of the wanted lists found in one field."""
        found: dict[tuple[int, Hit], None] = {}
        if self._payloads:
            folded = text.fold(original)
            skel = folded.skeleton
            payloads, size = self._payloads, len(skel)
            for end, index in self._automaton.iter(skel):
                length, phrase, entries, endings = payloads[index]
                # The skeleton is words joined by single spaces, so the key's word ends at the
                # next space (a plain find: this loop runs for every automaton hit).
                stop = skel.find(" ", end + 1)
                stop = size if stop < 0 else stop
                rest = skel[end + 1 : stop]
                if endings is not None and rest not in endings:
                    continue  # most hits with many terms: a stem in another word (как, Кака)
                start = end + 2 - length  # after the key's leading space
                marks = folded.punctuation(start, stop) if phrase else b""
                for entry in entries:
                    if entry.watchlist not in wanted:
                        continue
                    if entry.endings is not None and rest not in entry.endings:
                        continue
                    if marks and not entry.punctuation.issuperset(marks):
                        continue
                    a, b = folded.span(start, stop)
                    hit = Hit(field, a, b, original[a:b], entry.canonical, entry.group)
                    found[(entry.watchlist, hit)] = None
        regexes = [r for r in self._regexes if r.watchlist in wanted]
        if regexes:
            normalized = text.normalize_mapped(original)
            for term in regexes:
                norm = normalized.text
                for m in term.pattern.finditer(norm):
                    left, right = m.span()  # whole words only, checked here: the search stays fast
                    if (
                        right > left
                        and (left == 0 or not _is_word(norm[left - 1]))
                        and (right == len(norm) or not _is_word(norm[right]))
                    ):
                        a, b = normalized.span(m.start(), m.end())
                        hit = Hit(field, a, b, original[a:b], term.canonical, term.group)
                        found[(term.watchlist, hit)] = None
        return list(found)

    def _hits(self, fields: Mapping[str, str], indexes: Sequence[int]) -> dict[int, list[Hit]]:
        """Hits per watchlist index (only lists with hits), for the lists in `indexes`."""
        by_list: dict[int, list[Hit]] = {}
        everyone = len(indexes) == len(self.watchlists)
        for field, wanting in self._wanting.items():
            wanted = wanting if everyone else wanting.intersection(indexes)
            if wanted and fields.get(field):
                for index, hit in self._field_hits(field, fields[field], wanted):
                    by_list.setdefault(index, []).append(hit)
        for hits in by_list.values():
            hits.sort(key=lambda h: (self._field_order[h.field], h.start, -h.end, h.term, h.group))
            hits[:] = _drop_contained(hits)
        return by_list

    def match(
        self, fields: Mapping[str, str], *, feed_name: str = "", feed_tags: Sequence[str] = ()
    ) -> list[Match]:
        """One Match per watchlist whose rule holds and whose excludes did not fire."""
        indexes: Sequence[int] = range(len(self.watchlists))
        if self._scoped:
            indexes = [
                i
                for i, wl in enumerate(self.watchlists)
                if self._in_scope(wl, feed_name, feed_tags)
            ]
        matches = []
        for index, hits in sorted(self._hits(fields, indexes).items()):
            if any(h.group == EXCLUDE for h in hits):
                continue
            if evaluate(self._rules[index], Facts(hits, fields)):
                terms = tuple(sorted({h.term for h in hits}))
                matches.append(Match(self.watchlists[index].name, terms, tuple(hits)))
        return matches

    def explain(
        self,
        watchlist_name: str,
        fields: Mapping[str, str],
        *,
        feed_name: str = "",
        feed_tags: Sequence[str] = (),
    ) -> Explanation:
        """Which words matched where, which rule decided, what an exclude suppressed."""
        names = [wl.name for wl in self.watchlists]
        if watchlist_name not in names:
            known = ", ".join(names) or "(none loaded)"
            raise ValueError(f"unknown watchlist {watchlist_name!r}; known watchlists: {known}")
        index = names.index(watchlist_name)
        wl = self.watchlists[index]
        rule = wl.rule if wl.rule is not None else " or ".join(wl.groups) or "(no groups)"
        all_hits = self._hits(fields, [index]).get(index, [])
        hits = tuple(h for h in all_hits if h.group != EXCLUDE)
        excluded = tuple(h for h in all_hits if h.group == EXCLUDE)
        facts = Facts(hits, fields)
        value = evaluate(self._rules[index], facts)
        rule_trace = f"{trace(self._rules[index], facts)} -> {str(value).lower()}"
        scoped_out = not self._in_scope(wl, feed_name, feed_tags)
        if scoped_out:
            tags = ", ".join(feed_tags) or "none"
            reason = f"feed {feed_name!r} (tags: {tags}) is not in feeds: {', '.join(wl.feeds)}"
        elif excluded:
            first = excluded[0]
            reason = f"excluded by {first.text!r} ({first.term}) in {first.field}"
        elif not hits:
            reason = "no term matched"
        else:
            reason = "the rule holds" if value else "terms matched but the rule does not hold"
        matched = value and bool(hits) and not excluded and not scoped_out
        return Explanation(wl.name, matched, hits, excluded, rule, rule_trace, reason, scoped_out)


def _drop_contained(hits: list[Hit]) -> list[Hit]:
    """Drop a hit inside a longer hit of the same term ("Wagner" inside "PMC Wagner").

    `hits` come sorted by field, start and longest first, so a hit's container always comes
    before it: one pass remembering, per term, the furthest end reached (and the earliest start
    reaching it) decides. Comparing every pair took 76 s for a 5 MB item naming a town 21,000
    times (issue #8)."""
    kept: list[Hit] = []
    reach: dict[tuple[str, str, str], tuple[int, int]] = {}  # term -> (furthest end, its start)
    for hit in hits:
        key = (hit.field, hit.term, hit.group)
        end, start = reach.get(key, (-1, -1))
        if end > hit.end or (end == hit.end and start < hit.start):
            continue  # inside an earlier, longer hit of the same term
        kept.append(hit)
        if hit.end > end:
            reach[key] = (hit.end, hit.start)
    return kept


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"
