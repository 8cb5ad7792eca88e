"""Flow patterns: the regular expressions a flow's author writes, matched against what a
contact sends.

A flow pattern is an ``ask`` step's ``expect: {type: regex, pattern: ...}`` or an ``anytime``
handler's ``when: {regex: ...}``. It is matched on the event loop against untrusted text, so
one pattern that backtracks catastrophically (``(a|aa)+b`` against a long run of ``a``)
would stall every conversation of the server. Hence the contract:

- A pattern is compiled once (cached) with the ``regex`` package in its ``re``-compatible
  mode (``regex.V0``), because ``re`` cannot stop a match half-way.
- One match gets :data:`MATCH_BUDGET` seconds. A match that runs out of time is **no
  match** (the step reprompts, the handler does not fire) and is logged once per pattern,
  as a warning on ``convo.flow.patterns``, not once per message.
- A text longer than :data:`MAX_INPUT` characters matches no flow pattern, without trying:
  no SMS or speech result a pattern is written for is that long, and matching only a
  prefix would be wrong (``^\\d+$`` would accept "123" followed by 2,000 letters).
- :func:`backtracking_risk` finds what makes a pattern risky (a quantified group that can
  match the same text in more than one way: ``(a+)+``, ``(a*)*``, ``(a|aa)+``); ``convo
  validate`` warns about it.

The flow engine's own fixed patterns (normalising, e-mail) stay on ``re``: they are written
and reviewed with the code, not by a flow's author.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import regex

__all__ = [
    "MATCH_BUDGET",
    "MAX_INPUT",
    "backtracking_risk",
    "compile_error",
    "fullmatch",
    "search",
]

log = logging.getLogger("convo.flow.patterns")

MATCH_BUDGET = 0.1  # seconds one match of a flow pattern may take; then it is no match
MAX_INPUT = 1000  # characters; a longer text matches no flow pattern

_timed_out: set[tuple[str, bool]] = set()  # (pattern, ignore_case) already logged


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, ignore_case: bool) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.V0 | (regex.IGNORECASE if ignore_case else 0))


def compile_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid flow pattern, or None when it is."""
    try:
        _compiled(pattern, False)
    except regex.error as exc:
        return str(exc)
    return None


def fullmatch(pattern: str, text: str) -> str | None:
    """The text when all of it matches ``pattern`` within the budget, else None.
    Raises ``regex.error`` for an invalid pattern (a flow bug, caught at load)."""
    compiled = _compiled(pattern, False)
    if len(text) > MAX_INPUT:
        return None
    try:
        found = compiled.fullmatch(text, timeout=MATCH_BUDGET)
    except TimeoutError:
        _log_timeout(pattern, False)
        return None
    return found[0] if found else None


