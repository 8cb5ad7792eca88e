"""Phone calls: the same flows, answered with neutral call instructions.

:class:`CallRunner` sits beside the :class:`~convo.flow.engine.Engine` (same store,
flows and turns) and turns call webhooks into turns:

* ``answer``: a call was answered (an inbound call, or our outbound call) -> the flow begins;
* ``input``: a Gather's digits/speech (none = silence), a Record's recording, or a Dial's
  outcome, told apart by ``after`` (we put ``?after=gather|record|dial`` on the action URLs
  we hand out, so no provider field is needed for it);
* ``status``: the call ended -> the conversation is closed.

Each returns the instructions for that webhook (nothing provider-specific: the adapter
renders them, resolving locales and checking its limits). A turn's outputs become
instructions like this: what is said before a waiting step is a Say; the waiting step's own
prompt is nested in a Gather (DTMF and speech) followed by a Redirect to the input URL, so a
provider that falls through a silent Gather still reports the silence; ``dial`` / ``handoff``
become a Dial whose outcome comes back to the input URL, ``record`` a Record, ``conference``
a Conference; a flow that ends hangs up.

Every conversation on a call is keyed ``(line, "voice", caller)``. Texts are escaped by the
renderer, never here: anything a caller said reaches a Say only as data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from convo.flow.engine import Engine
from convo.flow.outputs import AwaitInput, CallAction, LoadedFlow, Output, Utterance
from convo.flow.spec import Ask, Choose, FlowSpec
from convo.flow.spec import Conference as ConferenceStep
from convo.flow.spec import Dial as DialStep
from convo.flow.spec import Handoff as HandoffStep
from convo.flow.spec import Hangup as HangupStep
from convo.flow.spec import Record as RecordStep
from convo.flow.turn import Turn
from convo.models import (
    CallEvent,
    Contact,
    ConversationKey,
    ConversationStatus,
    Session,
)
from convo.voice.instructions import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Instruction,
    Prompt,
    Record,
    Redirect,
    Say,
)

log = logging.getLogger("convo.calls")

After = Literal["gather", "record", "dial"]
FAILED_DIALS = ("busy", "no-answer", "failed", "canceled")

#: TTS locale of a flow language when the flow's ``voice:`` section does not say.
DEFAULT_LOCALES = {"nl": "nl-NL", "fr": "fr-BE", "de": "de-DE", "en": "en-GB"}


def locale_of(spec: FlowSpec, lang: str) -> tuple[str, str, tuple[str, ...]]:
    """``(locale, voice, fallbacks)`` for a flow language."""
    settings = spec.voice.get(lang)
    if settings is not None:
        return settings.locale, settings.voice or "", settings.fallbacks
    return DEFAULT_LOCALES.get(lang, lang), "", ()


class CallRunner:
    """Runs calls on an engine's flows and store. ``input_url`` is the provider's
    ``/webhooks/P/voice/input`` URL built from ``server.public_url``."""

    def __init__(self, engine: Engine, *, handoff_numbers: Mapping[str, str] | None = None):
        self.engine = engine
        self.handoff_numbers = dict(handoff_numbers or {})

    async def prepare_outbound(
        self,
        key: ConversationKey,
        flow_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        lang: str | None = None,
    ) -> None:
        """Before placing a call: remember which flow (and params) the answer starts."""
        from convo.flow.params import check_params

        loaded = self.engine.flow(flow_id)
        checked = check_params(loaded.spec, params or {})
        spec = loaded.spec
        session = Session(
            key=key,
            flow=spec.id,
            flow_version=spec.version,
            step=spec.start,
            lang=lang if lang in spec.languages else spec.default_lang,
            params=checked,
            status=ConversationStatus.PENDING,
        )
        async with self.engine.store.lock(key):
            await self.engine.store.save_turn(session)

    async def answer(self, event: CallEvent, input_url: str) -> list[Instruction]:
        """The call was answered: begin the line's flow (or the prepared outbound one)."""
        key = event.key
        async with self.engine.store.lock(key):
            session = await self.engine.store.get_session(key)
            if session is None or session.status is not ConversationStatus.PENDING:
                flow_id = self.engine.flow_for_line(key.line)
                if flow_id is None:
                    log.warning(
                        "call %s to line %s: no flow for that line", event.call_id, key.line
                    )
                    return [Hangup()]
                loaded = self.engine.flow(flow_id)
                known = await self.engine.contacts(key.contact) if self.engine.contacts else None
                session = self.engine._new_session(
                    key, loaded, lang=known.lang if known else None, params=None, name=None
                )
            else:
                session.status = ConversationStatus.ACTIVE
                loaded = self.engine.flow(session.flow)
            return await self._turn(loaded, session, input_url, lambda t: t.begin(None))

    async def input(self, event: CallEvent, input_url: str, after: After) -> list[Instruction]:
        """A Gather, Record or Dial result for the call's current step."""
        key = event.key
        async with self.engine.store.lock(key):
            session = await self.engine.store.get_session(key)
            if session is None or session.status is not ConversationStatus.ACTIVE:
                if session is not None and session.status is ConversationStatus.HANDOFF:
                    return [Hangup()]  # the agent's leg ended: nothing more to do
                log.warning("input for call %s without an active conversation", event.call_id)
                return [Hangup()]
            loaded = self.engine.flow(session.flow)
            if after == "record":
                url, duration = event.recording_url, event.recording_duration
                return await self._turn(
                    loaded, session, input_url, lambda t: t.recorded(url, duration)
                )
            if after == "dial":
                ok = event.dial_status is None or event.dial_status.value not in FAILED_DIALS
                return await self._turn(loaded, session, input_url, lambda t: t.dialled(ok))
            answer = event.digits or event.speech
            if answer is None:
                return await self._turn(loaded, session, input_url, lambda t: t.silence())
            return await self._turn(loaded, session, input_url, lambda t: t.answer(answer))

    async def status(self, event: CallEvent) -> None:
        """A call status webhook: a final status closes the conversation."""
        if not event.status.final:
            return
        key = event.key
        async with self.engine.store.lock(key):
            session = await self.engine.store.get_session(key)
            if session is not None and session.status is not ConversationStatus.ENDED:
                session.status = ConversationStatus.ENDED
                session.timer_due = session.timer_step = None
                session.updated_at = self.engine.clock()
                await self.engine.store.save_turn(session)

    async def _turn(
        self, loaded: LoadedFlow, session: Session, input_url: str, event: Any
    ) -> list[Instruction]:
        contact = Contact(session.key.contact, session.lang, session.contact_name)
        turn = Turn(loaded, session, contact=contact, bot=self.engine.bot, clock=self.engine.clock)
        try:
            await event(turn)
        except Exception as exc:  # a failing hook/template must still answer the call
            log.error(
                "call turn failed for %s in %s/%s: %s", session.key, session.flow, session.step, exc
            )
            from convo.flow.speech import error_text

            text = error_text(loaded.spec, session.lang, turn.context())
            locale, voice, fallbacks = locale_of(loaded.spec, session.lang)
            return [Say(text, locale, voice, language_fallbacks=fallbacks), Hangup()]
        new = turn.session
        new.updated_at = self.engine.clock()
        await self.engine.store.save_turn(new)
        return instructions(
            loaded.spec,
            turn.outputs,
            input_url=input_url,
            handoff_numbers=self.handoff_numbers,
        )


