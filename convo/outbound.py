"""Starting conversations: flow F on number N from our line L, by text or by call.

:func:`start_conversation` is the one way the business starts a conversation: the admin
API (``POST /api/conversations``), the sandbox's ``POST /sandbox/conversations`` and
campaigns all call it, on a started :class:`~convo.runtime.Runtime`. In order, it

1. reads the number (``InvalidNumber`` when it cannot be one), the line (:class:`UnknownLine`
   when it is not ours or does not carry the channel: SMS needs the line's provider to send
   texts, voice a voice provider) and the flow (:class:`UnknownFlow`; default: the line's
   own). A flow without the channel, or a language the flow does not speak, is a
   ``FlowRuntimeError``;
2. refuses a number that opted out of the line (:class:`OptedOut`): nothing is sent;
3. picks the language: the one asked for, else the contact's (:class:`~convo.store.base.
   Contacts`), else the flow's default; ``nl-BE`` speaks a flow's ``nl``;
4. starts it. SMS: the flow's first turn runs and its texts are queued in the outbox in the
   same transaction as the new conversation, exactly like a reply (and a conversation
   already open on that line is replaced). Voice: the conversation is prepared as
   ``pending`` and the line's voice provider places the call (:func:`convo.dialer.dial`);
   the flow begins when the callee answers.

Params are checked against the flow's ``params`` (``FlowRuntimeError`` naming the param).
The result, :class:`StartedConversation`, is what the API answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from convo.exceptions import FlowRuntimeError, InvalidNumber, OptedOut, UnknownFlow, UnknownLine
from convo.models import Channel, ConversationKey, ConversationStatus, OutboundMessage, new_id
from convo.values import value

if TYPE_CHECKING:
    from convo.config import LineSettings
    from convo.dialer import CallOptions
    from convo.runtime import Runtime


@value
class StartedConversation:
    """A conversation :func:`start_conversation` started. ``id`` names this start;
    ``status`` is the conversation's (``active``, ``ended`` for a flow that says its piece
    and ends, ``pending`` for a call not answered yet); ``messages`` are the texts queued
    (SMS), ``call_id`` the provider's id of the call (voice)."""

    id: str
    key: ConversationKey
    flow: str
    status: ConversationStatus
    lang: str
    messages: tuple[OutboundMessage, ...] = ()
    call_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The admin API's answer: ``{"id", "to", "line", "flow", "channel", "status",
        "language"}`` plus ``messages`` (SMS: ``[{"id", "text"}]``, the texts queued) or
        ``call_id`` (voice)."""
        out: dict[str, Any] = {
            "id": self.id,
            "to": self.key.contact,
            "line": self.key.line,
            "flow": self.flow,
            "channel": self.key.channel,
            "status": self.status.value,
            "language": self.lang,
        }
        if self.key.channel == "sms":
            out["messages"] = [{"id": m.id, "text": m.text} for m in self.messages]
        else:
            out["call_id"] = self.call_id
        return out


async def start_conversation(
    runtime: Runtime,
    *,
    to: str,
    flow: str | None = None,
    line: str | None = None,
    channel: Channel = "sms",
    language: str | None = None,
    params: Mapping[str, Any] | None = None,
    region: str = "BE",
    call_options: CallOptions | None = None,
) -> StartedConversation:
    """Start ``flow`` on ``to`` from ``line`` over ``channel`` (module docstring).

    ``to`` is read in ``region`` when written without a country prefix; ``line`` None is
    the first line that carries ``channel``; ``call_options`` say how a call is placed
    (:class:`convo.dialer.CallOptions`; voice only). Raises ``InvalidNumber``, :class:`UnknownLine`,
    :class:`UnknownFlow`, :class:`OptedOut`, ``FlowRuntimeError`` (bad params, language or
    channel), ``StoreError`` and, for a call, the ``ProviderError`` tree."""
    from convo.sms.phone import normalize

    number = normalize(to, region)
    chosen = _line(runtime, line, channel)
    flow_id = flow or chosen.flow
    spec = runtime.flows.get(flow_id)
    if spec is None:
        known = ", ".join(sorted(runtime.flows)) or "none"
        raise UnknownFlow(f"no flow {flow_id!r} (flows: {known})")
    if channel not in spec.channels:
        raise FlowRuntimeError(
            f"flow {flow_id!r} has no {channel} channel (channels: {', '.join(spec.channels)})"
        )
    if language is not None and not _speaks(spec.languages, language):
        raise FlowRuntimeError(
            f"flow {flow_id!r} has no language {language!r} "
            f"(languages: {', '.join(spec.languages)})"
        )
    key = ConversationKey(chosen.number, channel, number)
    store = runtime.store
    if await store.is_suppressed(key.line, key.contact):
        raise OptedOut(f"{number} opted out of line {key.line}: nothing was sent")
    contact = await store.get_contact(number)
    lang = spec.language_for(language or (contact.lang if contact else None))
    if channel == "voice":
        from convo.dialer import dial

        provider = _voice_provider(runtime, chosen)
        call_id = await dial(
            runtime, provider, key, flow_id, params=params, lang=lang, options=call_options
        )
        return StartedConversation(
            new_id(), key, flow_id, ConversationStatus.PENDING, lang, call_id=call_id
        )
    name = contact.name if contact else None
    sent = await runtime.engine.start(key, flow_id, params=params, lang=lang, name=name)
    if not sent and await store.is_suppressed(key.line, key.contact):
        # engine.start found the number opted out under the conversation's lock: a STOP
        # that arrived between the check above and the start.
        raise OptedOut(f"{number} opted out of line {key.line}: nothing was sent")
    session = await store.get_session(key)
    if session is None:
        raise FlowRuntimeError(f"{key}: the conversation was not stored")
    if runtime.parts.serving:
        runtime.outbox.notify()
    return StartedConversation(new_id(), key, flow_id, session.status, session.lang, tuple(sent))


def _speaks(languages: tuple[str, ...], language: str) -> bool:
    """Whether a flow of ``languages`` speaks ``language``: as it is, or its primary
    subtag (``nl-BE`` is spoken by a flow of ``nl``, as FlowSpec.language_for picks)."""
    primary = language.replace("_", "-").split("-")[0].lower()
    return language in languages or any(lang.split("-")[0].lower() == primary for lang in languages)


def _line(runtime: Runtime, line: str | None, channel: Channel) -> LineSettings:
    """Our line ``line`` (E.164 or a sender name), or the first carrying ``channel``."""
    lines = runtime.settings.lines
    if line is None:
        for candidate in lines:
            if _carries(runtime, candidate, channel):
                return candidate
        raise UnknownLine(f"no line carries {channel} (lines: {_numbers(lines)})")
    wanted = line.strip()
    if not wanted.isalnum() or wanted.isdigit():  # a number, not a sender name
        from convo.sms.phone import normalize

        with contextlib.suppress(InvalidNumber):  # not a number: no line has it, said below
            wanted = normalize(wanted)
    for candidate in lines:
        if candidate.number == wanted:
            if not _carries(runtime, candidate, channel):
                raise UnknownLine(f"line {wanted} does not carry {channel}")
            return candidate
    raise UnknownLine(f"{line!r} is not one of our lines (lines: {_numbers(lines)})")


def _carries(runtime: Runtime, line: LineSettings, channel: Channel) -> bool:
    if channel == "sms":
        return line.provider in runtime.providers
    from convo.runtime import voice_provider_name

    name = voice_provider_name(runtime.settings, line)
    return name is not None and name in runtime.voice_providers


def _voice_provider(runtime: Runtime, line: LineSettings) -> str:
    from convo.runtime import voice_provider_name

    name = voice_provider_name(runtime.settings, line)
    assert name is not None  # _line checked that the line carries voice
    return name


def _numbers(lines: tuple[LineSettings, ...] | list[LineSettings]) -> str:
    return ", ".join(ln.number for ln in lines) or "none"
