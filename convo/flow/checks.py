"""Cross-checks of a flow file: what can only be checked once the whole file is read.

While reading, :class:`~convo.flow.texts_reader.TextReader` records every step name, template,
condition and hook name it meets, with its node. :class:`CrossChecks` then checks them
against the whole file:

- every ``goto`` & co names a step, and every step can be reached from ``start`` or an
  ``anytime`` handler;
- every template and condition compiles (Jinja2), and uses only declared variables: the
  context names, slots (``slots:`` and ``save_as`` names), declared ``params.X`` and the
  template globals; each problem is placed on the name inside the text;
- every hook name is one the bot registers (when the bot's hook names are known; otherwise
  one warning says they are unchecked).

Missing translations and the voice rules of steps (voice-only verbs, recording consent) are
checked where they are read, since they need nothing beyond the node at hand.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from yaml.nodes import ScalarNode

from convo.flow.spec import Anytime, Step
from convo.flow.templates import TEMPLATES
from convo.flow.texts_reader import TextReader
from convo.flow.yamlnodes import closest, did_you_mean

CONTEXT_NAMES = frozenset({"contact", "params", "slots", "lang", "answer"})
# What speech.py's context gives; ``fields`` holds the contact record's own attributes.
CONTACT_FIELDS = frozenset({"number", "lang", "name", "timezone", "fields"})
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})  # slots.get("x") is fine
_CONTACT = re.compile(r"\bcontact\b")
_CONTACT_HELD = re.compile(r"\bcontact\.(?:number|lang)\b")  # what a session holds


class CrossChecks(TextReader):
    """The checks that run after the walk over what :class:`TextReader` recorded."""

    def check_refs(self, steps: Mapping[str, object]) -> None:
        """Every recorded step name is one of ``steps`` (unchecked when there are none)."""
        if not steps:
            return
        for name, node in self.refs:
            if name not in steps:
                self.report(node, f"unknown step {name!r}", did_you_mean(name, steps, "steps"))

    def check_reachable(
        self, steps: Mapping[str, tuple[Step, ScalarNode]], start: str, anytime: Sequence[Anytime]
    ) -> None:
        """Every step can be reached from ``start`` or an ``anytime`` handler's goto."""
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

    def check_templates(self) -> None:
        """Every template and condition compiles and uses only declared names."""
        allowed = CONTEXT_NAMES | self.slot_names | TEMPLATES.global_names
        for source, node in self.templates:
            problem = TEMPLATES.syntax_error(source)
            if problem is not None:
                line, col = self.template_line(node, problem[0])
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
                close = closest(name, set(allowed) | {f"params.{p}" for p in self.params})
                hint = f"did you mean {close!r}? " if close else ""
                hint += "declare it under slots: or save it with save_as"
            line, col = self.find(node, name)
            self.report_at(line, col, f"undeclared variable {name!r} in {kind}", hint)
        for base, attr in sorted(TEMPLATES.attribute_uses(source, expression=expr)):
            if base == "params" and attr not in self.params:
                hint = did_you_mean(attr, self.params, "declared params") or "no params declared"
                line, col = self.find(node, f"params.{attr}")
                self.report_at(line, col, f"unknown param 'params.{attr}' in {kind}", hint)
            elif base == "contact" and attr not in CONTACT_FIELDS:
                line, col = self.find(node, f"contact.{attr}")
                self.report_at(
                    line,
                    col,
                    f"unknown contact field 'contact.{attr}' in {kind}",
                    did_you_mean(attr, sorted(CONTACT_FIELDS), "contact has"),
                )
            elif base == "slots" and attr not in self.slot_names and attr not in _DICT_METHODS:
                hint = did_you_mean(attr, self.slot_names, "known slots") or (
                    "slots are save_as names and the slots: list"
                )
                line, col = self.find(node, f"slots.{attr}")
                self.report_at(line, col, f"unknown slot 'slots.{attr}' in {kind}", hint)

    def reads_contact(self) -> bool:
        """Whether running the flow needs the contact's record (``FlowSpec.reads_contact``):
        a template or condition names ``contact`` other than as ``contact.number`` or
        ``contact.lang`` (which the conversation itself holds), or a bot hook, which sees
        the whole contact, is called. Read from the sources as text, so a doubt (the word
        in plain text) counts as a use."""
        if self.hook_uses:
            return True
        sources = [source for source, _ in self.templates + self.expressions]
        return any(
            len(_CONTACT.findall(source)) > len(_CONTACT_HELD.findall(source)) for source in sources
        )

    def check_hooks(self) -> None:
        """Every hook name is one the bot registers; one warning when they are unknown."""
        if not self.hook_uses:
            return
        if self.hooks is None:
            names = list(dict.fromkeys(name for name, _, _ in self.hook_uses))
            self.report(
                self.hook_uses[0][1],
                f"hook names are unchecked: {', '.join(names)} (pass --bot to check)",
                warning=True,
            )
            return
        # A mapping says what each name is (Bot.hook_names); a plain collection only names.
        kinds = self.hooks if isinstance(self.hooks, Mapping) else None
        for name, node, kind in self.hook_uses:
            if name not in self.hooks:
                hint = did_you_mean(name, sorted(self.hooks), "the bot has")
                self.report(node, f"unknown hook {name!r}: the bot registers no such action "
                            "or validator", hint or "the bot registers no hooks")  # fmt: skip
            elif kinds is not None and kinds[name] not in (kind, "any"):
                where = "do:" if kind == "action" else "validate:"
                article = {"action": "an action", "validator": "a validator"}
                self.report(
                    node,
                    f"hook {name!r} is registered as {article[kinds[name]]}, "
                    f"but {where} needs {article[kind]}",
                    f"register it with @bot.{kind}, or use it under "
                    f"{'validate:' if kind == 'action' else 'do:'}",
                )