def search(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Whether ``pattern`` is found in ``text`` within the budget. Raises ``regex.error``
    for an invalid pattern (a flow bug, caught at load)."""
    compiled = _compiled(pattern, ignore_case)
    if len(text) > MAX_INPUT:
        return False
    try:
        return compiled.search(text, timeout=MATCH_BUDGET) is not None
    except TimeoutError:
        _log_timeout(pattern, ignore_case)
        return False


def _log_timeout(pattern: str, ignore_case: bool) -> None:
    # Once per pattern: a pattern that times out does so on every long message, and one
    # line per message would flood the log exactly when the server is busiest.
    if (pattern, ignore_case) in _timed_out:
        return
    _timed_out.add((pattern, ignore_case))
    log.warning(
        "flow pattern %r ran out of its %.2fs budget; counted as no match "
        "(logged once per pattern)",
        pattern,
        MATCH_BUDGET,
    )


# -- backtracking risk ----------------------------------------------------------------------
#
# A small reader of the pattern's syntax, enough to find quantified groups whose body can
# match one text in several ways. It does not validate (regex does that); what it cannot
# read it takes as "any character", which can only add warnings, never hide an error.

# Characters whose membership in a set is computed; overlaps are looked for among them.
_PROBE = "".join(chr(c) for c in range(0x250))
# After "(?": a name, non-capturing, atomic, lookaround, comment, or inline flags.
_GROUP_HEAD = r"\?(P?<[^>=!]*>|[:>]|<?[=!]|#[^)]*|[a-zA-Z-]+:?)"
_CLASSES: dict[str, Callable[[str], bool]] = {
    "d": str.isdecimal,
    "w": lambda ch: ch.isalnum() or ch == "_",
    "s": str.isspace,
}


@dataclass
class _Node:
    start: int  # offset in the pattern, for the warning's position
    chars: frozenset[str] = frozenset()  # every character the node can consume
    first: frozenset[str] = frozenset()  # the characters it can begin with
    nullable: bool = False  # can match the empty string
    variable: bool = False  # can match texts of different lengths (or one in several ways)
    tail: frozenset[str] = frozenset()  # chars of the variable part it can end with


@dataclass
class _Reader:
    """Reads ``pattern`` from ``i`` on, one construct per method, into :class:`_Node`
    summaries; each risky quantifier met goes into ``risks`` as ``(start, end)``."""

    pattern: str
    ignore_case: bool
    i: int = 0
    risks: list[tuple[int, int]] = field(default_factory=list)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.pattern[j] if j < len(self.pattern) else ""

    def alternation(self) -> _Node:
        start = self.i
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        if len(branches) == 1:
            return branches[0]
        lengths_differ = len({(b.nullable, b.variable) for b in branches}) > 1 or any(
            b.variable for b in branches
        )
        node = _Node(start)
        node.chars = frozenset().union(*(b.chars for b in branches))
        node.first = frozenset().union(*(b.first for b in branches))
        node.nullable = any(b.nullable for b in branches)
        firsts = [b.first for b in branches]
        overlapping = any(
            firsts[a] & firsts[b] for a in range(len(firsts)) for b in range(a + 1, len(firsts))
        )
        node.variable = lengths_differ or overlapping or node.nullable
        node.tail = frozenset().union(*(b.tail for b in branches))
        if node.variable:
            node.tail |= node.chars
        return node

    def sequence(self) -> _Node:
        node = _Node(self.i, nullable=True)
        items: list[_Node] = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified())
        for item in items:
            if node.nullable:
                node.first |= item.first
            node.nullable = node.nullable and item.nullable
            node.chars |= item.chars
            node.variable = node.variable or item.variable
        for item in reversed(items):  # the variable part a match can end with
            node.tail |= item.tail
            if not item.nullable:
                break
        return node

    def quantified(self) -> _Node:
        start = self.i
        atom = self.atom()
        bounds = self.quantifier()
        if bounds is None:
            return atom
        low, high = bounds
        possessive = self.peek() == "+"
        if self.peek() in ("?", "+"):
            self.i += 1  # lazy or possessive
        node = _Node(start, chars=atom.chars, first=atom.first)
        node.nullable = low == 0 or atom.nullable
        if possessive:  # gives nothing back: no backtracking into it
            return node
        node.variable = low != high or atom.variable
        node.tail = atom.tail | (atom.chars if node.variable else frozenset())
        repeats = high is None or high > 9
        if repeats and atom.chars and (atom.nullable or (atom.variable and atom.tail & atom.first)):
            # Each repetition can end where the next begins ((a+)+), or the body can match
            # nothing or something ((a*)*), or one of its alternatives ((a|aa)+): the
            # engine tries every way of cutting the text, exponentially many.
            self.risks.append((start, self.i))
        return node

    def quantifier(self) -> tuple[int, int | None] | None:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        if c == "{":
            found = regex.match(r"\{(\d*)(,?)(\d*)\}", self.pattern[self.i :])
            if found is None or not (found[1] or found[3]):
                return None  # a literal "{"
            self.i += found.end()
            low = int(found[1] or 0)
            high = int(found[3]) if found[3] else (None if found[2] else low)
            return low, high
        return None

    def atom(self) -> _Node:
        start = self.i
        c = self.peek()
        self.i += 1
        if c == "(":
            return self.group(start)
        if c == "[":
            return self._chars(start, self.char_class())
        if c in ("^", "$"):
            return _Node(start, nullable=True)
        if c == ".":
            return self._chars(start, frozenset(_PROBE) - {"\n"})
        if c == "\\":
            return self.escape(start)
        return self._chars(start, self._case({c}))

    def group(self, start: int) -> _Node:
        zero_width = False
        kind = ""
        if self.peek() == "?":
            head = regex.match(_GROUP_HEAD, self.pattern[self.i :])
            kind = head[1] if head else "?"
            self.i += len(kind) + 1 if head else 1
            if kind.startswith("#") or (kind[:1].isalpha() and not kind.endswith(":")):
                if "i" in kind:
                    self.ignore_case = True  # inline flags such as (?i)
                self.i += 1 if self.peek() == ")" else 0
                return _Node(start, nullable=True)
            zero_width = kind.lstrip("<") in ("=", "!")
        body = self.alternation()
        if self.peek() == ")":
            self.i += 1
        if zero_width:  # a lookaround consumes nothing
            return _Node(start, nullable=True)
        if kind == ">":  # an atomic group gives nothing back: no backtracking into it
            return _Node(start, chars=body.chars, first=body.first, nullable=body.nullable)
        return body

    def char_class(self) -> frozenset[str]:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        members: set[str] = set()
        first = True
        while self.peek() and (self.peek() != "]" or first):
            first = False
            c = self.peek()
            self.i += 1
            if c == "\\":
                members |= self._escaped_set()
                continue
            if c == "[" and self.peek() == ":":  # a POSIX class: read as any character
                end = self.pattern.find(":]", self.i)
                self.i = end + 2 if end >= 0 else self.i
                members |= set(_PROBE)
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                high = self.peek()
                self.i += 1
                if high == "\\":
                    high = self.pattern[self.i : self.i + 1]
                    self.i += 1
                members |= {ch for ch in _PROBE if c <= ch <= high}
                continue
            members.add(c)
        self.i += 1  # the closing "]"
        chosen = frozenset(self._case(members))
        return frozenset(_PROBE) - chosen if negate else chosen

    def escape(self, start: int) -> _Node:
        c = self.peek()
        if c in ("b", "B", "A", "Z", "z", "G"):
            self.i += 1
            return _Node(start, nullable=True)
        if (c.isdigit() and c != "0") or c == "g":  # a backreference: any text
            self.i += 1
            node = self._chars(start, frozenset(_PROBE))
            node.nullable = node.variable = True
            node.tail = node.chars
            return node
        return self._chars(start, self._escaped_set())

    def _escaped_set(self) -> set[str]:
        c = self.peek()
        self.i += 1
        if c.lower() in _CLASSES:
            test = _CLASSES[c.lower()]
            return {ch for ch in _PROBE if test(ch) != c.isupper()}
        if c in ("p", "P", "N", "x", "u", "U"):  # \p{L}, \N{...}, \x41: read as any character
            found = regex.match(r"\{[^}]*\}|[0-9a-fA-F]{0,8}", self.pattern[self.i :])
            self.i += found.end() if found else 0
            return set(_PROBE)
        return self._case({c})

    def _case(self, chars: set[str]) -> set[str]:
        if not self.ignore_case:
            return chars
        upper = {c.upper() for c in chars if len(c.upper()) == 1}
        return chars | {c.lower() for c in chars} | upper

    @staticmethod
    def _chars(start: int, chars: frozenset[str] | set[str]) -> _Node:
        frozen = frozenset(chars)
        return _Node(start, chars=frozen, first=frozen)


def backtracking_risk(pattern: str, *, ignore_case: bool = False) -> tuple[int, str] | None:
    """The first quantified part of ``pattern`` that can match one text in several ways,
    as ``(offset, the part)``, or None. Such a part (``(a+)+``, ``(a*)*``, ``(a|aa)+``)
    makes a failing match try exponentially many ways; the time budget stops it, but the
    pattern then never matches long texts. A heuristic: it may warn about a pattern that
    is fine, and reads what it does not know as "any character"."""
    reader = _Reader(pattern, ignore_case)
    try:
        while reader.i < len(pattern):
            reader.alternation()
            reader.i += 1  # a stray ")": regex reports it; read on
    except (IndexError, ValueError):
        return None  # invalid: compile_error says why
    if not reader.risks:
        return None
    start, end = reader.risks[0]
    return start, pattern[start:end]
