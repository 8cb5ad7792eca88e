"""One turn of one conversation: walk the flow from an event to the next wait.

A :class:`Turn` changes the session object it is given (a fresh copy from the store) and the
engine saves it only when the turn completes: when anything fails half-way (a hook raises, a
template cannot render) the engine drops it and the stored conversation stays where it was.
It produces neutral :data:`Output` values; the engine turns them into ``OutboundMessage``
values (SMS) and the voice layer into call instructions. Nothing here knows a provider, HTTP
or the store.

Events a turn starts from: :meth:`Turn.begin` (a new conversation, optionally with the text
that opened it), :meth:`Turn.answer` (the contact replied), :meth:`Turn.timeout` (a durable
step timeout fired) and, on calls, :meth:`Turn.silence`, :meth:`Turn.recorded` and
:meth:`Turn.dialled`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from convo.bot import Bot, Conversation
from convo.exceptions import FlowRuntimeError, HookError
from convo.flow.expect import match_option, match_words, parse_answer
from convo.flow.machine import FlowMachine
from convo.flow.spec import (
    Anytime,
    Ask,
    Choose,
    Conference,
    Dial,
    FlowSpec,
    Handoff,
    Hangup,
    HookCall,
    Record,
    Retry,
    Say,
    Step,
    Text,
)
from convo.flow.templates import TEMPLATES
from convo.models import Contact, ConversationStatus, Session

log = logging.getLogger("convo.engine")

MAX_HOPS = 64  # steps walked in one turn without waiting: more means a goto loop


@dataclass(frozen=True, slots=True)
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
    verb: Ask | Choose


@dataclass(frozen=True, slots=True)
class CallAction:
    """A voice-only verb reached on a call: ``dial``, ``record``, ``conference``, ``hangup``
    or a ``handoff`` (dialled as the queue's number). ``target`` is the rendered number/room."""

    step: str
    verb: Dial | Record | Conference | Hangup | Handoff
    target: str = ""


Output = Utterance | AwaitInput | CallAction


@dataclass(slots=True)
class LoadedFlow:
    """A flow ready to run: its spec and its (shared) machine."""

    spec: FlowSpec
    machine: FlowMachine

    @classmethod
    def build(cls, spec: FlowSpec) -> LoadedFlow:
        return cls(spec, FlowMachine(spec))


DEFAULT_ERROR_TEXT = {
    "en": "Sorry, something went wrong on our side. Please try again later.",
    "nl": "Sorry, er ging bij ons iets mis. Probeer het later opnieuw.",
    "fr": "Désolé, une erreur s'est produite de notre côté. Veuillez réessayer plus tard.",
    "de": "Entschuldigung, bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es später.",
}


class Turn:
    """Advances one session copy; read ``outputs``, ``session``, ``opt_out``/``opt_in``."""

    def __init__(
        self,
        flow: LoadedFlow,
        session: Session,
        *,
        contact: Contact,
        bot: Bot | None,
        clock: Callable[[], float],
    ) -> None:
        self.flow = flow
        self.spec = flow.spec
        # The turn changes this object; stores hand out fresh copies and keep nothing until
        # save_turn, so a failed turn leaves the stored conversation as it was.
        self.session = session
        self.contact = contact
        self.bot = bot
        self.clock = clock
        self.outputs: list[Output] = []
        self.opt_out = False
        self.opt_in = False
        self.channel = session.key.channel

    # -- events --------------------------------------------------------------------------

    async def begin(self, text: str | None = None) -> None:
        """Start the conversation. The opening text is checked against ``anytime``
        handlers (so a first STOP opts out) but never taken as an answer to the start step."""
        if text is not None and await self._anytime(text, starting=True):
            return
        await self.enter(self.spec.start, moved=True)

    async def answer(self, text: str) -> None:
        """The contact replied ``text`` (SMS text, DTMF digits or recognised speech)."""
        if await self._anytime(text, starting=False):
            return
        step = self._step()
        verb = step.verb
        if isinstance(verb, Ask):
            await self._answer_ask(step, verb, text)
        elif isinstance(verb, Choose):
            await self._answer_choose(step, verb, text)
        else:
            # Not waiting (a conversation in a say/handoff step): nothing to answer.
            log.info("reply in non-waiting step %s of %s ignored", step.name, self.session.key)

    async def silence(self) -> None:
        """On a call: no input before the gather's timeout; counts like an unusable answer."""
        step = self._step()
        if isinstance(step.verb, Ask | Choose):
            await self._unusable(step, step.verb.retry, None)

    async def recorded(self, url: str | None, duration: float | None) -> None:
        """On a call: the recording of the current ``record`` step is in (or not, None)."""
        step = self._step()
        verb = step.verb
        if not isinstance(verb, Record):
            return
        if verb.save_as:
            self.session.slots[verb.save_as] = (
                {"url": url, "duration": duration} if url is not None else None
            )
        await self._continue(step)

    async def dialled(self, ok: bool) -> None:
        """On a call: the ``dial`` (or handoff) of the current step ended; ``ok`` is False
        when the other side was busy, did not answer or the call failed."""
        step = self._step()
        verb = step.verb
        if isinstance(verb, Dial) and not ok and verb.on_fail:
            await self.goto(verb.on_fail)
        elif isinstance(verb, Handoff):
            self._end()
        else:
            await self._continue(step)

    async def _continue(self, step: Step) -> None:
        nxt = self._next(step)
        if nxt is not None:
            await self.goto(nxt)

    async def timeout(self) -> None:
        """The durable timeout of the current waiting step fired."""
        step = self._step()
        self.session.timer_due = None
        self.session.timer_step = None
        if not isinstance(step.verb, Ask | Choose):
            return
        target = step.verb.retry.on_timeout
        if target:
            await self.goto(target)
        else:
            self._prompt(step, step.verb.text)
            self.outputs.append(AwaitInput(step.name, step.verb))

    # -- walking -------------------------------------------------------------------------

    async def goto(self, target: str) -> None:
        self.flow.machine.move(self.session.step, target)
        await self.enter(target, moved=True)

    async def enter(self, name: str, *, moved: bool = False) -> None:
        """Enter step ``name`` and keep walking until a step waits or the flow ends."""
        for _ in range(MAX_HOPS):
            if not moved:
                self.flow.machine.move(self.session.step, name)
            moved = False
            step = self.spec.steps[name]
            s = self.session
            s.step, s.attempts, s.timer_due, s.timer_step = name, 0, None, None
            nxt = await self._run_step(step)
            if nxt is None:
                return
            name = nxt
        raise FlowRuntimeError(
            f"flow {self.spec.id!r}: more than {MAX_HOPS} steps without waiting (a goto loop?)"
        )

    async def _run_step(self, step: Step) -> str | None:
        """Run a freshly entered step; return the next step to enter, or None to stop."""
        verb = step.verb
        if isinstance(verb, Ask | Choose):
            self._prompt(step, verb.text)
            if verb.retry.timeout:
                self.session.timer_due = self.clock() + verb.retry.timeout
                self.session.timer_step = step.name
            self.outputs.append(AwaitInput(step.name, verb))
            return None
        if isinstance(verb, Say):
            await self._do(step.do)  # hooks first, so the text can use what they set
            self._say(step, verb.text, media=self._media(step))
            return self._next(step)
        if isinstance(verb, Handoff):
            if verb.say is not None:
                self._say(step, verb.say)
            await self._do(step.do)
            self.session.status = ConversationStatus.HANDOFF
            if self.channel == "voice":
                self.outputs.append(CallAction(step.name, verb, verb.number or ""))
            return None
        elif isinstance(verb, Dial | Record | Conference | Hangup):
            return await self._call_verb(step, verb)
        await self._do(step.do)
        return self._next(step)

    async def _call_verb(self, step: Step, verb: Dial | Record | Conference | Hangup) -> str | None:
        if isinstance(verb, Record) and isinstance(verb.consent, Text):
            self._say(step, verb.consent)  # the GDPR notice comes before the instructions
        if verb.text is not None:
            self._say(step, verb.text)
        if self.channel != "voice":
            # A voice-only verb reached over SMS (a flow serving both channels): the call part
            # cannot happen, so a dial fails over to on_fail and the rest just continue.
            await self._do(step.do)
            if isinstance(verb, Dial) and verb.on_fail:
                return verb.on_fail
            if isinstance(verb, Hangup):
                self._end()
                return None
            return self._next(step)
        target = ""
        if isinstance(verb, Dial):
            target = self.render(verb.to)
        elif isinstance(verb, Conference):
            target = self.render(verb.room)
        await self._do(step.do)
        self.outputs.append(CallAction(step.name, verb, target))
        if isinstance(verb, Hangup):
            self._end()
        return None  # the call's next webhook (dial/record result) continues the flow

    def _next(self, step: Step) -> str | None:
        for branch in step.then:
            if branch.condition is None or self.evaluate(branch.condition):
                return branch.goto
        self._end()
        return None

    def _end(self) -> None:
        self.session.status = ConversationStatus.ENDED
        self.session.timer_due = None
        self.session.timer_step = None
        return None

    # -- answers -------------------------------------------------------------------------

    async def _answer_ask(self, step: Step, verb: Ask, text: str) -> None:
        today = dt.date.fromtimestamp(self.clock())
        answer = parse_answer(
            verb.expect, text, self.session.lang, channel=self.channel, today=today
        )
        if not answer.ok:
            await self._unusable(step, verb.retry, None)
            return
        if verb.validate:
            verdict = await self._validate(verb.validate, answer.value)
            if verdict is not True:
                message = verdict if isinstance(verdict, str) else None
                await self._unusable(step, verb.retry, message, invalid=verb.invalid)
                return
        if verb.save_as:
            self.session.slots[verb.save_as] = answer.value
        await self._leave(step, None)

    async def _answer_choose(self, step: Step, verb: Choose, text: str) -> None:
        option = match_option(verb.options, text, self.session.lang, channel=self.channel)
        if option is None:
            await self._unusable(step, verb.retry, None)
            return
        if option.set_lang:
            self.session.lang = option.set_lang
        if verb.save_as:
            self.session.slots[verb.save_as] = option.key or option.set_lang
        await self._leave(step, option.goto)

    async def _leave(self, step: Step, target: str | None) -> None:
        self.session.timer_due = None
        self.session.timer_step = None
        await self._do(step.do)
        if target:
            await self.goto(target)
        else:
            await self._continue(step)

    async def _unusable(
        self, step: Step, retry: Retry, message: str | None, *, invalid: Text | None = None
    ) -> None:
        s = self.session
        s.attempts += 1
        if retry.max_attempts is not None and s.attempts >= retry.max_attempts:
            if retry.on_max_attempts:
                await self.goto(retry.on_max_attempts)
            else:
                self._end()
            return
        assert isinstance(step.verb, Ask | Choose)
        # What a validator said (or the step's `invalid` text) stands in for the reprompt.
        if message:
            self._say(step, message, literal=True, prompt_for=step.name)
        elif invalid is not None:
            self._say(step, invalid, prompt_for=step.name)
        elif retry.reprompt:
            self._prompt(step, retry.reprompt[min(s.attempts, len(retry.reprompt)) - 1])
        else:
            self._prompt(step, step.verb.text)
        self.outputs.append(AwaitInput(step.name, step.verb))

    async def _anytime(self, text: str, *, starting: bool) -> bool:
        handler = self._match_anytime(text)
        if handler is None:
            return False
        await self._do(handler.do)
        current = self._step()
        if handler.say is not None:
            self._say(current, handler.say)
        if handler.goto:
            await self.goto(handler.goto)
        elif starting:
            await self.enter(self.spec.start, moved=True)
        elif isinstance(current.verb, Ask | Choose):
            self._prompt(current, current.verb.text)  # re-ask the current step
            self.outputs.append(AwaitInput(current.name, current.verb))
        return True

    def _match_anytime(self, text: str) -> Anytime | None:
        lang = self.session.lang
        for handler in self.spec.anytime:
            if handler.pattern and re.search(handler.pattern, text, re.IGNORECASE):
                return handler
            words = list(handler.keywords.get(lang, ()))
            for other, ws in handler.keywords.items():
                if other != lang:
                    words.extend(ws)
            if words and match_words(text, words):
                return handler
        return None

    # -- hooks ---------------------------------------------------------------------------

    def conversation(self) -> Conversation:
        s = self.session
        return Conversation(
            key=s.key,
            flow=s.flow,
            step=s.step,
            contact=self.contact,
            lang=s.lang,
            params=s.params,
            slots=s.slots,
        )

    async def _do(self, calls: tuple[HookCall, ...]) -> None:
        for call in calls:
            if call.name == "opt_out":
                self.opt_out, self.opt_in = True, False
            elif call.name == "opt_in":
                self.opt_in, self.opt_out = True, False
            elif call.name == "clear_slots":
                self.session.slots.clear()
            else:
                action = self.bot.actions.get(call.name) if self.bot else None
                if action is None:
                    raise HookError(f"{call.pos}: no action named {call.name!r} on this bot")
                try:
                    await action(self.conversation())
                except Exception as exc:
                    raise HookError(f"action {call.name!r} raised {exc!r}") from exc

    async def _validate(self, name: str, value: Any) -> bool | str:
        validator = self.bot.validators.get(name) if self.bot else None
        if validator is None:
            raise HookError(f"no validator named {name!r} on this bot")
        try:
            return await validator(self.conversation(), value)
        except Exception as exc:
            raise HookError(f"validator {name!r} raised {exc!r}") from exc

    # -- texts ---------------------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        s = self.session
        contact = {
            "number": self.contact.number,
            "lang": s.lang,
            "name": self.contact.name or s.contact_name,
            **self.contact.extra,
        }
        return {**s.slots, "contact": contact, "params": s.params, "slots": s.slots, "lang": s.lang}

    def render(self, source: str) -> str:
        return TEMPLATES.render(source, self.context())

    def evaluate(self, expression: str) -> Any:
        return TEMPLATES.evaluate(expression, self.context())

    def _render_text(self, text: Text) -> tuple[str, tuple[tuple[str, str], ...]]:
        lang = self.session.lang
        mixed: tuple[tuple[str, str], ...] = ()
        if text.mixed and self.channel == "voice":
            mixed = tuple((seg_lang, self.render(src)) for seg_lang, src in text.mixed)
        source = text.pick(lang, self.spec.default_lang, self.channel)
        rendered = self.render(source) if source is not None else ""
        return rendered, mixed

    def _say(
        self,
        step: Step,
        text: Text | str,
        *,
        literal: bool = False,
        media: tuple[str, ...] = (),
        prompt_for: str | None = None,
    ) -> None:
        mixed: tuple[tuple[str, str], ...] = ()
        if isinstance(text, str):
            rendered = text if literal else self.render(text)
        else:
            rendered, mixed = self._render_text(text)
        self.outputs.append(
            Utterance(rendered, self.session.lang, step.name, media, mixed, prompt_for)
        )

    def _prompt(self, step: Step, text: Text) -> None:
        self._say(step, text, media=self._media(step), prompt_for=step.name)

    def _media(self, step: Step) -> tuple[str, ...]:
        return tuple(self.render(url) for url in step.media)

    def _step(self) -> Step:
        return self.spec.steps[self.session.step]


def error_text(spec: FlowSpec, lang: str, context: Mapping[str, Any]) -> str:
    """The text said when a turn fails: the flow's ``error_text`` or convo's default."""
    if spec.error_text is not None:
        source = spec.error_text.pick(lang, spec.default_lang)
        if source is not None:
            try:
                return TEMPLATES.render(source, context)
            except Exception:  # the error text must never fail the error path
                log.exception("error_text of flow %s does not render", spec.id)
    return DEFAULT_ERROR_TEXT.get(lang, DEFAULT_ERROR_TEXT["en"])