def _say(spec: FlowSpec, utterance: Utterance) -> list[Say]:
    if utterance.mixed:
        out = []
        for lang, text in utterance.mixed:
            locale, voice, fallbacks = locale_of(spec, lang)
            if text.strip():
                out.append(Say(text, locale, voice, language_fallbacks=fallbacks))
        return out
    if not utterance.text.strip():
        return []
    locale, voice, fallbacks = locale_of(spec, utterance.lang)
    return [Say(utterance.text, locale, voice, language_fallbacks=fallbacks)]


def _gather(
    spec: FlowSpec, wait: AwaitInput, prompts: Sequence[Prompt], lang: str, input_url: str
) -> Gather:
    verb = wait.verb
    num_digits: int | None = None
    hints: tuple[str, ...] = ()
    finish = "#"
    if isinstance(verb, Choose):
        keys = [o.key for o in verb.options if o.key]
        if keys and all(len(k) == 1 for k in keys):
            num_digits, finish = 1, ""
        hints = tuple(w for o in verb.options for ws in o.words.values() for w in ws)
    elif isinstance(verb, Ask):
        if verb.expect.kind == "yes_no":
            num_digits, finish = 1, ""
        elif verb.expect.kind == "digits" and verb.expect.digits:
            num_digits, finish = verb.expect.digits, ""
    locale, _, _ = locale_of(spec, lang)
    return Gather(
        input=frozenset({"dtmf", "speech"}),
        num_digits=num_digits,
        finish_on_key=finish,
        timeout=verb.retry.gather_timeout or 5,
        speech_language=locale,
        hints=tuple(dict.fromkeys(hints)),
        prompts=tuple(prompts),
        action=f"{input_url}?after=gather",
    )


