"""The call webhook routes: ``POST /webhooks/{provider}/voice/answer``, ``/voice/input``
and ``/voice/status``, for every configured voice provider.

Which provider carries a line's calls: the line's ``voice_provider`` when set (a line with
``channels = ["sms", "voice"]`` texts through ``provider`` and calls through
``voice_provider``), else ``provider`` itself when that is a voice provider (``provider =
"telefoon_voice"``). :func:`voice_provider_name` is the one place that decides it; the
dialer (``convo call``) uses it too. A provider is a voice provider when its kind
(``type`` option, else its section name) is in ``registry.VOICE_PROVIDERS``.

Each webhook goes the way SMS webhooks go (``convo.web.webhooks``): the neutral
:class:`~convo.models.WebhookRequest` with ``url`` built from ``server.public_url``; 413 for
a body over ``webhooks.max_body``; ``provider.verify`` (401, nothing changed); then
``provider.parse_call`` (400, the request kept under ``webhooks.rejected_dir``). Then:

* ``answer`` -> :meth:`CallRunner.answer` (a call to a number that is not one of our lines
  is hung up);
* ``input`` -> :meth:`CallRunner.input`, ``after`` from our own query string
  (``gather`` | ``record`` | ``dial``; default ``gather``; anything else is 400);
* ``status`` -> :meth:`CallRunner.status` (a final status ends the conversation), answered
  ``{"status": ...}``.

The turn runs inline (the answer must carry the next instructions), and the answer is
``provider.render(instructions)`` with the provider's content type. The input URL handed to
the runner is ``{public_url}/webhooks/{P}/voice/input``, never built from request data.
Errors are raised and answered by the app's error middleware (``state.HTTP_STATUS``).

Known limit: a provider retrying an ``input`` webhook (same call, same input) would advance
the flow twice; Telefoon Voice documents no retries, so no de-duplication is done here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import cast, get_args

from aiohttp import web

from convo.config import LineSettings, Settings
from convo.exceptions import ConfigError, MalformedWebhook
from convo.flow.calls import After, CallRunner
from convo.models import CallEvent
from convo.providers.base import VoiceProvider
from convo.providers.callbacks import VOICE_INPUT, callback_url
from convo.providers.registry import create_provider, kinds, lookup, provider_kind
from convo.voice.instructions import Hangup, Instruction
from convo.web.state import ENGINE, HTTP_CLIENT, REJECTED, SETTINGS
from convo.web.webhooks import webhook_request

log = logging.getLogger("convo.web.voice")

VOICE_PROVIDERS_KEY: web.AppKey[dict[str, VoiceProvider]] = web.AppKey("voice_providers")
CALLS: web.AppKey[CallRunner] = web.AppKey("calls")
AFTER: tuple[str, ...] = get_args(After)


def is_voice_provider(settings: Settings, name: str) -> bool:
    """True when ``[providers.NAME]`` (or the bare name) is a voice provider kind."""
    return lookup(provider_kind(name, settings.providers.get(name))).channel == "voice"


def voice_provider_name(settings: Settings, line: LineSettings) -> str | None:
    """The provider carrying ``line``'s calls (module docstring), or None if it has none.

    Raises ``ConfigError`` when ``voice_provider`` names a provider that is not a voice one.
    """
    if line.voice_provider:
        if not is_voice_provider(settings, line.voice_provider):
            raise ConfigError(
                f"{settings.source}: line {line.number}: voice_provider "
                f"{line.voice_provider!r} is not a voice provider "
                f"(known: {', '.join(kinds('voice'))})"
            )
        return line.voice_provider
    if is_voice_provider(settings, line.provider):
        return line.provider
    return None


def input_url(settings: Settings, provider: str) -> str:
    """Where Gather/Record/Dial results go: from ``public_url`` only."""
    return callback_url(settings.server.public_url, provider, VOICE_INPUT)


def setup(app: web.Application) -> None:
    """Start the voice providers and the call runner with the app, and add the routes.
    Call after the app's other ``cleanup_ctx`` entries (it needs the client and engine)."""
    app.cleanup_ctx.append(_voice_ctx)
    for route, handler in (("answer", answer), ("input", call_input), ("status", status)):
        app.router.add_post(f"/webhooks/{{provider}}/voice/{route}", handler)


async def _voice_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    for line in settings.lines:  # a misnamed voice_provider fails the start, not a call
        if voice_provider_name(settings, line) is None and "voice" in line.channels:
            log.info("line %s: no voice provider; its calls are not answered", line.number)
    providers: dict[str, VoiceProvider] = {}
    try:
        for name in settings.provider_names():
            if is_voice_provider(settings, name):
                providers[name] = create_provider(
                    name,
                    settings.providers.get(name, {}),
                    app[HTTP_CLIENT],
                    public_url=settings.server.public_url,
                )
        app[VOICE_PROVIDERS_KEY] = providers
        if providers:
            from convo.flow.engine import Engine

            engine = app[ENGINE]
            if not isinstance(engine, Engine):
                raise ConfigError("voice providers need convo's Engine (engine_factory gave none)")
            app[CALLS] = CallRunner(engine, handoff_numbers=settings.handoff)
        yield
    finally:
        for provider in providers.values():
            await provider.aclose()


# -- routes -----------------------------------------------------------------------------------


def _provider(request: web.Request) -> VoiceProvider:
    name = request.match_info["provider"]
    provider = request.app.get(VOICE_PROVIDERS_KEY, {}).get(name)
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
    provider.verify(wreq)  # SignatureError -> 401 via the error middleware
    try:
        event = provider.parse_call(wreq)
        after = request.query.get("after", "gather")
        if request.path.endswith("/input") and after not in AFTER:
            raise MalformedWebhook(
                f"{provider.name}: query parameter 'after' must be one of "
                f"{', '.join(AFTER)}, got {after!r}"
            )
    except MalformedWebhook as exc:
        kept = await request.app[REJECTED].keep(provider.name, wreq, str(exc))
        log.warning("%s: malformed call webhook kept as %s: %s", provider.name, kept, exc)
        raise
    return provider, event


def _document(provider: VoiceProvider, instructions: Sequence[Instruction]) -> web.Response:
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
        return _document(provider, [Hangup()])
    runner = request.app[CALLS]
    return _document(provider, await runner.answer(event, input_url(settings, provider.name)))


async def call_input(request: web.Request) -> web.Response:
    checked = await _call_event(request)
    if isinstance(checked, web.Response):
        return checked
    provider, event = checked
    after = cast(After, request.query.get("after", "gather"))
    url = input_url(request.app[SETTINGS], provider.name)
    return _document(provider, await request.app[CALLS].input(event, url, after))


async def status(request: web.Request) -> web.Response:
    checked = await _call_event(request)
    if isinstance(checked, web.Response):
        return checked
    _, event = checked
    await request.app[CALLS].status(event)
    return web.json_response({"status": event.status.value})
