"""The provider webhook routes: ``GET|POST /webhooks/{provider}/inbound`` and ``/status``.

Each request becomes a neutral :class:`~convo.models.WebhookRequest` whose ``url`` is
``server.public_url`` + path + query (what URL-covering signatures sign; never the Host
header). Then, in this order:

1. body larger than ``webhooks.max_body`` -> 413, nothing read further;
2. ``provider.verify`` -> 401 on ``SignatureError``; nothing is changed or kept. The rule
   is one for every provider (``convo.providers.signing``): with a secret configured the
   signature is required, ``allow_unsigned`` only matters without one;
3. ``provider.parse_*`` -> 400 ``{"error": ...}`` on ``MalformedWebhook``; the request is
   kept under ``webhooks.rejected_dir`` within ``webhooks.rejected_quota``
   (:class:`~convo.web.rejected.RejectedWebhooks`: a signed body whole, an unsigned one
   only its first KiB), and counted in a summary logged once a minute;
4. inbound: while the outbox is too far behind (:mod:`convo.backpressure`), 503 with
   ``Retry-After`` and nothing stored; else every message is stored (``Intake.accept``)
   **before** the 200 answer (the provider's own acknowledgement when it wants one,
   ``AcknowledgesInbound``; else ``{"received": n}``); the turns run in the background and
   wake the outbox. Status: every delivery report is applied (``Outbox.apply_report``),
   then 200.

An unknown provider name is 404. Errors are raised and turned into JSON answers by the app's
error middleware (``convo.web.state.HTTP_STATUS``). Call webhooks are ``convo.web.voice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import cast

from aiohttp import web

from convo.exceptions import MalformedWebhook
from convo.models import WebhookRequest
from convo.providers import form as forms
from convo.providers.base import AcknowledgesInbound, SmsProvider
from convo.providers.callbacks import INBOUND, STATUS, webhook_path
from convo.web.rejected import RejectedWebhooks
from convo.web.state import (
    REJECTED,
    RUNTIME,
    SETTINGS,
    error_response,
)

__all__ = ["RejectedWebhooks", "add_routes", "keep_malformed", "webhook_request"]

log = logging.getLogger("convo.web.webhooks")

#: How often what was kept is summed up in the log (one line per provider).
SUMMARY_INTERVAL = 60.0


def _provider(request: web.Request) -> SmsProvider:
    name = request.match_info["provider"]
    provider = request.app[RUNTIME].providers.get(name)
    if provider is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no provider {name!r} is configured"}),
            content_type="application/json",
        )
    return provider


async def webhook_request(request: web.Request, max_body: int) -> WebhookRequest | web.Response:
    """The neutral request, or a 413 answer when the body exceeds ``max_body`` bytes."""
    if request.content_length is not None and request.content_length > max_body:
        return _too_big(max_body)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_body:
            return _too_big(max_body)
        chunks.append(chunk)
    body = b"".join(chunks)
    content_type = request.content_type if request.body_exists else ""
    form: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = forms.decode(body.decode("utf-8"))
        except UnicodeDecodeError:
            form = {}  # the adapter reports the missing fields
    public = request.app[SETTINGS].server.public_url.rstrip("/")
    return WebhookRequest(
        method=request.method,
        path=request.path,
        url=public + str(request.rel_url),
        headers=dict(request.headers),
        query=dict(request.query),
        body=body,
        content_type=content_type,
        form=form,
    )


def _too_big(max_body: int) -> web.Response:
    return error_response(413, f"request body larger than {max_body} bytes")


async def _checked(request: web.Request) -> tuple[SmsProvider, WebhookRequest, bool] | web.Response:
    """The provider, the request and whether it was signed; or the 413 answer."""
    provider = _provider(request)
    built = await webhook_request(request, request.app[SETTINGS].webhooks.max_body)
    if isinstance(built, web.Response):
        log.warning("%s: %s webhook refused: body too large", provider.name, request.path)
        return built
    signed = provider.verify(built)  # SignatureError -> 401 via the error middleware
    return provider, built, signed


async def keep_malformed(
    request: web.Request, provider: str, wreq: WebhookRequest, exc: MalformedWebhook, signed: bool
) -> None:
    """Keep a malformed webhook for the operator (counted in the minute's summary)."""
    path = await request.app[REJECTED].keep(provider, wreq, str(exc), signed=signed)
    log.debug("%s: malformed webhook kept as %s: %s", provider, path, exc)


async def inbound(request: web.Request) -> web.Response:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    provider, wreq, signed = checked
    try:
        messages = provider.parse_inbound(wreq)
    except MalformedWebhook as exc:
        await keep_malformed(request, provider.name, wreq, exc, signed)
        raise
    runtime = request.app[RUNTIME]
    runtime.backpressure.check()  # Overloaded -> 503 via the error middleware
    intake = runtime.intake
    for message in messages:
        await intake.accept(message)  # stored before we answer
    if _acknowledges(provider):
        body, content_type = cast(AcknowledgesInbound, provider).inbound_acknowledgement()
        return web.Response(body=body, headers={"Content-Type": content_type})
    return web.json_response({"received": len(messages)})


# isinstance against a runtime-checkable Protocol walks the protocol's members each time
# (~10 us, 1-2 % of a text's CPU): asked once per provider class.
_ACKNOWLEDGES: dict[type, bool] = {}


def _acknowledges(provider: SmsProvider) -> bool:
    """Whether ``provider``'s class answers inbound webhooks with a body of its own."""
    kind = type(provider)
    known = _ACKNOWLEDGES.get(kind)
    if known is None:
        known = _ACKNOWLEDGES[kind] = isinstance(provider, AcknowledgesInbound)
    return known


async def status(request: web.Request) -> web.Response:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    provider, wreq, signed = checked
    try:
        reports = provider.parse_status(wreq)
    except MalformedWebhook as exc:
        await keep_malformed(request, provider.name, wreq, exc, signed)
        raise
    outbox = request.app[RUNTIME].outbox
    applied = 0
    for report in reports:
        applied += await outbox.apply_report(report) is not None
    return web.json_response({"received": len(reports), "applied": applied})


async def _summaries(app: web.Application) -> AsyncIterator[None]:
    """Log what the keeper kept, once a minute and once more at shutdown."""
    keeper = app[REJECTED]

    async def every_minute() -> None:
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL)
            for line in keeper.summary():
                log.warning("%s", line)

    task = asyncio.create_task(every_minute())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for line in keeper.summary():
        log.warning("%s", line)


def add_routes(app: web.Application) -> None:
    """The SMS webhook routes, and the minute's summary of malformed webhooks kept (for
    these and the call webhooks)."""
    for method in ("GET", "POST"):
        app.router.add_route(method, webhook_path("{provider}", INBOUND), inbound)
        app.router.add_route(method, webhook_path("{provider}", STATUS), status)
    app.cleanup_ctx.append(_summaries)
