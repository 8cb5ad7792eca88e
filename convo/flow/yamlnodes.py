"""Located, typed reading of a YAML node tree: the part of the flow loader that knows YAML
but nothing of flows.

A flow file is read as a node tree (``yaml.compose``), never constructed into plain Python
objects first: nodes keep their line and column, so every problem becomes a
:class:`~convo.exceptions.Diagnostic` at ``file:line:col``, and duplicate keys (which PyYAML's
constructor would silently resolve to the last value) are still visible.

:class:`NodeReader` collects diagnostics instead of raising, so a reader built on it finds
every problem in one pass. It offers:

- reporting (:meth:`~NodeReader.report`, :meth:`~NodeReader.wrong_type`);
- mapping keys: unknown and missing keys, duplicate keys anywhere in the tree;
- typed scalars: texts, booleans, numbers, counts, durations, lists of texts, regexes and
  free-form values. Texts are read leniently (``1`` and ``yes`` are the texts "1" and
  "yes"); where a number or a boolean is expected, the YAML type must match;
- positions inside a scalar (a name inside a template, a line of a block text).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from convo.exceptions import Diagnostic
from convo.flow.durations import parse_duration
from convo.flow.spec import Pos

NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"

#: A mapping's keys: name -> (key node, value node).
Fields = dict[str, tuple[ScalarNode, Node]]


def describe(node: Node) -> str:
    """What a node is, in words, for 'expected X, found Y' messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = node.value if len(node.value) <= 30 else node.value[:29] + "…"
    return {
        NULL: "nothing",
        BOOL: f"true/false ({value})",
        INT: f"a number ({value})",
        FLOAT: f"a number ({value})",
    }.get(node.tag, f"the text {value!r}")


