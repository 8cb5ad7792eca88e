"""The main verbs of a step, read from their YAML nodes: ask (with its expect), choose (with
its options), handoff, dial, record, conference and hangup, and the retry settings that ask
and choose share (reprompt, max_attempts, timeout and where each leads).

Each verb is read by one method of :class:`VerbReader` into its
:class:`~convo.flow.spec.Verb` value; a broken part is reported and replaced by a default,
so reading goes on. Besides types and keys, the rules a verb carries on its own are
checked here: options of a type that does not take them, min above max, duplicate option
keys, recording without consent (GDPR; a ``record`` step, or a ``dial`` with ``record:
true``), a dial's ``tts_language`` that is not a locale, a recorded conference nobody is told
about.
(``say`` is only a text; where a verb is allowed is the step reader's business.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar, assert_never, cast, get_args

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from convo.flow import patterns
from convo.flow.spec import (
    EXPECT_KINDS,
    VERBS,
    Ask,
    Choice,
    Choose,
    Conference,
    Dial,
    Expect,
    ExpectKind,
    Handoff,
    Hangup,
    Option,
    Pos,
    Record,
    Retry,
    Say,
    Text,
    Verb,
    VerbKeyword,
)
from convo.flow.texts_reader import TextReader
from convo.flow.yamlnodes import BOOL, Fields, as_scalar, closest

MAIN_VERBS: tuple[VerbKeyword, ...] = get_args(VerbKeyword)
VOICE_VERBS: tuple[VerbKeyword, ...] = tuple(v.keyword for v in VERBS if v.voice_only)
RETRY_KEYS = (
    "reprompt", "max_attempts", "on_max_attempts", "timeout", "on_timeout", "gather_timeout",
)  # fmt: skip
ASK_KEYS = ("text", "expect", "save_as", "validate", "invalid", *RETRY_KEYS)
CHOOSE_KEYS = ("text", "options", "save_as", *RETRY_KEYS)
EXPECT_KEYS = ("type", "pattern", "choices", "min", "max", "length", "types")
OPTION_KEYS = ("key", "words", "goto", "set_lang", "value")
DIAL_KEYS = (
    "to", "timeout", "on_fail", "caller_id", "time_limit", "say", "record", "consent",
    "tts_language",
)  # fmt: skip
RECORD_KEYS = ("text", "say", "max", "save_as", "consent", "finish_on_key", "beep")
CONFERENCE_KEYS = ("room", "record", "say", "start_on_enter", "end_on_exit", "muted")

# Which expect options apply to which type, and which a type cannot do without.
_EXPECT_OPTIONS = {"regex": ("pattern",), "choice": ("choices",), "number": ("min", "max"),
                   "digits": ("length",), "media": ("types",)}  # fmt: skip
_EXPECT_NEEDS = {"regex": ("pattern",), "choice": ("choices",)}

# A TTS locale: a language (2-3 letters) and optional subtags, e.g. nl-NL, fr-BE, zh-Hans-CN.
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

T = TypeVar("T")


class VerbReader(TextReader):
    """Reads the verb of a step (see the module docstring)."""

    def read_verb(self, verb: VerbKeyword, node: Node, where: str, pos: Pos) -> Verb:
        """The ``verb`` (one of :data:`MAIN_VERBS`) whose value is ``node``; ``where`` names
        it in messages, ``pos`` is its key's position."""
        match verb:
            case "say":
                return Say(self.text(node, where), pos)
            case "ask":
                return self._ask(node, where, pos)
            case "choose":
                return self._choose(node, where, pos)
            case "handoff":
                return self._handoff(node, where, pos)
            case "dial":
                return self._dial(node, where, pos)
            case "record":
                return self._record(node, where, pos)
            case "conference":
                return self._conference(node, where, pos)
            case "hangup":
                return self._hangup(node, where, pos)
            case _:
                assert_never(verb)

    def flow_pattern(self, node: Node, what: str, *, ignore_case: bool = False) -> str | None:
        """A flow pattern (:mod:`convo.flow.patterns`): an error when it does not compile
        (with ``re``, then with ``regex``, which matches it), and a warning placed on the
        risky part when it can backtrack catastrophically; the flow still loads."""
        pattern = self.regex(node, what)
        if pattern is None:
            return None
        if (error := patterns.compile_error(pattern)) is not None:
            self.report(node, f"{what}: invalid regular expression: {error}")
            return None
        if (risk := patterns.backtracking_risk(pattern, ignore_case=ignore_case)) is not None:
            offset, part = risk
            line, col = self._pattern_pos(node, pattern, offset)
            self.report_at(
                line,
                col,
                f"{what}: {part!r} has nested quantifiers: it can backtrack for seconds on a "
                f"long reply; a match is stopped after {patterns.MATCH_BUDGET:g}s and counts as "
                "no match",
                "let each repetition start with what the previous one cannot end with, "
                "e.g. (a+)+ -> a+, (a|aa)+ -> a+",
                warning=True,
            )
        return pattern

    def _pattern_pos(self, node: Node, pattern: str, offset: int) -> tuple[int, int]:
        """Where ``pattern[offset]`` is in the file; the node's position when the scalar's
        quoting or escapes hide it."""
        span = self.source_text[node.start_mark.index : node.end_mark.index]
        found = span.find(pattern)
        if found < 0:
            return node.start_mark.line + 1, node.start_mark.column + 1
        return self._offset_to_pos(node.start_mark.index + found + offset)

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
                self.hook_uses.append((validate, as_scalar(f["validate"][1]), "validator"))
        invalid = self.text(f["invalid"][1], f"{where}.invalid") if "invalid" in f else None
        return Ask(text, expect, pos, save_as, validate, invalid, self._retry(f, where))

    def _expect_kind(self, node: Node, what: str) -> ExpectKind | None:
        kind = self.string(node, what)
        if kind is None:
            return None
        if kind not in EXPECT_KINDS:
            close = closest(kind, EXPECT_KINDS)
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
        pattern = self.flow_pattern(f["pattern"][1], f"{what}.pattern") if "pattern" in f else None
        choices = self._choices(f["choices"][1], f"{what}.choices") if "choices" in f else ()
        low = self.number(f["min"][1], f"{what}.min") if "min" in f else None
        high = self.number(f["max"][1], f"{what}.max") if "max" in f else None
        if low is not None and high is not None and low > high:
            self.report(f["min"][1], f"{what}: min {low:g} is above max {high:g}")
        length = self.count(f["length"][1], f"{what}.length") if "length" in f else None
        types = self._media_types(f["types"][1], f"{what}.types") if "types" in f else ()
        return Expect(kind or "text", pos, pattern, choices, low, high, length, types)

    def _media_types(self, node: Node, what: str) -> tuple[str, ...]:
        """Content types for ``expect: {type: media, types: [...]}``: ``type/sub``, ``type/*``."""
        out = []
        for value, item in self.strings(node, what):
            major, _, minor = value.partition("/")
            if not major or not minor or "*" in major or ("*" in minor and minor != "*"):
                hint = "e.g. image/* or image/png"
                self.report(item, f"{what}: {value!r} is not a content type", hint)
                continue
            out.append(value.lower())
        return tuple(out)

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
        record = bool(self.boolean(f["record"][1], f"{where}.record")) if "record" in f else False
        consent: Text | bool = False
        if record:
            consent = self._consent(f, where, pos, "a recorded dial")
        elif "consent" in f:
            self.report(
                f["consent"][0],
                f"{where}: consent without record: true asks for nothing",
                "add record: true, or drop consent",
                warning=True,
            )
        tts = None
        if "tts_language" in f:
            tts = self.string(f["tts_language"][1], f"{where}.tts_language")
            if tts is not None and not _LOCALE.fullmatch(tts):
                self.report(
                    f["tts_language"][1],
                    f"{where}.tts_language: {tts!r} is not a locale",
                    "write a BCP-47 locale such as nl-NL, fr-BE, de-DE or en-GB",
                )
                tts = None
        return Dial(
            to or "", pos, timeout or 30.0, on_fail, caller_id, limit, say, record, consent, tts
        )

    def _consent(self, f: Fields, where: str, pos: Pos, what: str) -> Text | bool:
        """The ``consent`` of a verb that records (GDPR): a text said first, or ``true`` (it
        was asked before); an error at the key (or the verb) when it is missing or false."""
        consent: Text | bool = False
        consent_node = f["consent"][1] if "consent" in f else None
        if isinstance(consent_node, ScalarNode) and consent_node.tag == BOOL:
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
                f"{where}: {what} needs consent (GDPR): add consent: true or a consent text",
                'e.g. consent: "This call is recorded. Hang up if you do not agree."',
            )
        return consent

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
        consent = self._consent(f, where, pos, "recording")
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
