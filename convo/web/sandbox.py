"""The sandbox routes: simulated phones talking to our sandbox lines.

* ``POST /sandbox/messages`` ``{"from", "to", "text"}``: the phone ``from`` texts our line
  ``to``. The message is stored and its turn runs like a webhook's; the answer waits for the
  turn and lists the replies it queued: ``{"id", "replies": [{"id", "text"}]}``. The replies
  then go out through the outbox and appear under ``GET /sandbox/messages``.
* ``GET /sandbox/messages?number=+32...``: what our lines sent to that phone, oldest first,
  ``{"messages": [{"from", "to", "text", "segments", "at", ...}]}``.
* ``GET /sandbox/lines``: our sandbox lines, ``{"lines": [{"number", "flow", "channels"}]}``.
* ``POST /sandbox/conversations`` ``{"line", "to", "params", "lang"}``: the line's flow
  texts the phone ``to`` first (an outbound start, e.g. an appointment reminder with its
  params); ``{"replies": [{"id", "text"}]}``, through
  :func:`convo.outbound.start_conversation` like ``POST /api/conversations``. A missing or
  wrong param, or a language the flow does not speak, is a 400 naming it; a phone that
  opted out of the line a 409.

The routes exist only when a line uses a sandbox provider. Numbers are normalised to
E.164 (``0470 ...`` is read as Belgian); a ``to`` that is not a sandbox line is a 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from convo import outbound
from convo.exceptions import InvalidNumber, MalformedWebhook
from convo.models import InboundMessage, OutboundMessage
from convo.providers.payload import decode_json
from convo.providers.sandbox import SandboxSms
from convo.web.state import RUNTIME, SETTINGS, error_response


def _sandboxes(app: web.Application) -> dict[str, SandboxSms]:
    return {n: p for n, p in app[RUNTIME].providers.items() if isinstance(p, SandboxSms)}


def sandbox_lines(app: web.Application) -> dict[str, Any]:
    """Our lines served by a sandbox provider, by number (the console's phone uses them
    too)."""
    sandboxes = _sandboxes(app)
    return {line.number: line for line in app[SETTINGS].lines if line.provider in sandboxes}


def _e164(value: object, field: str) -> str:
    from convo.sms.phone import normalize

    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"field {field!r} is missing or not a string")
    text = value.strip()
    if text.isalnum() and not text.isdigit():
        return text  # an alphanumeric sender name (a line may be one)
    try:
        return normalize(text)
    except InvalidNumber as exc:
        raise MalformedWebhook(f"field {field!r}: {exc}") from None


async def post_message(request: web.Request) -> web.Response:
    data = decode_json(await request.read(), 'expected a JSON body {"from", "to", "text"}')
    if not isinstance(data, dict):
        raise MalformedWebhook('expected a JSON object {"from", "to", "text"}')
    sender, line = _e164(data.get("from"), "from"), _e164(data.get("to"), "to")
    text = data.get("text")
    if not isinstance(text, str):
        raise MalformedWebhook("field 'text' is missing or not a string")
    lines = sandbox_lines(request.app)
    if line not in lines:
        known = ", ".join(sorted(lines)) or "none"
        return error_response(404, f"{line} is not a sandbox line (sandbox lines: {known})")
    message, replies = await text_line(request.app, sender, line, text)
    return web.json_response(
        {"id": message.id, "replies": [{"id": r.id, "text": r.text} for r in replies]}
    )


async def text_line(
    app: web.Application, sender: str, line: str, text: str
) -> tuple[InboundMessage, list[OutboundMessage]]:
    """The simulated phone ``sender`` texts sandbox line ``line`` (one of
    :func:`sandbox_lines`): the message goes through the intake as a webhook's would;
    returns it and the replies its turn queued, once the turn is done."""
    sandbox = app[RUNTIME].providers[sandbox_lines(app)[line].provider]
    assert isinstance(sandbox, SandboxSms)
    message = sandbox.inbound(sender, line, text)
    task = await app[RUNTIME].intake.accept(message)
    replies = await task if task is not None else []
    return message, replies


async def start_conversation(request: web.Request) -> web.Response:
    data = decode_json(await request.read(), 'expected a JSON body {"line", "to", "params"}')
    if not isinstance(data, dict):
        raise MalformedWebhook('expected a JSON object {"line", "to", "params"}')
    to, line = _e164(data.get("to"), "to"), _e164(data.get("line"), "line")
    params, lang = data.get("params") or {}, data.get("lang")
    if not isinstance(params, dict) or not (lang is None or isinstance(lang, str)):
        raise MalformedWebhook("'params' must be an object and 'lang' a string")
    lines = sandbox_lines(request.app)
    if line not in lines:
        known = ", ".join(sorted(lines)) or "none"
        return error_response(404, f"{line} is not a sandbox line (sandbox lines: {known})")
    started = await outbound.start_conversation(
        request.app[RUNTIME], to=to, line=line, language=lang, params=params
    )
    replies = [{"id": m.id, "text": m.text} for m in started.messages]
    return web.json_response({"replies": replies})


async def get_messages(request: web.Request) -> web.Response:
    raw = request.query.get("number", "")
    if raw.startswith(" "):  # an unencoded "+" in a query string arrives as a space
        raw = "+" + raw[1:]
    number = _e164(raw, "number")
    found: list[dict[str, Any]] = []
    for sandbox in _sandboxes(request.app).values():
        found.extend(sandbox.messages_for(number))
    found.sort(key=lambda m: m["at"])
    return web.json_response({"number": number, "messages": found})


async def get_lines(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "lines": [
                {"number": line.number, "flow": line.flow, "channels": list(line.channels)}
                for line in sandbox_lines(request.app).values()
            ]
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/sandbox/messages", post_message)
    app.router.add_get("/sandbox/messages", get_messages)
    app.router.add_get("/sandbox/lines", get_lines)
    app.router.add_post("/sandbox/conversations", start_conversation)