def closest(word: str, choices: Collection[str]) -> str | None:
    """The choice ``word`` was most likely meant to be (a typo), or None."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Collection[str], what: str) -> str:
    """A hint for an unknown ``word``: the closest choice, else ``what: <all choices>``."""
    close = closest(word, choices)
    if close:
        return f"did you mean {close!r}?"
    return f"{what}: {', '.join(choices)}" if choices else ""


def as_scalar(node: Node) -> ScalarNode:
    """``node`` as a scalar; only called where :meth:`NodeReader.string` accepted it."""
    assert isinstance(node, ScalarNode)
    return node


class NodeReader:
    """Typed, located reading of one file's YAML node tree into :attr:`diagnostics`.

    Every reading method takes the node and ``what`` (where it is, for messages, e.g.
    ``steps.greet.ask.text``); on a wrong node it reports and returns None instead of
    raising."""

    #: Keys that belong somewhere else: key -> (message, hint), said instead of "unknown key".
    misplaced: Mapping[str, tuple[str, str]] = {}

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.source_text = text
        self.diagnostics: list[Diagnostic] = []
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._constructor = yaml.SafeLoader("")  # only for typed scalars and free values

    # -- reporting ----------------------------------------------------------------------

    def pos(self, node: Node) -> Pos:
        return Pos(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def report(
        self, node: Node | None, message: str, hint: str = "", *, warning: bool = False
    ) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.report_at(line, col, message, hint, warning=warning)

    def report_at(
        self, line: int, col: int, message: str, hint: str = "", *, warning: bool = False
    ) -> None:
        severity = "warning" if warning else "error"
        self.diagnostics.append(Diagnostic(self.name, line, col, message, hint, severity))

    def wrong_type(self, node: Node, what: str, expected: str) -> None:
        self.report(node, f"{what}: expected {expected}, found {describe(node)}")

    # -- mappings -----------------------------------------------------------------------

    def report_duplicate_keys(self, node: Node, seen: set[int]) -> None:
        """Report every duplicate mapping key in the tree (PyYAML keeps the last silently)."""
        if id(node) in seen:  # an alias: already walked
            return
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[str, ScalarNode] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    if key.value in first:
                        earlier = first[key.value].start_mark.line + 1
                        self.report(
                            key,
                            f"duplicate key {key.value!r} (first at line {earlier})",
                            "YAML would silently keep only the last one: remove or rename one",
                        )
                    else:
                        first[key.value] = key
                self.report_duplicate_keys(value, seen)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                self.report_duplicate_keys(item, seen)

    def fields(
        self,
        node: Node,
        what: str,
        allowed: Sequence[str] | None,
        required: Sequence[str] = (),
    ) -> Fields | None:
        """The keys of mapping ``node`` (first of duplicates). Unknown keys (when
        ``allowed`` is given) and missing ``required`` keys are reported."""
        if not isinstance(node, MappingNode):
            self.wrong_type(node, what, "a mapping")
            return None
        out: Fields = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.wrong_type(key, f"{what} key", "a name")
            elif allowed is not None and key.value not in allowed:
                self.unknown_key(key, what, allowed)
            else:
                out.setdefault(key.value, (key, value))
        for name in required:
            if name not in out:
                self.report(node, f"{what}: missing required key {name!r}")
        return out

    def unknown_key(self, key: ScalarNode, what: str, allowed: Sequence[str]) -> None:
        word = key.value
        if word in self.misplaced:
            self.report(key, *self.misplaced[word])
            return
        hint = did_you_mean(word, allowed, "allowed keys")
        self.report(key, f"unknown key {word!r} in {what}", hint)

    # -- scalars ------------------------------------------------------------------------

    def string(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag != NULL:
            return str(node.value)
        self.wrong_type(node, what, "a text")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            return bool(self._constructor.construct_yaml_bool(node))
        self.wrong_type(node, what, "true or false")
        return None

    def number(self, node: Node, what: str, *, integer: bool = False) -> float | None:
        tags = (INT,) if integer else (INT, FLOAT)
        if isinstance(node, ScalarNode) and node.tag in tags:
            if node.tag == INT:
                return int(self._constructor.construct_yaml_int(node))
            return float(self._constructor.construct_yaml_float(node))
        self.wrong_type(node, what, "a whole number" if integer else "a number")
        return None

    def count(self, node: Node, what: str) -> int | None:
        value = self.number(node, what, integer=True)
        if value is not None and value < 1:
            self.report(node, f"{what}: must be 1 or more, found {int(value)}")
            return None
        return None if value is None else int(value)

    def duration(self, node: Node, what: str) -> float | None:
        if not isinstance(node, ScalarNode) or node.tag in (NULL, BOOL):
            self.wrong_type(node, what, "a duration (seconds, 90s, 30m, 24h, 2d)")
            return None
        value: object = node.value
        if node.tag in (INT, FLOAT):
            value = self.number(node, what)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.report(node, f"{what}: {exc}")
            return None
        if seconds == 0:
            self.report(node, f"{what}: must be longer than 0 seconds")
            return None
        return seconds

    def strings(self, node: Node, what: str) -> list[tuple[str, ScalarNode]]:
        """A list of texts; a single text counts as a list of one."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        out: list[tuple[str, ScalarNode]] = []
        for item in items:
            value = self.string(item, f"{what} entry" if item is not node else what)
            if value is not None:
                assert isinstance(item, ScalarNode)
                out.append((value, item))
        return out

    def regex(self, node: Node, what: str) -> str | None:
        pattern = self.string(node, what)
        if pattern is None:
            return None
        try:
            re.compile(pattern)
        except re.error as exc:
            self.report(node, f"{what}: invalid regular expression: {exc}")
            return None
        return pattern

    def plain(self, node: Node) -> Any:
        """A free-form value (param default/example) as plain Python data."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # an unknown !tag: report it, keep reading
            self.report(node, f"cannot read this value: {getattr(exc, 'problem', None) or exc}")
            return None

    # -- positions inside scalars -------------------------------------------------------

    def _offset_to_pos(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    def find(self, node: ScalarNode, needle: str) -> tuple[int, int]:
        """Where ``needle`` first appears inside a Jinja2 tag of ``node``'s text in the
        file; the node's own position when it cannot be found (escapes, folding)."""
        span = self.source_text[node.start_mark.index : node.end_mark.index]
        word = r"(?<![\w.])(" + re.escape(needle) + r")(?!\w)"
        found = re.search(r"(?:\{\{|\{%)[^}]*?" + word, span, re.DOTALL) or re.search(word, span)
        if found is None:
            return node.start_mark.line + 1, node.start_mark.column + 1
        return self._offset_to_pos(node.start_mark.index + found.start(1))

    def template_line(self, node: ScalarNode, template_line: int) -> tuple[int, int]:
        """The file position of line ``template_line`` (1-based) of ``node``'s text."""
        first = node.start_mark.line + (1 if node.style in ("|", ">") else 0)
        line = min(first + template_line - 1, node.end_mark.line)
        if line == node.start_mark.line:
            return line + 1, node.start_mark.column + 1
        raw = self.source_text[self._line_starts[line] :].split("\n", 1)[0]
        return line + 1, len(raw) - len(raw.lstrip()) + 1
