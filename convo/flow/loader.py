"""Flow files (YAML) -> :class:`~convo.flow.spec.FlowSpec`, with every error found at once.

A flow file is read as a YAML *node tree* (``yaml.compose``), never constructed into plain
Python objects first: nodes keep their line and column, so every problem is reported as
``file:line:col: message`` with a hint, and duplicate keys (which PyYAML's constructor would
silently resolve to the last value) are still visible.

Reading never stops at the first problem. :class:`_FlowReader` walks the whole tree, fills in
placeholders where a part is broken, and collects :class:`~convo.exceptions.Diagnostic`
values; the cross-checks that need the whole file (unknown and unreachable steps, templates
and their variables, hooks) run after the walk. A spec is only built when no error was found.

Scalars are read leniently where the flow language expects text: ``key: 1``, ``words: [yes]``
and a language called ``no`` are the texts "1", "yes" and "no", not YAML 1.1 numbers and
booleans (the "Norway problem"). Where the language expects a number or a boolean, the YAML
type must match.

Public API: :func:`check_flow` (spec or None, plus all diagnostics), :func:`load_flow`,
:func:`load_flow_text`, :func:`load_flows`, :func:`discover` and :func:`parse_duration`.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from convo.exceptions import Diagnostic, FlowError
from convo.flow.spec import (
    BUILTIN_ACTIONS,
    EXPECT_KINDS,
    Anytime,
    Ask,
    Branch,
    Choice,
    Choose,
    Conference,
    Dial,
    Expect,
    ExpectKind,
    FlowSpec,
    Handoff,
    Hangup,
    HookCall,
    Option,
    Param,
    Pos,
    Record,
    Retry,
    Say,
    Step,
    Text,
    Verb,
    VoiceLang,
)
from convo.flow.templates import TEMPLATES

log = logging.getLogger("convo.flow")

TOP_KEYS = (
    "flow", "description", "languages", "channels", "start", "voice", "params", "slots",
    "error_text", "anytime", "steps",
)  # fmt: skip
MAIN_VERBS = ("say", "ask", "choose", "handoff", "dial", "record", "conference", "hangup")
VOICE_VERBS = ("dial", "record", "conference", "hangup")
STEP_KEYS = (*MAIN_VERBS, "do", "then", "goto", "end", "media")
RETRY_KEYS = (
    "reprompt", "max_attempts", "on_max_attempts", "timeout", "on_timeout", "gather_timeout",
)  # fmt: skip
ASK_KEYS = ("text", "expect", "save_as", "validate", "invalid", *RETRY_KEYS)
CHOOSE_KEYS = ("text", "options", "save_as", *RETRY_KEYS)
EXPECT_KEYS = ("type", "pattern", "choices", "min", "max", "length")
OPTION_KEYS = ("key", "words", "goto", "set_lang", "value")
DIAL_KEYS = ("to", "timeout", "on_fail", "caller_id", "time_limit", "say")
RECORD_KEYS = ("text", "say", "max", "save_as", "consent", "finish_on_key", "beep")
CONFERENCE_KEYS = ("room", "record", "say", "start_on_enter", "end_on_exit", "muted")
CHANNELS = ("sms", "voice")
PARAM_TYPES = ("text", "number", "date", "phone", "bool")
CONTEXT_NAMES = frozenset({"contact", "params", "slots", "lang"})

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

# Which expect options apply to which type, and which a type cannot do without.
_EXPECT_OPTIONS = {"regex": ("pattern",), "choice": ("choices",), "number": ("min", "max"),
                   "digits": ("length",)}  # fmt: skip
_EXPECT_NEEDS = {"regex": ("pattern",), "choice": ("choices",)}

T = TypeVar("T")

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?\s*[smhd]\s*)+", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})


# -- small public helpers -------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``1.5``, ``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"2d"`` or
    ``"1h30m"``. Raises ValueError (saying what is accepted) for anything else, including
    negative, infinite and boolean values."""
    seconds: float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"bad duration {value!r}: use seconds or e.g. 90s, 30m, 24h, 2d, 1h30m")
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(
                    f"bad duration {value!r}: use seconds or e.g. 90s, 30m, 24h, 2d, 1h30m"
                ) from None
            parts = _DURATION_PART.findall(text)
            seconds = sum(float(n) * _UNITS[unit.lower()] for n, unit in parts)
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad duration {value!r}: must be a finite, non-negative time")
    return seconds


def _is_test_file(path: Path) -> bool:
    name = path.name
    return name.endswith((".test.yaml", ".test.yml")) or name.startswith("test_")


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Flow files in ``paths``: each file as given, and ``*.yaml`` / ``*.yml`` found
    recursively in each directory (hidden directories and ``__pycache__`` skipped).
    Conversation-test files (``*.test.yaml``, ``*.test.yml``, ``test_*``) are left out.
    A path that does not exist is kept, so that loading it reports the problem."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not any(
                    part.startswith(".") or part in _SKIP_DIRS
                    for part in p.relative_to(path).parts[:-1]
                )
            )
        else:
            candidates = [path]
        found.extend(p for p in candidates if not _is_test_file(p))
    return list(dict.fromkeys(found))


