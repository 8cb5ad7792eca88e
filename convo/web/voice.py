"""The call webhook routes: ``POST /webhooks/{provider}/voice/answer``, ``/voice/input``
and ``/voice/status``, for every configured voice provider.

Which provider carries a line's calls is decided by
:func:`convo.runtime.wiring.voice_provider_name` (the dialer asks it too); the runtime
builds the voice providers and the call runner.

Each webhook goes the way SMS webhooks go (``convo.web.webhooks``): the neutral
:class:`~convo.models.WebhookRequest` with ``url`` built from ``server.public_url``; 413 for
a body over ``webhooks.max_body``; ``provider.verify`` (401, nothing changed); then
``provider.parse_call`` (400, the request kept under ``webhooks.rejected_dir``, as
``convo.web.rejected`` says). Then:

* ``answer`` -> :meth:`CallRunner.answer` (a call to a number that is not one of our lines
  is hung up);
* ``input`` -> :meth:`CallRunner.input`, ``after`` from our own query string
  (``gather`` | ``record`` | ``dial``; default ``gather``; anything else is 400); a dial
  result whose leg has not ended yet (ringing, answered) gets an empty document and no turn;
* ``status`` -> :meth:`CallRunner.status` (a final status ends the conversation), answered
  ``{"status": ...}``.

The turn runs inline (the answer must carry the next instructions), and the answer is
``provider.render(instructions)`` with the provider's content type. Before a document that
puts the caller in a conference is answered, a provider that creates conference rooms
through its API (:class:`~convo.providers.base.OpensConferences`: Telefoon Voice) is asked
to open the room (its ``record`` flag included); if it cannot, the failure is logged and
the caller still joins by name, as the document says. The input URL handed to
the runner is ``{public_url}/webhooks/{P}/voice/input`` (``providers.callbacks``), never
built from request data. Errors are raised and answered by the app's error middleware
(``state.HTTP_STATUS``).

Replays: every provider's webhooks are replay-safe. An ``answer`` is claimed by the
provider's call id, an ``input`` by the call id and the ``turn`` token of our own action URL
(the document it answers); the same webhook again gets the instructions the first one got,
and the flow neither starts again nor advances (:mod:`convo.flow.calls`). ``turn`` other
than 1-64 of ``A-Z a-z 0-9 - _`` is 400. A ``status`` webhook is idempotent as it is (a
final status closes the conversation once).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import cast, get_args

from aiohttp import web

from convo.config import Settings
from convo.exceptions import MalformedWebhook, ProviderError
from convo.flow.calls import After
from convo.models import CallEvent
from convo.providers.base import OpensConferences, VoiceProvider
from convo.providers.callbacks import (
    VOICE_ANSWER,
    VOICE_INPUT,
    VOICE_STATUS,
    callback_url,
    webhook_path,
)
from convo.runtime.wiring import voice_provider_name
from convo.voice.instructions import Conference, Hangup, Instruction
from convo.web.state import RUNTIME, SETTINGS
from convo.web.webhooks import keep_malformed, webhook_request

log = logging.getLogger("convo.web.voice")

AFTER: tuple[str, ...] = get_args(After)
_TURN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def input_url(settings: Settings, provider: str) -> str:
    """Where Gather/Record/Dial results go: from ``public_url`` only."""
    return callback_url(settings.server.public_url, provider, VOICE_INPUT)


def add_routes(app: web.Application) -> None:
    for route, handler in (
        (VOICE_ANSWER, answer),
        (VOICE_INPUT, call_input),
        (VOICE_STATUS, status),
    ):
        app.router.add_post(webhook_path("{provider}", route), handler)


# -- routes -----------------------------------------------------------------------------------


def _provider(request: web.Request) -> VoiceProvider:
    name = request.match_info["provider"]
    provider = request.app[RUNTIME].voice_providers.get(name)
    if provider is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no voice provider {name!r} is configured"}),
            content_type="application/json",
        )
    return provider


async def _call_event(request: web.Request) -> tuple[VoiceProvider, CallEvent] | web.Response:
    """Verify and parse a call webhook: 413/401/400 as in ``convo.web.webhooks``."""
    provider = _provider(request)
    wreq = await webhook_request(request, request.app[SETTINGS].webhooks.max_body)
    if isinstance(wreq, web.Response):
        log.warning("%s: %s webhook refused: body too large", provider.name, request.path)
        return wreq
    signed = provider.verify(wreq)  # SignatureError -> 401 via the error middleware
    try:
        event = provider.parse_call(wreq)
        after = request.query.get("after", "gather")
        if request.path.endswith(VOICE_INPUT) and after not in AFTER:
            raise MalformedWebhook(
                f"{provider.name}: query parameter 'after' must be one of "
                f"{', '.join(AFTER)}, got {after!r}"
            )
        turn = request.query.get("turn")
        if request.path.endswith(VOICE_INPUT) and turn is not None and not _TURN.fullmatch(turn):
            raise MalformedWebhook(
                f"{provider.name}: query parameter 'turn' must be 1-64 letters, digits, - or _, "
                f"got {turn[:80]!r}"
            )
    except MalformedWebhook as exc:
        await keep_malformed(request, provider.name, wreq, exc, signed)
        raise
    return provider, event


async def _document(provider: VoiceProvider, instructions: Sequence[Instruction]) -> web.Response:
    if isinstance(provider, OpensConferences):
        for item in instructions:
            if isinstance(item, Conference):
                try:
                    await provider.open_conference(item.room, record=item.record)
                except ProviderError as exc:
                    log.warning(
                        "%s: cannot open conference %r (%s); the caller joins it by name",
                        provider.name,
                        item.room,
                        exc,
                    )
    body, content_type = provider.render(instructions)  # RenderError -> 500, logged
    return web.Response(body=body, headers={"Content-Type": content_type})


def _our_line(settings: Settings, provider: str, number: str) -> bool:
    return any(
        line.number == number and voice_provider_name(settings, line) == provider
        for line in settings.lines
    )


async def answer(request: web.Request) -> web.Response:
    checked = await _call_event(request)
    if isinstance(checked, web.Response):
        return checked
    provider, event = checked
    settings = request.app[SETTINGS]
    if not _our_line(settings, provider.name, event.line):
        log.warning(
            "%s: call %s to %s, which is not a voice line of this provider: hung up",
            provider.name,
            event.call_id,
            event.line,
        )
        return await _document(provider, [Hangup()])
    runner = request.app[RUNTIME].calls
    url = input_url(settings, provider.name)
    return await _document(provider, await runner.answer(event, url, replay_safe=True))


async def call_input(request: web.Request) -> web.Response:
    checked = await _call_event(request)
    if isinstance(checked, web.Response):
        return checked
    provider, event = checked
    after = cast(After, request.query.get("after", "gather"))
    if after == "dial" and event.dial_status is not None and not event.dial_status.final:
        # A dialled leg still ringing or just answered (Vonage reports each step of a
        # connect): nothing to decide until it ends.
        return await _document(provider, [])
    url = input_url(request.app[SETTINGS], provider.name)
    turn = request.query.get("turn")  # checked by _call_event
    runner = request.app[RUNTIME].calls
    return await _document(provider, await runner.input(event, url, after, turn=turn))


async def status(request: web.Request) -> web.Response:
    checked = await _call_event(request)
    if isinstance(checked, web.Response):
        return checked
    _, event = checked
    await request.app[RUNTIME].calls.status(event)
    return web.json_response({"status": event.status.value})
