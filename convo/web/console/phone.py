"""The console's sandbox phone: text a sandbox line, or call it and press keys.

It plays a person's phone against our sandbox lines (``convo.web.sandbox``), through the
same parts a real provider's traffic reaches: a text goes through the intake as a webhook's
would (:func:`convo.web.sandbox.text_line`), and a call's events go to the same
:class:`~convo.flow.calls.CallRunner` the ``/webhooks/P/voice/...`` routes call, with the
``sandbox_voice`` provider's input URL. The instructions a call gets back are shown as
text: what would be said (with its TTS locale), what the call waits for, where it dials.

* ``GET /console/phone?line=&number=``: the phone (its number defaults to
  :data:`DEFAULT_NUMBER`).
* ``GET /console/phone/thread?line=&number=``: the texts between them, oldest first,
  with delivery statuses (the page refreshes it every two seconds).
* ``POST /console/phone/sms`` ``line, number, text``: send a text; answers the thread.
* ``POST /console/phone/call`` ``line, number``: call the line (the flow answers).
* ``POST /console/phone/input`` ``line, number, call_id, after, action``, and ``digits``:
  what the caller does at the instruction the call waits on (``after``: gather, record or
  dial). ``action`` is ``keys`` (``digits`` pressed; the default), ``silence``, ``record`` (a
  recording is made), or a dial outcome (``completed``, ``busy``, ``no-answer``).
* ``POST /console/phone/hangup``: the caller hangs up (the conversation ends).

The call answers are fragments htmx appends to the call's log, with the call's state
(what it waits for) swapped in beside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from aiohttp import web

from convo.flow.calls import After
from convo.models import CallEvent, CallStatus, Direction, new_id
from convo.providers.sandbox_voice import SandboxVoice
from convo.runtime.wiring import voice_provider_name
from convo.sms.phone import normalize
from convo.store.base import MessageQuery
from convo.voice.heard import heard
from convo.voice.instructions import Instruction
from convo.web.console.auth import console_page, read_form
from convo.web.console.render import html
from convo.web.sandbox import sandbox_lines, text_line
from convo.web.state import RUNTIME, SETTINGS
from convo.web.voice import input_url

DEFAULT_NUMBER = "+32470999000"
THREAD_SIZE = 100
MAX_TEXT = 1600
DIAL_OUTCOMES = {
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
}


def _sandbox_voice(request: web.Request, line: str) -> str | None:
    """The sandbox voice provider carrying ``line``'s calls, or None."""
    settings = request.app[SETTINGS]
    for candidate in settings.lines:
        if candidate.number == line and "voice" in candidate.channels:
            name = voice_provider_name(settings, candidate)
            providers = request.app[RUNTIME].voice_providers
            if name is not None and isinstance(providers.get(name), SandboxVoice):
                return name
    return None


def _line_and_number(request: web.Request, data: dict[str, str]) -> tuple[str, str]:
    lines = sandbox_lines(request.app)
    line = data.get("line") or next(iter(sorted(lines)), "")
    if line not in lines:
        raise web.HTTPNotFound(text=f"{line!r} is not a sandbox line")
    number = normalize(data.get("number") or DEFAULT_NUMBER)  # InvalidNumber: 400
    return line, number


async def _form(request: web.Request) -> dict[str, str]:
    return dict(await read_form(request))


async def _thread(request: web.Request, line: str, number: str) -> web.Response:
    found, _ = await request.app[RUNTIME].store.list_messages(
        MessageQuery(number=number, page_size=THREAD_SIZE)
    )
    messages = [m for m in reversed(found) if m.line == line]
    return html(
        request,
        "_phone_thread.html",
        messages=messages,
        inbound=Direction.INBOUND,
        line=line,
        number=number,
    )


@console_page
async def phone(request: web.Request) -> web.StreamResponse:
    lines = sandbox_lines(request.app)
    if not lines:
        return html(request, "phone.html", lines=[], line="", number="", voice=False)
    line, number = _line_and_number(request, dict(request.query))
    return html(
        request,
        "phone.html",
        lines=sorted(lines.values(), key=lambda ln: ln.number),
        line=line,
        number=number,
        voice=_sandbox_voice(request, line) is not None,
        sms="sms" in lines[line].channels,
    )