def check_flow(
    path: str | Path, *, hooks: Collection[str] | None = None
) -> tuple[FlowSpec | None, list[Diagnostic]]:
    """Read and check one flow file. Returns ``(spec, diagnostics)``: every error and
    warning found, sorted by position; ``spec`` is None when there is any error. Never
    raises for a bad file (unreadable, not UTF-8, bad YAML, bad flow): all become
    diagnostics. ``hooks``: the bot's hook names; None leaves them unchecked (one warning)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [Diagnostic(name, 1, 1, f"cannot read flow file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Diagnostic(name, line, 1, "flow file is not UTF-8 text")]
    return _check(text, name, data, hooks)


def load_flow(path: str | Path, *, hooks: Collection[str] | None = None) -> FlowSpec:
    """Load one flow file. Raises FlowError carrying every error; warnings are logged."""
    spec, diagnostics = check_flow(path, hooks=hooks)
    return _spec_or_raise(spec, diagnostics)


def load_flow_text(
    text: str, name: str = "<string>", *, hooks: Collection[str] | None = None
) -> FlowSpec:
    """Like :func:`load_flow`, from YAML text; ``name`` stands for the file in messages."""
    spec, diagnostics = _check(text, name, text.encode("utf-8"), hooks)
    return _spec_or_raise(spec, diagnostics)


def load_flows(
    paths: Sequence[str | Path], *, hooks: Collection[str] | None = None
) -> dict[str, FlowSpec]:
    """Every flow file in ``paths`` (see :func:`discover`), by flow id. Raises one FlowError
    with the errors of all files; two files with the same flow id are an error."""
    specs: dict[str, FlowSpec] = {}
    errors: list[Diagnostic] = []
    for path in discover(paths):
        spec, diagnostics = check_flow(path, hooks=hooks)
        _log_warnings(diagnostics)
        errors.extend(d for d in diagnostics if d.severity == "error")
        if spec is None:
            continue
        if spec.id in specs:
            first = specs[spec.id]
            errors.append(
                Diagnostic(
                    spec.path,
                    spec.pos.line,
                    spec.pos.col,
                    f"flow id {spec.id!r} is used by both {first.path} and {spec.path}",
                    hint="give each flow file its own flow: id",
                )
            )
            continue
        specs[spec.id] = spec
    if errors:
        raise FlowError(errors)
    return specs


def _spec_or_raise(spec: FlowSpec | None, diagnostics: list[Diagnostic]) -> FlowSpec:
    _log_warnings(diagnostics)
    if spec is None:
        raise FlowError([d for d in diagnostics if d.severity == "error"])
    return spec


def _log_warnings(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        if d.severity == "warning":
            log.warning("%s", d)


def _check(
    text: str, name: str, data: bytes, hooks: Collection[str] | None
) -> tuple[FlowSpec | None, list[Diagnostic]]:
    reader = _FlowReader(name, text, hashlib.sha256(data).hexdigest()[:12], hooks)
    spec = reader.read()
    diagnostics = sorted(reader.diagnostics, key=lambda d: (d.line, d.col))
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    return spec, diagnostics


# -- node helpers ---------------------------------------------------------------------------


def _describe(node: Node) -> str:
    """What a node is, in words, for 'expected X, found Y' messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = node.value if len(node.value) <= 30 else node.value[:29] + "…"
    return {
        _NULL: "nothing",
        _BOOL: f"true/false ({value})",
        _INT: f"a number ({value})",
        _FLOAT: f"a number ({value})",
    }.get(node.tag, f"the text {value!r}")


