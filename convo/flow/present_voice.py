"""The voice presenter: a turn's outputs as neutral call instructions.

What is said before a waiting step is a Say; the waiting step's own prompt is nested in a
Gather (DTMF and speech) followed by a Redirect to the input URL, so a provider that falls
through a silent Gather still reports the silence. ``dial`` / ``handoff`` become a Dial
whose outcome comes back to the input URL, ``record`` a Record, ``conference`` a
Conference; a turn that leaves nothing to wait for (the flow ended) hangs up.

Action URLs are ``{input_url}?after=gather|record|dial``, so the next webhook says what it
reports without any provider field for it, and, when the caller gives a ``turn`` token,
``&turn=TOKEN``: every webhook that answers this document names it, so a provider's retry
of one is told from the next turn's (``convo.flow.calls``). Each text is spoken in its
language's TTS locale (:func:`locale_of`), a ``dial`` step's texts in its ``tts_language``
when it has one (which its Dial carries too, with its ``record``). Texts are escaped by the
renderer, never here: anything a caller said reaches a Say only as data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal, assert_never
from urllib.parse import urlencode

from convo.flow.outputs import AwaitInput, CallAction, Output, Utterance
from convo.flow.spec import Ask, Choose, FlowSpec
from convo.flow.spec import Conference as ConferenceStep
from convo.flow.spec import Dial as DialStep
from convo.flow.spec import Handoff as HandoffStep
from convo.flow.spec import Hangup as HangupStep
from convo.flow.spec import Record as RecordStep
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

#: What an ``input`` webhook reports, from our own action URL's ``after``.
After = Literal["gather", "record", "dial"]

#: TTS locale of a flow language when the flow's ``voice:`` section does not say.
DEFAULT_LOCALES = {"nl": "nl-NL", "fr": "fr-BE", "de": "de-DE", "en": "en-GB"}


def locale_of(spec: FlowSpec, lang: str) -> tuple[str, str, tuple[str, ...]]:
    """``(locale, voice, fallbacks)`` for a flow language."""
    settings = spec.voice.get(lang)
    if settings is not None:
        return settings.locale, settings.voice or "", settings.fallbacks
    return DEFAULT_LOCALES.get(lang, lang), "", ()


def action_url(input_url: str, after: After, turn: str = "") -> str:
    """Where the result of a Gather, Record or Dial goes (module docstring)."""
    query = {"after": after} | ({"turn": turn} if turn else {})
    return f"{input_url}?{urlencode(query)}"


def instructions(
    spec: FlowSpec,
    outputs: Sequence[Output],
    *,
    input_url: str,
    handoff_numbers: Mapping[str, str] | None = None,
    turn: str = "",
) -> list[Instruction]:
    """The call instructions for one turn's outputs (see the module docstring); a turn
    that leaves nothing to wait for ends in one Hangup. ``turn`` names this document in
    its action URLs ("" = not named)."""
    gather_url = action_url(input_url, "gather", turn)
    out: list[Instruction] = []
    prompts: list[Prompt] = []
    for item in outputs:
        match item:
            case Utterance():
                says = _say(spec, item)
                if item.prompt_for is not None:
                    prompts.extend(says)
                else:
                    out.extend(prompts)  # a prompt not followed by its wait: just say it
                    prompts = []
                    out.extend(says)
            case AwaitInput():
                lang = next((s.language for s in prompts if isinstance(s, Say)), "")
                lang_code = next((k for k, v in spec.voice.items() if v.locale == lang), "")
                out.append(_gather(spec, item, prompts, lang_code or spec.default_lang, gather_url))
                out.append(Redirect(gather_url))
                return out  # the call waits here
            case CallAction():
                out.extend(prompts)
                prompts = []
                out.extend(_call_action(item, input_url, turn, handoff_numbers or {}))
                if not isinstance(item.verb, HangupStep):
                    return out  # the call's next webhook (dial/record result) goes on
            case _:
                assert_never(item)
    out.extend(prompts)
    if not out or not isinstance(out[-1], Hangup):  # ended, or nothing left to wait for
        out.append(Hangup())
    return out


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
    step = spec.steps.get(utterance.step)
    if step is not None and isinstance(step.verb, DialStep) and step.verb.tts_language:
        return [Say(utterance.text, step.verb.tts_language)]  # the dial step's own locale
    locale, voice, fallbacks = locale_of(spec, utterance.lang)
    return [Say(utterance.text, locale, voice, language_fallbacks=fallbacks)]


def _gather(
    spec: FlowSpec, wait: AwaitInput, prompts: Sequence[Prompt], lang: str, action: str
) -> Gather:
    verb = wait.verb
    num_digits: int | None = None
    hints: tuple[str, ...] = ()
    finish = "#"
    match verb:
        case Choose():
            keys = [o.key for o in verb.options if o.key]
            if keys and all(len(k) == 1 for k in keys):
                num_digits, finish = 1, ""
            hints = tuple(w for o in verb.options for ws in o.words.values() for w in ws)
        case Ask():
            if verb.expect.kind == "yes_no":
                num_digits, finish = 1, ""
            elif verb.expect.kind == "digits" and verb.expect.digits:
                num_digits, finish = verb.expect.digits, ""
        case _:
            assert_never(verb)
    locale, _, _ = locale_of(spec, lang)
    return Gather(
        input=frozenset({"dtmf", "speech"}),
        num_digits=num_digits,
        finish_on_key=finish,
        timeout=verb.retry.gather_timeout or 5,
        speech_language=locale,
        hints=tuple(dict.fromkeys(hints)),
        prompts=tuple(prompts),
        action=action,
    )


def _call_action(
    action: CallAction, input_url: str, turn: str, handoff_numbers: Mapping[str, str]
) -> list[Instruction]:
    verb = action.verb
    dial_url = action_url(input_url, "dial", turn)
    match verb:
        case DialStep():
            return [
                Dial(
                    action.target,
                    caller_id=verb.caller_id or "",
                    timeout=verb.timeout,
                    time_limit=int(verb.time_limit) if verb.time_limit else None,
                    action=dial_url,
                    record=verb.record,
                    language=verb.tts_language or "",
                )
            ]
        case HandoffStep():
            number = action.target or handoff_numbers.get(verb.queue, "")
            if not number:
                log.warning("handoff to queue %r on a call, but it has no number", verb.queue)
                return [Hangup()]
            return [Dial(number, action=dial_url)]
        case RecordStep():
            return [
                Record(
                    max_length=int(verb.max),
                    finish_on_key=verb.finish_on_key,
                    beep=verb.beep,
                    action=action_url(input_url, "record", turn),
                )
            ]
        case ConferenceStep():
            return [
                Conference(
                    action.target,
                    start_on_enter=verb.start_on_enter,
                    end_on_exit=verb.end_on_exit,
                    muted=verb.muted,
                    record=verb.record,
                )
            ]
        case HangupStep():
            return [Hangup()]
        case _:
            assert_never(verb)
