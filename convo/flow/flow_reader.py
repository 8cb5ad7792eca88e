"""One flow file, read as a whole: the top-level keys, then the cross-checks.

:class:`FlowReader` is the reader the loader runs on a file. It parses the YAML into a node
tree (syntax errors become diagnostics), reports duplicate keys, reads the top level
(``flow``, ``languages``, ``channels``, ``params``, ``slots``, ``voice``, ``error_text``,
``anytime``, ``steps``, ``start``, ``renamed``), then runs the cross-checks. Reading never
stops at the first problem: broken parts are reported and replaced by placeholders.
:meth:`FlowReader.read` returns a :class:`~convo.flow.spec.FlowSpec` only when the file
has the parts a spec cannot do without; whether any *error* was found is the caller's question (see
:mod:`convo.flow.loader`).

The reader is built in layers, one module each: YAML nodes (:mod:`convo.flow.yamlnodes`),
texts and references (:mod:`convo.flow.texts_reader`), verbs
(:mod:`convo.flow.verbs_reader`), steps (:mod:`convo.flow.steps_reader`) and the
cross-checks (:mod:`convo.flow.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from convo.flow.checks import CrossChecks
from convo.flow.spec import Anytime, FlowSpec, Param, VoiceLang
from convo.flow.steps_reader import StepReader
from convo.flow.texts_reader import CHANNELS
from convo.flow.yamlnodes import NULL, did_you_mean

TOP_KEYS = (
    "flow", "description", "languages", "channels", "start", "voice", "params", "slots",
    "error_text", "anytime", "steps", "renamed",
)  # fmt: skip
PARAM_TYPES = ("text", "number", "date", "phone", "bool")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")  # BCP 47-ish: nl, fr, pt-BR


class FlowReader(StepReader, CrossChecks):
    """Reads one flow file (see the module docstring). ``name`` stands for the file in
    diagnostics, ``version`` is the content hash the spec carries, ``hooks`` the bot's hook
    names (None: unchecked)."""

    misplaced: Mapping[str, tuple[str, str]] = {
        key: (f"{key} is only allowed in ask or choose", "move it under ask: or choose:")
        for key in ("on_max_attempts", "on_timeout")
    }

    def __init__(self, name: str, text: str, version: str, hooks: Collection[str] | None) -> None:
        super().__init__(name, text, hooks)
        self.version = version

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
        self.report_duplicate_keys(root, set())
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
        steps = self.read_steps(top["steps"][1]) if "steps" in top else {}
        start = None
        if "start" in top:
            start_node = top["start"][1]
            start = self.string(start_node, "start")
            if start is not None and steps and start not in steps:
                hint = did_you_mean(start, steps, "steps")
                self.report(start_node, f"start: unknown step {start!r}", hint)
        renamed = self._renamed(top["renamed"][1], steps) if "renamed" in top else None
        self.check_refs(steps)
        if start in steps:
            assert start is not None
            self.check_reachable(steps, start, anytime)
        self.check_templates()
        self.check_hooks()
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
            slot_names=tuple(sorted(self.slot_names)),
            renamed=renamed,
            reads_contact=self.reads_contact(),
            source=self.source_text,
        )

    def _renamed(self, node: Node, steps: Mapping[str, object]) -> dict[str, str]:
        """``renamed: {old_step: new_step}``: each new name a step of this file, each old
        name one it no longer has (an empty mapping is allowed: it moves live
        conversations forward with no step renamed)."""
        if isinstance(node, ScalarNode) and node.tag == NULL:
            return {}
        out: dict[str, str] = {}
        for old, (key, value) in (self.fields(node, "renamed", None) or {}).items():
            new = self.string(value, f"renamed.{old}")
            if new is None:
                continue
            if old in steps:
                self.report(
                    key,
                    f"renamed: {old!r} is still a step of this flow",
                    "list only steps that were renamed away",
                )
            elif steps and new not in steps:
                hint = did_you_mean(new, steps, "steps")
                self.report(value, f"renamed.{old}: unknown step {new!r}", hint)
            else:
                out[old] = new
        return out

    def _languages(self, node: Node) -> None:
        found = self.strings(node, "languages")
        langs: list[str] = []
        for lang, item in found:
            if not LANGUAGE_CODE.fullmatch(lang):
                hint = (
                    f"a YAML list: [{', '.join(re.split(r'[,; ]+', lang.strip(', ;')))}]"
                    if re.search(r"[,; ]", lang)
                    else "a language code such as nl, fr, de, en or pt-BR"
                )
                self.report(item, f"languages: {lang!r} is not a language code", hint)
            elif lang in langs:
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
                hint = did_you_mean(channel, CHANNELS, "channels")
                self.report(item, f"channels: unknown channel {channel!r}", hint)
        self.channels = tuple(dict.fromkeys(channels)) or self.channels

    def _params(self, node: Node) -> None:
        for name, (key, value) in (self.fields(node, "params", None) or {}).items():
            what = f"params.{name}"
            pos = self.pos(key)
            if isinstance(value, ScalarNode) and value.tag == NULL:
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
                    hint = did_you_mean(kind, PARAM_TYPES, "types")
                    self.report(spec["type"][1], f"{what}.type: unknown type {kind!r}", hint)
            default = self.plain(spec["default"][1]) if "default" in spec else None
            example = self.plain(spec["example"][1]) if "example" in spec else None
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
                    regex_node = when["regex"][1]
                    pattern = self.flow_pattern(regex_node, f"{what}.when.regex", ignore_case=True)
                if isinstance(when_node, MappingNode) and len(when) != 1:
                    self.report(when_node, f"{what}.when: give exactly one of keywords or regex")
            do = self.hook_calls(entry["do"][1], f"{what}.do") if "do" in entry else ()
            say = self.text(entry["say"][1], f"{what}.say") if "say" in entry else None
            goto = self.step_ref(entry["goto"][1], f"{what}.goto") if "goto" in entry else None
            handlers.append(Anytime(self.pos(item), keywords, pattern, do, say, goto))
        return tuple(handlers)