@console_page
async def thread(request: web.Request) -> web.StreamResponse:
    line, number = _line_and_number(request, dict(request.query))
    return await _thread(request, line, number)


@console_page
async def send_sms(request: web.Request) -> web.StreamResponse:
    data = await _form(request)
    line, number = _line_and_number(request, data)
    text = data.get("text", "").strip()
    if not text or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"text: 1 to {MAX_TEXT} characters")
    await text_line(request.app, number, line, text)
    return await _thread(request, line, number)


def _event(provider: str, data: dict[str, str], line: str, number: str) -> CallEvent:
    """The call event the phone's form describes (what happened is added by the caller)."""
    call_id = data.get("call_id", "")
    if not call_id or len(call_id) > 64:
        raise web.HTTPBadRequest(text="call_id is missing")
    return CallEvent(provider=provider, call_id=call_id, line=line, caller=number)


async def _answer(
    request: web.Request,
    instructions: list[Instruction],
    call_id: str,
    line: str,
    number: str,
    did: str = "",
) -> web.Response:
    """The call's log entries for this answer (after what the caller did), and its state."""
    items, state = heard(instructions)
    return html(
        request,
        "_phone_call.html",
        items=items,
        state=state,
        call_id=call_id,
        line=line,
        number=number,
        did=did,
    )


@console_page
async def call(request: web.Request) -> web.StreamResponse:
    data = await _form(request)
    line, number = _line_and_number(request, data)
    provider = _sandbox_voice(request, line)
    if provider is None:
        raise web.HTTPBadRequest(text=f"line {line} takes no calls in the sandbox")
    data["call_id"] = "sandbox-" + new_id()
    event = _event(provider, data, line, number)
    runner = request.app[RUNTIME].calls
    instructions = await runner.answer(event, input_url(request.app[SETTINGS], provider))
    return await _answer(request, instructions, data["call_id"], line, number)


@console_page
async def call_input(request: web.Request) -> web.StreamResponse:
    data = await _form(request)
    line, number = _line_and_number(request, data)
    provider = _sandbox_voice(request, line)
    if provider is None:
        raise web.HTTPBadRequest(text=f"line {line} takes no calls in the sandbox")
    # The keypad sends its keys without an action (a script submits it, as a phone would).
    after, action = data.get("after", ""), data.get("action", "keys")
    if after == "gather" and action in ("keys", "silence"):
        digits = data.get("digits", "") if action == "keys" else ""
        if digits and not (len(digits) <= 32 and set(digits) <= set("0123456789*#")):
            raise web.HTTPBadRequest(text="digits: keys 0-9 * # only")
        event = replace(_event(provider, data, line, number), digits=digits or None)
    elif after == "record" and action == "record":
        recording = f"sandbox://recordings/{new_id()}"
        event = replace(
            _event(provider, data, line, number), recording_url=recording, recording_duration=5.0
        )
    elif after == "dial" and action in DIAL_OUTCOMES:
        event = replace(_event(provider, data, line, number), dial_status=DIAL_OUTCOMES[action])
    else:
        raise web.HTTPBadRequest(text=f"cannot {action!r} while the call waits on {after!r}")
    runner = request.app[RUNTIME].calls
    url = input_url(request.app[SETTINGS], provider)
    instructions = await runner.input(event, url, cast(After, after))  # one of them: above
    did = {
        "keys": f"you press {data.get('digits', '')}",
        "silence": "you say nothing",
        "record": "you leave a message",
    }.get(action, f"the dialled number: {action}")
    return await _answer(request, instructions, event.call_id, line, number, did)


@console_page
async def hangup(request: web.Request) -> web.StreamResponse:
    data = await _form(request)
    line, number = _line_and_number(request, data)
    provider = _sandbox_voice(request, line)
    if provider is None:
        raise web.HTTPBadRequest(text=f"line {line} takes no calls in the sandbox")
    event = replace(_event(provider, data, line, number), status=CallStatus.COMPLETED)
    await request.app[RUNTIME].calls.status(event)
    return await _answer(request, [], event.call_id, line, number, "you hang up")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/phone", phone)
    app.router.add_get("/console/phone/thread", thread)
    app.router.add_post("/console/phone/sms", send_sms)
    app.router.add_post("/console/phone/call", call)
    app.router.add_post("/console/phone/input", call_input)
    app.router.add_post("/console/phone/hangup", hangup)
