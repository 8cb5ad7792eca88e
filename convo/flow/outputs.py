"""What a turn produces, as neutral values, and the loaded flow a turn runs.

A :class:`~convo.flow.turn.Turn` appends :data:`Output` values in the order they happen:
:class:`Utterance` (the bot says something), :class:`AwaitInput` (the turn stopped at a
waiting ``ask``/``choose`` step) and, on calls, :class:`CallAction` (a voice-only verb). A
presenter per channel turns them into what the channel carries (``present_sms``: outbox
messages; ``present_voice``: call instructions), matching on :data:`Output`; nothing here
knows a provider, HTTP or the store. All output values are frozen.

:class:`LoadedFlow` is the other side of a turn: the flow spec with its state machine, built
once per flow at load time and shared, read-only, by every conversation on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from convo.flow.machine import FlowMachine
from convo.flow.spec import CallVerb, FlowSpec, WaitingVerb
from convo.values import value


@value
class Utterance:
    """Something the bot says. ``mixed`` holds rendered ``(lang, text)`` segments of a
    mixed-language voice prompt; ``prompt_for`` names the waiting step it asks for."""

    text: str
    lang: str
    step: str
    media: tuple[str, ...] = ()
    mixed: tuple[tuple[str, str], ...] = ()
    prompt_for: str | None = None


@dataclass(frozen=True, slots=True)
class AwaitInput:
    """The turn stopped at a waiting step (``ask``/``choose``)."""

    step: str
    verb: WaitingVerb


@dataclass(frozen=True, slots=True)
class CallAction:
    """A voice-only verb reached on a call: ``dial``, ``record``, ``conference``, ``hangup``
    or a ``handoff`` (dialled as the queue's number). ``target`` is the rendered number/room."""

    step: str
    verb: CallVerb
    target: str = ""


Output = Utterance | AwaitInput | CallAction


@dataclass(slots=True)
class LoadedFlow:
    """A flow ready to run: its spec and its (shared) machine."""

    spec: FlowSpec
    machine: FlowMachine

    @classmethod
    def build(cls, spec: FlowSpec) -> LoadedFlow:
        """Build the flow's machine (raises what :class:`FlowMachine` raises)."""
        return cls(spec, FlowMachine(spec))
