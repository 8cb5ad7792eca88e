"""One turn of one conversation: walk the flow from an event to the next wait.

A :class:`Turn` changes the session object it is given (a fresh copy from the store); the
pipeline (:mod:`convo.flow.pipeline`) has it saved only when the turn completes: when anything
fails half-way (a hook raises, a template cannot render) the turn is dropped and the stored
conversation stays where it was. It produces neutral :data:`~convo.flow.outputs.Output` values
in ``outputs``, which a presenter per channel turns into texts or call instructions. Nothing
here knows a provider, HTTP or the store.

Events a turn starts from: :meth:`Turn.begin` (a new conversation, optionally with the text
that opened it), :meth:`Turn.answer` (the contact replied), :meth:`Turn.timeout` (a durable
step timeout fired) and, on calls, :meth:`Turn.silence`, :meth:`Turn.recorded` and
:meth:`Turn.dialled`. The turn walks steps (every move checked by the flow's machine) and
judges answers (parse, validate, retry, ``anytime`` handlers); it leaves running hooks to
:class:`~convo.flow.hooks.Hooks` and rendering texts to :class:`~convo.flow.speech.Speaker`.
Walking more than ``MAX_HOPS`` steps without waiting raises ``FlowRuntimeError``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, assert_never

from convo.bot import Bot
from convo.exceptions import FlowRuntimeError
from convo.flow import patterns
from convo.flow.expect import Answer, match_option, match_words, parse_answer
from convo.flow.hooks import Hooks
from convo.flow.outputs import AwaitInput, CallAction, LoadedFlow, Output
from convo.flow.spec import (
    Anytime,
    Ask,
    Choose,
    Conference,
    Dial,
    FlowSpec,
    Handoff,
    Hangup,
    Record,
    Retry,
    Say,
    Step,
    Text,
    WaitingVerb,
)
from convo.flow.speech import Speaker
from convo.media import Media
from convo.models import Contact, ConversationStatus, Session

log = logging.getLogger("convo.engine")

MAX_HOPS = 64  # steps walked in one turn without waiting: more means a goto loop


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
        self.channel = session.key.channel
        self.hooks = Hooks(bot, session, contact)
        self.speaker = Speaker(flow.spec, session, contact)

    @property
    def opt_out(self) -> bool:
        """A hook called ``opt_out`` (and no ``opt_in`` after it): suppress the contact."""
        return self.hooks.opt_out

    @property
    def opt_in(self) -> bool:
        """A hook called ``opt_in`` (and no ``opt_out`` after it): lift the suppression."""
        return self.hooks.opt_in

    def context(self) -> dict[str, Any]:
        """The session's render context as it is now (the engine renders its error text
        with it when the turn fails)."""
        return self.speaker.context()

    # -- events --------------------------------------------------------------------------

    async def begin(self, text: str | None = None) -> None:
        """Start the conversation. The opening text is checked against ``anytime``
        handlers (so a first STOP opts out) but never taken as an answer to the start step."""
        if text is not None and await self._anytime(text, starting=True):
            return
        await self.enter(self.spec.start, moved=True)

    async def answer(self, text: str, media: tuple[Media, ...] = ()) -> None:
        """The contact replied ``text`` (SMS text, DTMF digits or recognised speech) and
        ``media`` (an MMS): templates see both as ``answer``, hooks as ``conv.media``."""
        self.speaker.answer = {"text": text, "media": list(media)}
        self.hooks.media = media
        if await self._anytime(text, starting=False):
            return
        step = self._step()
        verb = step.verb
        match verb:
            case Ask():
                await self._answer_ask(step, verb, text)
            case Choose():
                await self._answer_choose(step, verb, text)
            case Say() | Handoff() | Dial() | Record() | Conference() | Hangup() | None:
                # Not waiting (a conversation in a say/handoff step): nothing to answer.
                log.info("reply in non-waiting step %s of %s ignored", step.name, self.session.key)
            case _:
                assert_never(verb)

    async def silence(self) -> None:
        """On a call: no input before the gather's timeout; counts like an unusable answer."""
        step = self._step()
        if isinstance(step.verb, WaitingVerb):
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
        match verb:
            case Dial() if not ok and verb.on_fail:
                await self.goto(verb.on_fail)
            case Handoff():
                self._end()  # the person took the call over
            case Dial() | Say() | Ask() | Choose() | Record() | Conference() | Hangup() | None:
                await self._continue(step)
            case _:
                assert_never(verb)

    async def _continue(self, step: Step) -> None:
        nxt = self._next(step)
        if nxt is not None:
            await self.goto(nxt)

    async def timeout(self) -> None:
        """The durable timeout of the current waiting step fired."""
        step = self._step()
        self.session.timer_due = None
        self.session.timer_step = None
        if not isinstance(step.verb, WaitingVerb):
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
        match verb:
            case Ask() | Choose():
                self._prompt(step, verb.text)
                if verb.retry.timeout:
                    self.session.timer_due = self.clock() + verb.retry.timeout
                    self.session.timer_step = step.name
                self.outputs.append(AwaitInput(step.name, verb))
                return None
            case Say():
                await self.hooks.do(step.do)  # hooks first, so the text can use what they set
                self._say(step, verb.text, media=self.speaker.media(step))
                return self._next(step)
            case Handoff():
                if verb.say is not None:
                    self._say(step, verb.say)
                await self.hooks.do(step.do)
                self.session.status = ConversationStatus.HANDOFF
                if self.channel == "voice":
                    self.outputs.append(CallAction(step.name, verb, verb.number or ""))
                return None
            case Dial() | Record() | Conference() | Hangup():
                return await self._call_verb(step, verb)
            case None:
                await self.hooks.do(step.do)
                return self._next(step)
            case _:
                assert_never(verb)

    async def _call_verb(self, step: Step, verb: Dial | Record | Conference | Hangup) -> str | None:
        if isinstance(verb, Record | Dial) and isinstance(verb.consent, Text):
            self._say(step, verb.consent)  # the GDPR notice comes before the instructions
        if verb.text is not None:
            self._say(step, verb.text)
        if self.channel != "voice":
            # A voice-only verb reached over SMS (a flow serving both channels): the call part
            # cannot happen, so a dial fails over to on_fail and the rest just continue.
            await self.hooks.do(step.do)
            match verb:
                case Dial() if verb.on_fail:
                    return verb.on_fail
                case Hangup():
                    self._end()
                    return None
                case Dial() | Record() | Conference():
                    return self._next(step)
                case _:
                    assert_never(verb)
        match verb:
            case Dial():
                target = self.speaker.render(verb.to)
            case Conference():
                target = self.speaker.render(verb.room)
            case Record() | Hangup():
                target = ""
            case _:
                assert_never(verb)
        await self.hooks.do(step.do)
        self.outputs.append(CallAction(step.name, verb, target))
        if isinstance(verb, Hangup):
            self._end()
        return None  # the call's next webhook (dial/record result) continues the flow

    def _next(self, step: Step) -> str | None:
        for branch in step.then:
            if branch.condition is None or self.speaker.evaluate(branch.condition):
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
        saved: Any
        if verb.expect.kind == "media":
            # The answer is the media (of the wanted types); the validator gets the Media
            # values (it may download them), the slot keeps their JSON form.
            media = tuple(
                m for m in self.hooks.media if not verb.expect.types or m.is_a(verb.expect.types)
            )
            answer = Answer(bool(media), media)
            saved = [m.as_dict() for m in media]
        else:
            today = dt.date.fromtimestamp(self.clock())
            answer = parse_answer(
                verb.expect, text, self.session.lang, channel=self.channel, today=today
            )
            saved = answer.value
        if not answer.ok:
            await self._unusable(step, verb.retry, None)
            return
        if verb.validate:
            verdict = await self.hooks.validate(verb.validate, answer.value)
            if verdict is not True:
                message = verdict if isinstance(verdict, str) else None
                await self._unusable(step, verb.retry, message, invalid=verb.invalid)
                return
        if verb.save_as:
            self.session.slots[verb.save_as] = saved
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
        await self.hooks.do(step.do)
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
        assert isinstance(step.verb, WaitingVerb)
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
        await self.hooks.do(handler.do)
        current = self._step()
        if handler.say is not None:
            self._say(current, handler.say)
        if handler.goto:
            await self.goto(handler.goto)
        elif starting:
            await self.enter(self.spec.start, moved=True)
        elif isinstance(current.verb, WaitingVerb):
            self._prompt(current, current.verb.text)  # re-ask the current step
            self.outputs.append(AwaitInput(current.name, current.verb))
        return True

    def _match_anytime(self, text: str) -> Anytime | None:
        return match_anytime(self.spec, self.session.lang, text)

    # -- speaking ------------------------------------------------------------------------

    def _say(
        self,
        step: Step,
        text: Text | str,
        *,
        literal: bool = False,
        media: tuple[str, ...] = (),
        prompt_for: str | None = None,
    ) -> None:
        self.outputs.append(
            self.speaker.utterance(step, text, literal=literal, media=media, prompt_for=prompt_for)
        )

    def _prompt(self, step: Step, text: Text) -> None:
        self.outputs.append(self.speaker.prompt(step, text))

    def _step(self) -> Step:
        return self.spec.steps[self.session.step]


def match_anytime(spec: FlowSpec, lang: str, text: str) -> Anytime | None:
    """The first ``anytime`` handler ``text`` triggers: its pattern, or one of its keywords
    in ``lang`` or any other language (a STOP is a STOP whatever the conversation's
    language). A pattern is matched within its time budget and length cap
    (:mod:`convo.flow.patterns`), ignoring case."""
    for handler in spec.anytime:
        if handler.pattern and patterns.search(handler.pattern, text, ignore_case=True):
            return handler
        words = list(handler.keywords.get(lang, ()))
        for other, ws in handler.keywords.items():
            if other != lang:
                words.extend(ws)
        if words and match_words(text, words):
            return handler
    return None
