"""Steps, read from the ``steps:`` mapping of a flow file.

A step is one main verb (see :mod:`convo.flow.verbs_reader`) plus what happens around it:
``do`` (hook calls), ``then`` / ``goto`` (where to go next, with optional ``if``
conditions), ``end`` and ``media``. :class:`StepReader` checks the rules that concern a step
as a whole: one main verb per step, voice-only verbs need the voice channel, a step must wait,
go on or end, every menu option needs somewhere to go, and a branch after an unconditional
one is never taken. Step names used by ``goto`` are only recorded here; whether they exist
and can be reached is checked once the whole file is read (:mod:`convo.flow.checks`).
"""

from __future__ import annotations

from yaml.nodes import Node, ScalarNode, SequenceNode

from convo.flow.spec import Branch, Choose, Step, Verb
from convo.flow.verbs_reader import MAIN_VERBS, VOICE_VERBS, VerbReader
from convo.flow.yamlnodes import as_scalar

STEP_KEYS = (*MAIN_VERBS, "do", "then", "goto", "end", "media")


class StepReader(VerbReader):
    """Reads the steps of a flow file (see the module docstring)."""

    def read_steps(self, node: Node) -> dict[str, tuple[Step, ScalarNode]]:
        """Every step of the ``steps:`` mapping, by name, with its name's key node."""
        entries = self.fields(node, "steps", None)
        if entries is None:
            return {}
        if not entries:
            self.report(node, "steps: a flow needs at least one step")
        return {name: (self._step(name, key, value), key) for name, (key, value) in entries.items()}

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
            verb = self.read_verb(verbs[0], verb_node, f"{where}.{verbs[0]}", self.pos(verb_key))
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
        if not (step.stops or then or end):
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
                    self.expressions.append((condition, as_scalar(entry["if"][1])))
            if target is not None:
                branches.append(Branch(target, self.pos(item), condition))
        return tuple(branches)
