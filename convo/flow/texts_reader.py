"""Texts and the names a flow file refers to, read for the cross-checks that follow.

:class:`TextReader` adds the flow language's own values to :class:`NodeReader`:

- texts in every form of :class:`~convo.flow.spec.Text`: one template for every language,
  one per language (a missing translation is an error), one per channel (``sms:``,
  ``voice:``) or a mixed-language list of ``{lang, text}`` segments; reprompt lists;
- references: step names (``goto`` & co), languages, slot names, hook names, Jinja2
  templates and per-language word lists.

It also holds what the file has declared so far (languages, channels, params, slots), which
later parts are checked against. References cannot be checked where they are read (a
``goto`` may name a step further down), so each is recorded with its node; the cross-checks
(:mod:`convo.flow.checks`) run over these records once the whole file is read.
"""

from __future__ import annotations

from collections.abc import Collection

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from convo.flow.spec import BUILTIN_ACTIONS, HookCall, Param, Text
from convo.flow.yamlnodes import NodeReader, did_you_mean

CHANNELS = ("sms", "voice")


class TextReader(NodeReader):
    """Reads texts and references of one flow file and records them for the cross-checks.

    ``hooks``: the bot's hook (action and validator) names, or None to leave them
    unchecked."""

    def __init__(self, name: str, text: str, hooks: Collection[str] | None) -> None:
        super().__init__(name, text)
        self.hooks = hooks
        self.languages: tuple[str, ...] = ()
        self.channels: tuple[str, ...] = ("sms",)
        self.params: dict[str, Param] = {}
        self.slot_names: set[str] = set()
        # Collected during the walk, checked after it (they need the whole file):
        self.refs: list[tuple[str, ScalarNode]] = []  # step names used by goto & co
        # (name, node, kind): kind is "action" (do:) or "validator" (validate:)
        self.hook_uses: list[tuple[str, ScalarNode, str]] = []
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
                did_you_mean(lang, self.languages, "declared"),
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
        if name is not None and not name.isidentifier():
            # Templates read a slot by its name ({{ day }}), so it must be one.
            self.report(
                node,
                f"{what}: {name!r} is not a valid slot name",
                "letters, digits and _, not starting with a digit (e.g. new_date)",
            )
            return None
        if name is not None:
            self.slot_names.add(name)
        return name

    def hook_calls(self, node: Node, what: str) -> tuple[HookCall, ...]:
        calls = []
        for name, item in self.strings(node, what):
            calls.append(HookCall(name, self.pos(item)))
            if name not in BUILTIN_ACTIONS:
                self.hook_uses.append((name, item, "action"))
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


def _is_mixed(node: SequenceNode) -> bool:
    """True for a list of ``{lang, text}`` mappings (one mixed-language text)."""
    return bool(node.value) and all(
        isinstance(item, MappingNode)
        and {k.value for k, _ in item.value if isinstance(k, ScalarNode)} == {"lang", "text"}
        for item in node.value
    )
