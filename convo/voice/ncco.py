"""Vonage Voice call documents: neutral instructions -> an NCCO (a JSON list of actions).

==============  =============================================================================
instruction     NCCO
==============  =============================================================================
Say             ``talk`` (``text``, ``language``, ``style`` from a numeric ``voice``, ``loop``)
Play            ``stream`` (``streamUrl``, ``loop``)
Pause           ``talk`` of SSML ``<break>`` (NCCO has no pause of its own)
Gather          its prompts as ``talk``/``stream`` with ``bargeIn``, then ``input`` (``type``
                dtmf/speech; ``dtmf.maxDigits``, ``submitOnHash``, ``timeOut``;
                ``speech.language``, ``context`` from the hints, ``startTimeout``)
Record          ``record`` (``endOnKey``, ``timeOut``, ``endOnSilence``, ``beepStart``)
Dial            ``connect`` to a ``phone`` (digits, no ``+``) or ``sip`` endpoint, ``timeout``,
                ``limit``, ``from`` (the caller id), ``eventType: synchronous`` so the dial
                outcome posted to ``eventUrl`` may answer with the next NCCO; a recorded
                Dial is preceded by a ``record`` action with no end condition (it records
                the bridged call until it ends; Vonage posts the recording to the
                application's event URL); ``connect`` takes no TTS language, so a Dial's
                ``language`` is not rendered
Conference      ``conversation`` (``name``, ``startOnEnter``, ``endOnExit``, ``mute``,
                ``record``)
Redirect        ``notify`` to the URL (its answer replaces the NCCO); dropped right after
                a Gather, whose ``input`` reports silence to its own ``eventUrl`` anyway
Hangup          nothing: a call ends where its NCCO ends, so what follows is dropped too
==============  =============================================================================

Every URL goes in a one-element list with ``eventMethod: POST``. Text is JSON data, so
whatever a caller said cannot become an action; a Pause's SSML is built here from a number,
never from text. :data:`LIMITS` are the NCCO ranges (``input`` DTMF ``timeOut`` 0-10 s and
``maxDigits`` 1-20, ``record`` ``timeOut`` 3-7200 s and ``endOnSilence`` 3-10 s); a Gather
without ``num_digits`` asks for at most 20 keys. NCCO ends DTMF input on ``#`` only, so
another ``finish_on_key`` is a :class:`~convo.voice.twiml.RenderError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from convo.voice.instructions import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    ensure_instructions,
)
from convo.voice.twiml import Limits, RenderError

CONTENT_TYPE = "application/json"
MAX_DIGITS = 20
MAX_BREAK = 10  # seconds one SSML <break> may last
LIMITS = Limits(
    max_num_digits=MAX_DIGITS,
    gather_timeout=(1, 10),
    record_max_length=(3, 7200),
    record_silence_timeout=(3, 10),
    dial_timeout=(5, 120),
    dial_time_limit=(1, 7200),
    pause_seconds=(1, 300),
)

Action = dict[str, Any]


def _talk(say: Say, *, barge_in: bool = False) -> Action:
    action: Action = {"action": "talk", "text": say.text}
    if say.language:
        action["language"] = say.language
    if say.voice.isdigit():
        action["style"] = int(say.voice)
    if say.loop != 1:
        action["loop"] = say.loop
    if barge_in:
        action["bargeIn"] = True
    return action


def _prompt(prompt: Say | Play | Pause, *, barge_in: bool = False) -> Action:
    if isinstance(prompt, Say):
        return _talk(prompt, barge_in=barge_in)
    if isinstance(prompt, Play):
        action: Action = {"action": "stream", "streamUrl": [prompt.url]}
        if prompt.loop != 1:
            action["loop"] = prompt.loop
        if barge_in:
            action["bargeIn"] = True
        return action
    seconds = math.ceil(prompt.seconds)
    breaks = [min(MAX_BREAK, seconds - done) for done in range(0, seconds, MAX_BREAK)]
    ssml = "".join(f'<break time="{part}s"/>' for part in breaks)
    return {"action": "talk", "text": f"<speak>{ssml}</speak>"}


def _event(url: str) -> Action:
    return {"eventUrl": [url], "eventMethod": "POST"} if url else {}


def _gather(item: Gather, index: int) -> list[Action]:
    out = [_prompt(p, barge_in=True) for p in item.prompts]
    action: Action = {"action": "input", "type": sorted(item.input), **_event(item.action)}
    if "dtmf" in item.input:
        if item.finish_on_key not in ("", "#"):
            raise RenderError(
                f"instruction {index} (Gather): Vonage ends key input on # only, "
                f"not {item.finish_on_key!r}",
                index=index,
            )
        action["dtmf"] = {
            "maxDigits": item.num_digits or MAX_DIGITS,
            "submitOnHash": item.finish_on_key == "#",
            "timeOut": math.ceil(item.timeout),
        }
    if "speech" in item.input:
        speech: Action = {"startTimeout": math.ceil(item.timeout)}
        if item.speech_language:
            speech["language"] = item.speech_language
        if item.hints:
            speech["context"] = list(item.hints)
        action["speech"] = speech
    out.append(action)
    return out


def _dial(item: Dial) -> Action:
    endpoint: Action = (
        {"type": "sip", "uri": item.target}
        if item.is_sip
        else {"type": "phone", "number": item.target.lstrip("+")}
    )
    action: Action = {"action": "connect", "endpoint": [endpoint]}
    if item.caller_id:
        action["from"] = item.caller_id.lstrip("+")
    action["timeout"] = math.ceil(item.timeout)
    if item.time_limit is not None:
        action["limit"] = item.time_limit
    if item.action:
        action |= {"eventType": "synchronous", **_event(item.action)}
    return action


def to_ncco(instructions: Sequence[object]) -> list[Action]:
    """The NCCO for ``instructions`` (module docstring); ``RenderError`` for one Vonage
    cannot carry out, ``TypeError`` for a foreign item."""
    items = ensure_instructions(instructions)
    out: list[Action] = []
    for index, item in enumerate(items):
        if isinstance(item, Hangup):
            break  # the call ends where the NCCO ends
        if isinstance(item, Say | Play | Pause):
            out.append(_prompt(item))
        elif isinstance(item, Gather):
            out.extend(_gather(item, index))
        elif isinstance(item, Record):
            action: Action = {
                "action": "record",
                "timeOut": item.max_length,
                "endOnSilence": math.ceil(item.silence_timeout),
                "beepStart": item.beep,
                **_event(item.action),
            }
            if item.finish_on_key:
                action["endOnKey"] = item.finish_on_key
            out.append(action)
        elif isinstance(item, Dial):
            if item.record:
                # Without endOnKey/timeOut/endOnSilence a record action is asynchronous:
                # the connect that follows runs, and both legs are recorded until the end.
                out.append({"action": "record", "beepStart": False})
            out.append(_dial(item))
        elif isinstance(item, Conference):
            out.append(
                {
                    "action": "conversation",
                    "name": item.room,
                    "startOnEnter": item.start_on_enter,
                    "endOnExit": item.end_on_exit,
                    "mute": item.muted,
                    "record": item.record,
                }
            )
        elif isinstance(item, Redirect):
            if index > 0 and isinstance(items[index - 1], Gather):
                continue  # the input action reports silence itself
            out.append({"action": "notify", "payload": {"redirect": True}, **_event(item.url)})
    return out


def render(instructions: Sequence[object]) -> bytes:
    """The NCCO as UTF-8 JSON."""
    return json.dumps(to_ncco(instructions), ensure_ascii=False).encode("utf-8")