def _closest(word: str, choices: Collection[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(word: str, choices: Collection[str], what: str) -> str:
    close = _closest(word, choices)
    if close:
        return f"did you mean {close!r}?"
    return f"{what}: {', '.join(choices)}" if choices else ""


Fields = dict[str, tuple[ScalarNode, Node]]


# -- the reader -----------------------------------------------------------------------------


class _NodeReader:
    """Typed, located reading of a YAML node tree into diagnostics: the part of the loader
    that knows YAML but nothing of flows (a candidate module of its own)."""

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
        self.report(node, f"{what}: expected {expected}, found {_describe(node)}")

    # -- mappings -----------------------------------------------------------------------

    def _duplicates(self, node: Node, seen: set[int]) -> None:
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
                self._duplicates(value, seen)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                self._duplicates(item, seen)

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
        hint = _did_you_mean(word, allowed, "allowed keys")
        self.report(key, f"unknown key {word!r} in {what}", hint)

    # -- scalars ------------------------------------------------------------------------

    def string(self, node: Node, what: str) -> str | None:
        if isinstance(node, ScalarNode) and node.tag != _NULL:
            return str(node.value)
        self.wrong_type(node, what, "a text")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            return bool(self._constructor.construct_yaml_bool(node))
        self.wrong_type(node, what, "true or false")
        return None

    def number(self, node: Node, what: str, *, integer: bool = False) -> float | None:
        tags = (_INT,) if integer else (_INT, _FLOAT)
        if isinstance(node, ScalarNode) and node.tag in tags:
            if node.tag == _INT:
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
        if not isinstance(node, ScalarNode) or node.tag in (_NULL, _BOOL):
            self.wrong_type(node, what, "a duration (seconds, 90s, 30m, 24h, 2d)")
            return None
        value: object = node.value
        if node.tag in (_INT, _FLOAT):
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

    def _plain(self, node: Node) -> Any:
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

    def _find(self, node: ScalarNode, needle: str) -> tuple[int, int]:
        """Where ``needle`` first appears inside a Jinja2 tag of ``node``'s text in the
        file; the node's own position when it cannot be found (escapes, folding)."""
        span = self.source_text[node.start_mark.index : node.end_mark.index]
        word = r"(?<![\w.])(" + re.escape(needle) + r")(?!\w)"
        found = re.search(r"(?:\{\{|\{%)[^}]*?" + word, span, re.DOTALL) or re.search(word, span)
        if found is None:
            return node.start_mark.line + 1, node.start_mark.column + 1
        return self._offset_to_pos(node.start_mark.index + found.start(1))

    def _template_line(self, node: ScalarNode, template_line: int) -> tuple[int, int]:
        """The file position of line ``template_line`` (1-based) of ``node``'s text."""
        first = node.start_mark.line + (1 if node.style in ("|", ">") else 0)
        line = min(first + template_line - 1, node.end_mark.line)
        if line == node.start_mark.line:
            return line + 1, node.start_mark.column + 1
        raw = self.source_text[self._line_starts[line] :].split("\n", 1)[0]
        return line + 1, len(raw) - len(raw.lstrip()) + 1


class _FlowReader(_NodeReader):
    """Walks one flow file's node tree; see the module docstring."""

    misplaced: Mapping[str, tuple[str, str]] = {
        key: (f"{key} is only allowed in ask or choose", "move it under ask: or choose:")
        for key in ("on_max_attempts", "on_timeout")
    }

    def __init__(self, name: str, text: str, version: str, hooks: Collection[str] | None):
        super().__init__(name, text)
        self.version = version
        self.hooks = hooks
        self.languages: tuple[str, ...] = ()
        self.channels: tuple[str, ...] = ("sms",)
        self.params: dict[str, Param] = {}
        self.slot_names: set[str] = set()
        # Collected during the walk, checked after it (they need the whole file):
        self.refs: list[tuple[str, ScalarNode]] = []  # step names used by goto & co
        self.hook_uses: list[tuple[str, ScalarNode]] = []
        self.templates: list[tuple[str, ScalarNode]] = []
        self.expressions: list[tuple[str, ScalarNode]] = []

    # -- references ---------------------------------------------------------------------

    def step_ref(self, node: Node, what: str) -> str | None:
        name = self.string(node, what)
        if name is not None:
            assert isinstance(node, ScalarNode)
            self.refs.append((name, node))
        return name

    def lang_ref(self, node: Node, what: str, *, strict: bool) -> str | None:
        lang = self.string(node, what)
        if lang is not None and self.languages and lang not in self.languages:
            self.report(
                node,
                f"{what}: language {lang!r} is not declared in languages",
                _did_you_mean(lang, self.languages, "declared"),
                warning=not strict,
            )
            return None if strict else lang
        return lang

    def template(self, node: Node, what: str) -> str | None:
        source = self.string(node, what)
        if source is not None:
            assert isinstance(node, ScalarNode)
            self.templates.append((source, node))
        return source

    def slot(self, node: Node, what: str) -> str | None:
        name = self.string(node, what)
        if name is not None:
            self.slot_names.add(name)
        return name

    def hook_calls(self, node: Node, what: str) -> tuple[HookCall, ...]:
        calls = []
        for name, item in self.strings(node, what):
            calls.append(HookCall(name, self.pos(item)))
            if name not in BUILTIN_ACTIONS:
                self.hook_uses.append((name, item))
        return tuple(calls)

    def words(self, node: Node, what: str) -> dict[str, tuple[str, ...]]:
        """``{lang: [words]}``, or a plain list that counts for every declared language."""
        if not isinstance(node, MappingNode):
            words = tuple(w for w, _ in self.strings(node, what))
            return {lang: words for lang in self.languages}
        out: dict[str, tuple[str, ...]] = {}
        for lang, (key, value) in (self.fields(node, what, None) or {}).items():
            self.lang_ref(key, what, strict=False)
            out[lang] = tuple(w for w, _ in self.strings(value, f"{what}.{lang}"))
        return out

    # -- texts --------------------------------------------------------------------------

    def text(self, node: Node, what: str, *, per_channel: bool = True) -> Text:
        """A Text in any of its forms (see convo.flow.spec); broken parts are reported and
        left out."""
        pos = self.pos(node)
        if isinstance(node, SequenceNode):
            return self._mixed(node, what)
        if not isinstance(node, MappingNode):
            return Text(pos, any=self.template(node, what))
        entries = self.fields(node, what, None) or {}
        if per_channel and set(entries) & set(CHANNELS):
            by_channel = {}
            for key, (knode, value) in entries.items():
                if key in CHANNELS:
                    by_channel[key] = self.text(value, f"{what}.{key}", per_channel=False)
                else:
                    self.report(knode, f"{what}: a per-channel text has only sms: and voice:")
            return Text(pos, by_channel=by_channel)
        by_lang: dict[str, str] = {}
        for lang, (knode, value) in entries.items():
            self.lang_ref(knode, what, strict=False)
            source = self.template(value, f"{what}.{lang}")
            if source is not None:
                by_lang[lang] = source
        missing = [lang for lang in self.languages if lang not in entries]
        if missing:
            self.report(
                node,
                f"{what}: missing translation for {', '.join(missing)}",
                f'add {missing[0]}: "..." or use one plain text for every language',
            )
        return Text(pos, by_lang=by_lang)

    def _mixed(self, node: SequenceNode, what: str) -> Text:
        segments = []
        for item in node.value:
            entry = self.fields(item, f"{what} segment", ("lang", "text"), ("lang", "text"))
            if entry and "lang" in entry and "text" in entry:
                lang = self.lang_ref(entry["lang"][1], f"{what} segment lang", strict=True)
                source = self.template(entry["text"][1], f"{what} segment text")
                if lang is not None and source is not None:
                    segments.append((lang, source))
        if not node.value:
            self.report(node, f"{what}: a mixed-language text needs {{lang, text}} segments")
        return Text(self.pos(node), mixed=tuple(segments))

    def reprompts(self, node: Node, what: str) -> tuple[Text, ...]:
        """One Text, or a list of Texts used in turn. A list of ``{lang, text}`` entries is
        one mixed-language text, not several reprompts."""
        if isinstance(node, SequenceNode) and not _is_mixed(node):
            return tuple(self.text(item, f"{what}[{i}]") for i, item in enumerate(node.value))
        return (self.text(node, what),)

    # -- the file -----------------------------------------------------------------------

    def read(self) -> FlowSpec | None:
        try:
            root = yaml.compose(self.source_text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = ", ".join(filter(None, (exc.context, exc.problem))) or "invalid YAML"
            self.report_at(line, col, f"YAML syntax error: {problem}")
            return None
        except yaml.YAMLError as exc:  # reader errors (control characters) have no mark
            self.report_at(1, 1, f"YAML error: {exc}")
            return None
        if root is None:
            self.report_at(1, 1, "empty flow file", "start with flow: ID, languages, start, steps")
            return None
        self._duplicates(root, set())
        if not isinstance(root, MappingNode):
            self.wrong_type(root, "flow file", "a mapping (flow:, languages:, start:, steps:)")
            return None
        return self._flow(root)

    def _flow(self, root: MappingNode) -> FlowSpec | None:
        top = self.fields(root, "flow file", TOP_KEYS, ("flow", "languages", "start", "steps"))
        assert top is not None
        flow_id = self.string(top["flow"][1], "flow") if "flow" in top else None
        if "languages" in top:
            self._languages(top["languages"][1])
        if "channels" in top:
            self._channels(top["channels"][1])
        if "params" in top:
            self._params(top["params"][1])
        if "slots" in top:
            for _, item in self.strings(top["slots"][1], "slots"):
                self.slot(item, "slots")
        description = ""
        if "description" in top:
            description = self.string(top["description"][1], "description") or ""
        voice = self._voice(top["voice"][1]) if "voice" in top else {}
        error_text = self.text(top["error_text"][1], "error_text") if "error_text" in top else None
        anytime = self._anytime(top["anytime"][1]) if "anytime" in top else ()
        steps = self._steps(top["steps"][1]) if "steps" in top else {}
        start = None
        if "start" in top:
            start_node = top["start"][1]
            start = self.string(start_node, "start")
            if start is not None and steps and start not in steps:
                hint = _did_you_mean(start, steps, "steps")
                self.report(start_node, f"start: unknown step {start!r}", hint)
        self._check_refs(steps)
        if start in steps:
            assert start is not None
            self._check_reachable(steps, start, anytime)
        self._check_templates()
        self._check_hooks()
        if flow_id is None or start is None or not self.languages:
            return None
        return FlowSpec(
            id=flow_id,
            path=self.name,
            version=self.version,
            languages=self.languages,
            channels=self.channels,
            start=start,
            steps={name: step for name, (step, _) in steps.items()},
            pos=self.pos(top["flow"][1]),
            description=description or "",
            params=self.params,
            anytime=anytime,
            voice=voice,
            error_text=error_text,
        )

    def _languages(self, node: Node) -> None:
        found = self.strings(node, "languages")
        langs: list[str] = []
        for lang, item in found:
            if lang in langs:
                self.report(item, f"languages: {lang!r} is listed twice")
            else:
                langs.append(lang)
        if not langs and isinstance(node, SequenceNode):
            self.report(node, "languages: list at least one language (the first is the default)")
        self.languages = tuple(langs)

    def _channels(self, node: Node) -> None:
        channels = []
        for channel, item in self.strings(node, "channels"):
            if channel in CHANNELS:
                channels.append(channel)
            else:
                hint = _did_you_mean(channel, CHANNELS, "channels")
                self.report(item, f"channels: unknown channel {channel!r}", hint)
        self.channels = tuple(dict.fromkeys(channels)) or self.channels

    def _params(self, node: Node) -> None:
        for name, (key, value) in (self.fields(node, "params", None) or {}).items():
            what = f"params.{name}"
            pos = self.pos(key)
            if isinstance(value, ScalarNode) and value.tag == _NULL:
                self.params[name] = Param(name, pos)
                continue
            spec = self.fields(value, what, ("required", "type", "default", "example"))
            if spec is None:
                continue
            required = False
            if "required" in spec:
                required = bool(self.boolean(spec["required"][1], f"{what}.required"))
            kind = "text"
            if "type" in spec:
                kind = self.string(spec["type"][1], f"{what}.type") or "text"
                if kind not in PARAM_TYPES:
                    hint = _did_you_mean(kind, PARAM_TYPES, "types")
                    self.report(spec["type"][1], f"{what}.type: unknown type {kind!r}", hint)
            default = self._plain(spec["default"][1]) if "default" in spec else None
            example = self._plain(spec["example"][1]) if "example" in spec else None
            self.params[name] = Param(name, pos, bool(required), kind, default, example)

    def _voice(self, node: Node) -> dict[str, VoiceLang]:
        out: dict[str, VoiceLang] = {}
        for lang, (key, value) in (self.fields(node, "voice", None) or {}).items():
            self.lang_ref(key, "voice", strict=False)
            what = f"voice.{lang}"
            if isinstance(value, ScalarNode):  # voice: {nl: nl-NL}
                locale = self.string(value, what)
                if locale:
                    out[lang] = VoiceLang(locale)
                continue
            entry = self.fields(value, what, ("locale", "voice", "fallbacks"), ("locale",))
            if not entry or "locale" not in entry:
                continue
            locale = self.string(entry["locale"][1], f"{what}.locale")
            tts = self.string(entry["voice"][1], f"{what}.voice") if "voice" in entry else None
            fallbacks = tuple(
                f for f, _ in self.strings(entry["fallbacks"][1], f"{what}.fallbacks")
            ) if "fallbacks" in entry else ()  # fmt: skip
            if locale:
                out[lang] = VoiceLang(locale, tts, fallbacks)
        return out

    def _anytime(self, node: Node) -> tuple[Anytime, ...]:
        if not isinstance(node, SequenceNode):
            self.wrong_type(node, "anytime", "a list of handlers")
            return ()
        handlers = []
        for i, item in enumerate(node.value):
            what = f"anytime[{i}]"
            entry = self.fields(item, what, ("when", "do", "say", "goto"), ("when",))
            if entry is None:
                continue
            keywords: dict[str, tuple[str, ...]] = {}
            pattern = None
            if "when" in entry:
                when_node = entry["when"][1]
                when = self.fields(when_node, f"{what}.when", ("keywords", "regex")) or {}
                if "keywords" in when:
                    keywords = self.words(when["keywords"][1], f"{what}.when.keywords")
                if "regex" in when:
                    pattern = self.regex(when["regex"][1], f"{what}.when.regex")
                if isinstance(when_node, MappingNode) and len(when) != 1:
                    self.report(when_node, f"{what}.when: give exactly one of keywords or regex")
            do = self.hook_calls(entry["do"][1], f"{what}.do") if "do" in entry else ()
            say = self.text(entry["say"][1], f"{what}.say") if "say" in entry else None
            goto = self.step_ref(entry["goto"][1], f"{what}.goto") if "goto" in entry else None
            handlers.append(Anytime(self.pos(item), keywords, pattern, do, say, goto))
        return tuple(handlers)

    def _steps(self, node: Node) -> dict[str, tuple[Step, ScalarNode]]:
        entries = self.fields(node, "steps", None)
        if entries is None:
            return {}
        if not entries:
            self.report(node, "steps: a flow needs at least one step")
        return {name: (self._step(name, key, value), key) for name, (key, value) in entries.items()}

    # -- steps --------------------------------------------------------------------------

    def _step(self, name: str, key: ScalarNode, node: Node) -> Step:
        pos = self.pos(key)
        where = f"steps.{name}"
        f = self.fields(node, where, STEP_KEYS)
        if f is None:
            return Step(name, pos)
        verbs = [k for k in f if k in MAIN_VERBS]
        for extra in verbs[1:]:
            self.report(
                f[extra][0],
                f"{where}: a step has one main verb, found {verbs[0]} and {extra}",
                "split it into two steps joined by goto",
            )
        verb: Verb | None = None
        if verbs:
            verb_key, verb_node = f[verbs[0]]
            verb = self._verb(verbs[0], verb_node, f"{where}.{verbs[0]}", self.pos(verb_key))
            if verbs[0] in VOICE_VERBS and "voice" not in self.channels:
                self.report(
                    verb_key,
                    f"{where}: {verbs[0]} is a voice-only verb, but channels are "
                    f"[{', '.join(self.channels)}]",
                    "add voice to channels",
                )
        do = self.hook_calls(f["do"][1], f"{where}.do") if "do" in f else ()
        then = self._then(f["then"][1], f"{where}.then") if "then" in f else ()
        if "goto" in f:
            if "then" in f:
                self.report(f["goto"][0], f"{where}: use then or goto, not both")
            elif (target := self.step_ref(f["goto"][1], f"{where}.goto")) is not None:
                then = (Branch(target, self.pos(f["goto"][1])),)
        end = bool(self.boolean(f["end"][1], f"{where}.end")) if "end" in f else False
        media: tuple[str, ...] = ()
        if "media" in f:
            media = tuple(
                source
                for _, item in self.strings(f["media"][1], f"{where}.media")
                if (source := self.template(item, f"{where}.media")) is not None
            )
        step = Step(name, pos, verb, do, then, end, media)
        if not (step.waits or then or end or isinstance(verb, Handoff | Hangup)):
            self.report(
                key,
                f"step {name!r} is a dead end: it does not wait for an answer, go on or end",
                "add end: true or goto",
            )
        if isinstance(verb, Choose) and not then:
            for option in verb.options:
                if option.goto is None:
                    self.report_at(
                        option.pos.line,
                        option.pos.col,
                        f"{where}: option {option.key or option.set_lang or ''} has no goto "
                        "and the step has no then",
                        "add goto: STEP to the option, or then: to the step",
                    )
        return step

    def _verb(self, verb: str, node: Node, where: str, pos: Pos) -> Verb:
        if verb == "say":
            return Say(self.text(node, where), pos)
        readers: dict[str, Callable[[Node, str, Pos], Verb]] = {
            "ask": self._ask,
            "choose": self._choose,
            "handoff": self._handoff,
            "dial": self._dial,
            "record": self._record,
            "conference": self._conference,
            "hangup": self._hangup,
        }
        return readers[verb](node, where, pos)

    def _then(self, node: Node, what: str) -> tuple[Branch, ...]:
        if isinstance(node, ScalarNode):
            target = self.step_ref(node, what)
            return (Branch(target, self.pos(node)),) if target is not None else ()
        if not isinstance(node, SequenceNode) or not node.value:
            self.wrong_type(node, what, "a step name or a list of {if, goto} branches")
            return ()
        branches: list[Branch] = []
        for i, item in enumerate(node.value):
            w = f"{what}[{i}]"
            if branches and branches[-1].condition is None:
                self.report(
                    item,
                    f"{w}: never taken, the branch before it always goes",
                    "put the branch without if: last",
                    warning=True,
                )
            if isinstance(item, ScalarNode):
                if (target := self.step_ref(item, w)) is not None:
                    branches.append(Branch(target, self.pos(item)))
                continue
            entry = self.fields(item, w, ("if", "goto"), ("goto",))
            if not entry or "goto" not in entry:
                continue
            target = self.step_ref(entry["goto"][1], f"{w}.goto")
            condition = None
            if "if" in entry:
                condition = self.string(entry["if"][1], f"{w}.if")
                if condition is not None:
                    self.expressions.append((condition, _scalar(entry["if"][1])))
            if target is not None:
                branches.append(Branch(target, self.pos(item), condition))
        return tuple(branches)

    def _retry(self, f: Fields, where: str) -> Retry:
        def get(key: str, read: Callable[[Node, str], T | None]) -> T | None:
            return read(f[key][1], f"{where}.{key}") if key in f else None

        reprompt = self.reprompts(f["reprompt"][1], f"{where}.reprompt") if "reprompt" in f else ()
        for target, needs, what in (
            ("on_timeout", "timeout", "timeout: 24h"),
            ("on_max_attempts", "max_attempts", "max_attempts: 3"),
        ):
            if target in f and needs not in f:
                self.report(
                    f[target][0],
                    f"{where}: {target} without {needs} never happens",
                    f"add {what}",
                    warning=True,
                )
        return Retry(
            reprompt=reprompt,
            max_attempts=get("max_attempts", self.count),
            on_max_attempts=get("on_max_attempts", self.step_ref),
            timeout=get("timeout", self.duration),
            on_timeout=get("on_timeout", self.step_ref),
            gather_timeout=get("gather_timeout", self.duration),
        )

    def _ask(self, node: Node, where: str, pos: Pos) -> Ask:
        f = self.fields(node, where, ASK_KEYS, ("text",)) or {}
        text = self.text(f["text"][1], f"{where}.text") if "text" in f else Text(pos)
        expect = Expect("text", pos)
        if "expect" in f:
            expect = self._expect(f["expect"][1], f"{where}.expect")
        save_as = self.slot(f["save_as"][1], f"{where}.save_as") if "save_as" in f else None
        validate = None
        if "validate" in f:
            validate = self.string(f["validate"][1], f"{where}.validate")
            if validate is not None:
                self.hook_uses.append((validate, _scalar(f["validate"][1])))
        invalid = self.text(f["invalid"][1], f"{where}.invalid") if "invalid" in f else None
        return Ask(text, expect, pos, save_as, validate, invalid, self._retry(f, where))

    def _expect_kind(self, node: Node, what: str) -> ExpectKind | None:
        kind = self.string(node, what)
        if kind is None:
            return None
        if kind not in EXPECT_KINDS:
            close = _closest(kind, EXPECT_KINDS)
            hint = (f"did you mean {close!r}? " if close else "") + "expect types: "
            self.report(
                node, f"{what}: unknown expect type {kind!r}", hint + ", ".join(EXPECT_KINDS)
            )
            return None
        return cast(ExpectKind, kind)

    def _expect(self, node: Node, what: str) -> Expect:
        pos = self.pos(node)
        if not isinstance(node, MappingNode):
            kind = self._expect_kind(node, what)
            if kind in ("regex", "choice"):
                extra = "pattern" if kind == "regex" else "choices"
                self.report(
                    node, f"{what}: {kind} needs {extra}: write {{type: {kind}, {extra}: ...}}"
                )
            return Expect(kind or "text", pos)
        f = self.fields(node, what, EXPECT_KEYS, ("type",)) or {}
        kind = self._expect_kind(f["type"][1], f"{what}.type") if "type" in f else None
        for key, (key_node, _) in f.items():
            if kind is not None and key != "type" and key not in _EXPECT_OPTIONS.get(kind, ()):
                self.report(key_node, f"{what}: {key} does not apply to type {kind}")
        for needed in _EXPECT_NEEDS.get(kind or "", ()):
            if needed not in f:
                self.report(node, f"{what}: type {kind} needs {needed}")
        pattern = self.regex(f["pattern"][1], f"{what}.pattern") if "pattern" in f else None
        choices = self._choices(f["choices"][1], f"{what}.choices") if "choices" in f else ()
        low = self.number(f["min"][1], f"{what}.min") if "min" in f else None
        high = self.number(f["max"][1], f"{what}.max") if "max" in f else None
        if low is not None and high is not None and low > high:
            self.report(f["min"][1], f"{what}: min {low:g} is above max {high:g}")
        length = self.count(f["length"][1], f"{what}.length") if "length" in f else None
        return Expect(kind or "text", pos, pattern, choices, low, high, length)

    def _choices(self, node: Node, what: str) -> tuple[Choice, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.wrong_type(node, what, "a list of {value, words}")
            return ()
        out = []
        for i, item in enumerate(node.value):
            entry = self.fields(item, f"{what}[{i}]", ("value", "words"), ("value",))
            if not entry or "value" not in entry:
                continue
            value = self.string(entry["value"][1], f"{what}[{i}].value")
            words = self.words(entry["words"][1], f"{what}[{i}].words") if "words" in entry else {}
            if value is not None:
                out.append(Choice(value, words))
        return tuple(out)

    def _choose(self, node: Node, where: str, pos: Pos) -> Choose:
        f = self.fields(node, where, CHOOSE_KEYS, ("text", "options")) or {}
        text = self.text(f["text"][1], f"{where}.text") if "text" in f else Text(pos)
        options = self._options(f["options"][1], f"{where}.options") if "options" in f else ()
        save_as = self.slot(f["save_as"][1], f"{where}.save_as") if "save_as" in f else None
        return Choose(text, options, pos, save_as, self._retry(f, where))

    def _options(self, node: Node, what: str) -> tuple[Option, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.wrong_type(node, what, "a list of options {key, words, goto}")
            return ()
        first: dict[str, Node] = {}
        out = []
        for i, item in enumerate(node.value):
            w = f"{what}[{i}]"
            f = self.fields(item, w, OPTION_KEYS)
            if f is None:
                continue
            key = self.string(f["key"][1], f"{w}.key") if "key" in f else None
            if key is not None and key in first:
                earlier = first[key].start_mark.line + 1
                self.report(
                    f["key"][1],
                    f"{w}: duplicate option key {key!r} (first at line {earlier})",
                    "give each option its own key",
                )
            elif key is not None:
                first[key] = f["key"][1]
            if "key" not in f and "words" not in f:
                self.report(item, f"{w}: an option needs a key or words")
            out.append(
                Option(
                    self.pos(item),
                    key=key,
                    words=self.words(f["words"][1], f"{w}.words") if "words" in f else {},
                    goto=self.step_ref(f["goto"][1], f"{w}.goto") if "goto" in f else None,
                    set_lang=(
                        self.lang_ref(f["set_lang"][1], f"{w}.set_lang", strict=True)
                        if "set_lang" in f
                        else None
                    ),
                    save_as_value=self.string(f["value"][1], f"{w}.value")
                    if "value" in f
                    else None,
                )
            )
        return tuple(out)

    def _handoff(self, node: Node, where: str, pos: Pos) -> Handoff:
        if isinstance(node, ScalarNode):  # handoff: reception
            return Handoff(self.string(node, where) or "", pos)
        f = self.fields(node, where, ("queue", "say", "number"), ("queue",)) or {}
        queue = self.string(f["queue"][1], f"{where}.queue") if "queue" in f else None
        say = self.text(f["say"][1], f"{where}.say") if "say" in f else None
        number = self.string(f["number"][1], f"{where}.number") if "number" in f else None
        return Handoff(queue or "", pos, say, number)

    def _dial(self, node: Node, where: str, pos: Pos) -> Dial:
        if isinstance(node, ScalarNode):  # dial: "+3225550100"
            return Dial(self.template(node, where) or "", pos)
        f = self.fields(node, where, DIAL_KEYS, ("to",)) or {}
        to = self.template(f["to"][1], f"{where}.to") if "to" in f else None
        timeout = self.duration(f["timeout"][1], f"{where}.timeout") if "timeout" in f else None
        on_fail = self.step_ref(f["on_fail"][1], f"{where}.on_fail") if "on_fail" in f else None
        caller_id = (
            self.string(f["caller_id"][1], f"{where}.caller_id") if "caller_id" in f else None
        )
        limit = (
            self.duration(f["time_limit"][1], f"{where}.time_limit") if "time_limit" in f else None
        )
        say = self.text(f["say"][1], f"{where}.say") if "say" in f else None
        return Dial(to or "", pos, timeout or 30.0, on_fail, caller_id, limit, say)

    def _record(self, node: Node, where: str, pos: Pos) -> Record:
        f = self.fields(node, where, RECORD_KEYS) or {}
        if "text" in f and "say" in f:
            self.report(f["say"][0], f"{where}: use text or say, not both")
        said = "text" if "text" in f else "say" if "say" in f else None
        if said is None and isinstance(node, MappingNode):
            self.report(
                node, f"{where}: missing required key 'text'", "what to say before the beep"
            )
        text = self.text(f[said][1], f"{where}.{said}") if said else Text(pos)
        consent: Text | bool = False
        consent_node = f["consent"][1] if "consent" in f else None
        if isinstance(consent_node, ScalarNode) and consent_node.tag == _BOOL:
            consent = bool(self.boolean(consent_node, f"{where}.consent"))
        elif consent_node is not None:
            consent = self.text(consent_node, f"{where}.consent")
        if consent is False:
            line, col = (
                (consent_node.start_mark.line + 1, consent_node.start_mark.column + 1)
                if consent_node is not None
                else (pos.line, pos.col)
            )
            self.report_at(
                line,
                col,
                f"{where}: recording needs consent (GDPR): add consent: true or a consent text",
                'e.g. consent: "This call is recorded. Hang up if you do not agree."',
            )
        max_seconds = self.duration(f["max"][1], f"{where}.max") if "max" in f else None
        save_as = self.slot(f["save_as"][1], f"{where}.save_as") if "save_as" in f else None
        finish = "#"
        if "finish_on_key" in f:
            finish_node = f["finish_on_key"][1]
            finish = self.string(finish_node, f"{where}.finish_on_key") or "#"
            if not re.fullmatch(r"[0-9*#]*", finish):
                self.report(finish_node, f"{where}.finish_on_key: use DTMF keys 0-9, * or #")
        beep = self.boolean(f["beep"][1], f"{where}.beep") if "beep" in f else True
        return Record(text, pos, consent, save_as, max_seconds or 120.0, finish, beep is not False)

    def _conference(self, node: Node, where: str, pos: Pos) -> Conference:
        if isinstance(node, ScalarNode):  # conference: team-room
            return Conference(self.template(node, where) or "", pos)
        f = self.fields(node, where, CONFERENCE_KEYS, ("room",)) or {}
        room = self.template(f["room"][1], f"{where}.room") if "room" in f else None
        flags = {
            key: self.boolean(f[key][1], f"{where}.{key}")
            for key in ("record", "start_on_enter", "end_on_exit", "muted")
            if key in f
        }
        say = self.text(f["say"][1], f"{where}.say") if "say" in f else None
        if flags.get("record") and say is None:
            self.report(
                f["record"][1],
                f"{where}: the conference is recorded but nobody is told",
                "add say: with a recording notice",
                warning=True,
            )
        return Conference(
            room or "",
            pos,
            record=bool(flags.get("record", False)),
            text=say,
            start_on_enter=flags.get("start_on_enter") is not False,
            end_on_exit=bool(flags.get("end_on_exit", False)),
            muted=bool(flags.get("muted", False)),
        )

    def _hangup(self, node: Node, where: str, pos: Pos) -> Hangup:
        if isinstance(node, MappingNode):
            f = self.fields(node, where, ("say",)) or {}
            return Hangup(pos, self.text(f["say"][1], f"{where}.say") if "say" in f else None)
        if self.boolean(node, where) is False:
            self.report(node, f"{where}: hangup: false does nothing", "write hangup: true")
        return Hangup(pos)

    # -- cross-checks -------------------------------------------------------------------

    def _check_refs(self, steps: Mapping[str, object]) -> None:
        if not steps:
            return
        for name, node in self.refs:
            if name not in steps:
                self.report(node, f"unknown step {name!r}", _did_you_mean(name, steps, "steps"))

    def _check_reachable(
        self, steps: Mapping[str, tuple[Step, ScalarNode]], start: str, anytime: Sequence[Anytime]
    ) -> None:
        todo = [start, *(a.goto for a in anytime if a.goto)]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen or name not in steps:
                continue
            seen.add(name)
            todo.extend(target for target, _ in steps[name][0].targets())
        for name, (_, key) in steps.items():
            if name not in seen:
                self.report(
                    key,
                    f"step {name!r} is unreachable: no goto leads to it from start or anytime",
                    "add a goto to it, or remove it",
                )

    def _check_templates(self) -> None:
        allowed = CONTEXT_NAMES | self.slot_names | TEMPLATES.global_names
        for source, node in self.templates:
            problem = TEMPLATES.syntax_error(source)
            if problem is not None:
                line, col = self._template_line(node, problem[0])
                self.report_at(
                    line,
                    col,
                    f"template syntax error: {problem[1]}",
                    "Jinja2: {{ name }} for values, {% if ... %}...{% endif %} for logic",
                )
                continue
            self._check_names(source, node, TEMPLATES.undeclared(source), allowed, False)
        for expression, node in self.expressions:
            message = TEMPLATES.expression_error(expression)
            if message is not None:
                self.report(
                    node,
                    f"condition does not compile: {message}",
                    "a Jinja2 expression, e.g. slots.confirmed or score >= 9",
                )
                continue
            names = TEMPLATES.undeclared_in_expression(expression)
            self._check_names(expression, node, names, allowed, True)

    def _check_names(
        self, source: str, node: ScalarNode, names: set[str], allowed: Collection[str], expr: bool
    ) -> None:
        kind = "condition" if expr else "template"
        for name in sorted(names - set(allowed)):
            if name in self.params:
                hint = f"params are used as params.{name}"
            else:
                close = _closest(name, set(allowed) | {f"params.{p}" for p in self.params})
                hint = f"did you mean {close!r}? " if close else ""
                hint += "declare it under slots: or save it with save_as"
            line, col = self._find(node, name)
            self.report_at(line, col, f"undeclared variable {name!r} in {kind}", hint)
        for base, attr in sorted(TEMPLATES.attribute_uses(source, expression=expr)):
            if base == "params" and attr not in self.params:
                hint = _did_you_mean(attr, self.params, "declared params") or "no params declared"
                line, col = self._find(node, f"params.{attr}")
                self.report_at(line, col, f"unknown param 'params.{attr}' in {kind}", hint)
            elif base == "slots" and attr not in self.slot_names and attr not in _DICT_METHODS:
                hint = _did_you_mean(attr, self.slot_names, "known slots") or (
                    "slots are save_as names and the slots: list"
                )
                line, col = self._find(node, f"slots.{attr}")
                self.report_at(line, col, f"unknown slot 'slots.{attr}' in {kind}", hint)

    def _check_hooks(self) -> None:
        if not self.hook_uses:
            return
        if self.hooks is None:
            names = list(dict.fromkeys(name for name, _ in self.hook_uses))
            self.report(
                self.hook_uses[0][1],
                f"hook names are unchecked: {', '.join(names)} (pass --bot to check)",
                warning=True,
            )
            return
        for name, node in self.hook_uses:
            if name not in self.hooks:
                hint = _did_you_mean(name, sorted(self.hooks), "the bot has")
                self.report(node, f"unknown hook {name!r}: the bot registers no such action "
                            "or validator", hint or "the bot registers no hooks")  # fmt: skip


_DICT_METHODS = frozenset({"get", "items", "keys", "values"})  # slots.get("x") is fine


def _scalar(node: Node) -> ScalarNode:
    """``node`` as a scalar; only called where :meth:`_FlowReader.string` accepted it."""
    assert isinstance(node, ScalarNode)
    return node


def _is_mixed(node: SequenceNode) -> bool:
    """True for a list of ``{lang, text}`` mappings (one mixed-language text)."""
    return bool(node.value) and all(
        isinstance(item, MappingNode)
        and {k.value for k, _ in item.value if isinstance(k, ScalarNode)} == {"lang", "text"}
        for item in node.value
    )
