"""The one module that imports ``transitions``: a flow's legal moves as a state machine.

One :class:`FlowMachine` is built per flow at load time (about a millisecond) and shared by
every conversation on that flow; no machine is ever built per message. The machine has one
state per step and one ``go_<step>`` trigger per edge the flow declares (``then``/``goto``,
menu options, ``on_max_attempts``, ``on_timeout``, ``on_fail``, and ``anytime`` gotos, which
are legal from every step); building it checks the graph (every edge's ends are steps).

At run time the engine asks :meth:`FlowMachine.move` to move a conversation. A move is
looked up in the machine's own transition table, read once after the build: firing the
trigger through transitions for every turn cost ~20 µs (a fifth of a whole turn) for the same
answer. A move the flow does not declare is a bug in the engine and raises
``FlowRuntimeError``. :meth:`FlowMachine.fire` runs the real trigger on a cursor model, for
tests that check the table and the machine agree.
"""

from __future__ import annotations

from transitions import Machine, MachineError

from convo.exceptions import FlowRuntimeError
from convo.flow.spec import FlowSpec

ANY = "*"


class _Cursor:
    """The machine's only model; ``state`` is set by transitions."""

    state: str


def _trigger(dest: str) -> str:
    return f"go_{dest}"


def edges(spec: FlowSpec) -> list[tuple[str, str]]:
    """Every declared ``(source, dest)`` edge; ``source`` is ``*`` for anytime gotos."""
    out: list[tuple[str, str]] = []
    for name, step in spec.steps.items():
        out.extend((name, dest) for dest, _ in step.targets())
    out.extend((ANY, a.goto) for a in spec.anytime if a.goto)
    return list(dict.fromkeys(out))  # unique, in declaration order


class FlowMachine:
    """The legal moves of one flow. Not thread-safe by design: use it from one event loop."""

    def __init__(self, spec: FlowSpec) -> None:
        self.spec = spec
        self._edges = edges(spec)
        self._cursor = _Cursor()
        self._machine = Machine(
            model=self._cursor,
            states=list(spec.steps),
            initial=spec.start,
            transitions=[
                {"trigger": _trigger(dest), "source": src, "dest": dest}
                for src, dest in self._edges
            ],
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        # The legal (source, dest) pairs, as the machine holds them (a wildcard source is
        # expanded by transitions to every state).
        self._legal: frozenset[tuple[str, str]] = frozenset(
            (t.source, t.dest)
            for event in self._machine.events.values()
            for transitions in event.transitions.values()
            for t in transitions
            if t.dest is not None  # internal transitions (none here) have no destination
        )

    def move(self, current: str, dest: str) -> str:
        """Move from step ``current`` to step ``dest``; returns ``dest``.

        Raises ``FlowRuntimeError`` when the flow declares no such move.
        """
        if (current, dest) not in self._legal:
            raise FlowRuntimeError(
                f"flow {self.spec.id!r} has no move from step {current!r} to {dest!r}"
            )
        return dest

    def fire(self, current: str, dest: str) -> str:
        """:meth:`move`, done by firing the transitions trigger (slower; for checks)."""
        self._machine.set_state(current, self._cursor)
        try:
            self._machine.events[_trigger(dest)].trigger(self._cursor)
        except (KeyError, MachineError) as exc:
            raise FlowRuntimeError(
                f"flow {self.spec.id!r} has no move from step {current!r} to {dest!r}"
            ) from exc
        return self._cursor.state

    def can_move(self, current: str, dest: str) -> bool:
        return (current, dest) in self._legal

    def mermaid(self) -> str:
        """A Mermaid state diagram of the flow (``convo graph``).

        Written here rather than with transitions' ``GraphMachine(graph_engine="mermaid")``:
        that one expands ``*`` (anytime) edges to every step and adds styling noise, which
        makes a 20-step flow unreadable; here anytime gotos become one note each.
        """
        lines = ["stateDiagram-v2", f"    [*] --> {self.spec.start}"]
        for src, dest in self._edges:
            if src == ANY:
                continue
            lines.append(f"    {src} --> {dest}")
        for a in self.spec.anytime:
            if a.goto:
                words = sorted({w for ws in a.keywords.values() for w in ws}) or [a.pattern or "?"]
                lines.append(f"    note left of {a.goto}: anytime {' / '.join(words)}")
        for name, step in self.spec.steps.items():
            if step.end:
                lines.append(f"    {name} --> [*]")
        return "\n".join(lines) + "\n"