def instructions(
    spec: FlowSpec,
    outputs: Sequence[Output],
    *,
    input_url: str,
    handoff_numbers: Mapping[str, str] | None = None,
) -> list[Instruction]:
    """The call instructions for one turn's outputs (see the module docstring); a turn
    that leaves nothing to wait for ends in one Hangup."""
    out: list[Instruction] = []
    prompts: list[Prompt] = []
    for item in outputs:
        if isinstance(item, Utterance):
            says = _say(spec, item)
            if item.prompt_for is not None:
                prompts.extend(says)
            else:
                out.extend(prompts)  # a prompt not followed by its wait: just say it
                prompts = []
                out.extend(says)
        elif isinstance(item, AwaitInput):
            lang = next((s.language for s in prompts if isinstance(s, Say)), "")
            lang_code = next((k for k, v in spec.voice.items() if v.locale == lang), "")
            out.append(_gather(spec, item, prompts, lang_code or spec.default_lang, input_url))
            out.append(Redirect(f"{input_url}?after=gather"))
            return out  # the call waits here
        elif isinstance(item, CallAction):
            out.extend(prompts)
            prompts = []
            out.extend(_call_action(item, input_url, handoff_numbers or {}))
            if not isinstance(item.verb, HangupStep):
                return out
    out.extend(prompts)
    if not out or not isinstance(out[-1], Hangup):  # ended, or nothing left to wait for
        out.append(Hangup())
    return out


def _call_action(
    action: CallAction, input_url: str, handoff_numbers: Mapping[str, str]
) -> list[Instruction]:
    verb = action.verb
    if isinstance(verb, DialStep):
        return [
            Dial(
                action.target,
                caller_id=verb.caller_id or "",
                timeout=verb.timeout,
                time_limit=int(verb.time_limit) if verb.time_limit else None,
                action=f"{input_url}?after=dial",
            )
        ]
    if isinstance(verb, HandoffStep):
        number = action.target or handoff_numbers.get(verb.queue, "")
        if not number:
            log.warning("handoff to queue %r on a call, but it has no number", verb.queue)
            return [Hangup()]
        return [Dial(number, action=f"{input_url}?after=dial")]
    if isinstance(verb, RecordStep):
        return [
            Record(
                max_length=int(verb.max),
                finish_on_key=verb.finish_on_key,
                beep=verb.beep,
                action=f"{input_url}?after=record",
            )
        ]
    if isinstance(verb, ConferenceStep):
        return [
            Conference(
                action.target,
                start_on_enter=verb.start_on_enter,
                end_on_exit=verb.end_on_exit,
                muted=verb.muted,
                record=verb.record,
            )
        ]
    return [Hangup()]
