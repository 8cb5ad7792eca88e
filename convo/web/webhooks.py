"""The provider webhook routes: ``GET|POST /webhooks/{provider}/inbound`` and ``/status``.

Each request becomes a neutral :class:`~convo.models.WebhookRequest` whose ``url`` is
``server.public_url`` + path + query (what URL-covering signatures sign; never the Host
header). Then, in this order:

1. body larger than ``webhooks.max_body`` -> 413, nothing read further;
2. ``provider.verify`` -> 401 on ``SignatureError``; nothing is changed or kept;
3. ``provider.parse_*`` -> 400 ``{"error": ...}`` on ``MalformedWebhook``; the raw request
   is kept as one JSON file under ``webhooks.rejected_dir`` (:class:`RejectedWebhooks`) for
   inspection, with ``Authorization`` and cookie headers left out;
4. inbound: every message is stored (``Intake.accept``) **before** the 200 answer; the turns
   run in the background and wake the outbox. Status: every delivery report is applied
   (``Outbox.apply_report``), then 200.

An unknown provider name is 404. Errors are raised and turned into JSON answers by the app's
error middleware (``convo.web.state.HTTP_STATUS``). Call webhooks are ``convo.web.voice``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from urllib.parse import parse_qsl

from aiohttp import web

from convo.exceptions import MalformedWebhook
from convo.models import WebhookRequest, new_id
from convo.providers.base import SmsProvider
from convo.providers.callbacks import INBOUND, STATUS, webhook_path
from convo.web.state import (
    REJECTED,
    RUNTIME,
    SETTINGS,
    error_response,
)

log = logging.getLogger("convo.web.webhooks")

#: Headers never written to the rejected-request files (credentials).
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class RejectedWebhooks:
    """Keeps refused webhook requests as files ``<dir>/<time>-<provider>-<id>.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"<RejectedWebhooks {self.directory}>"

    async def keep(self, provider: str, request: WebhookRequest, error: str) -> Path:
        """Write the request and the reason it was refused; returns the file written."""
        try:
            body: dict[str, str] = {"text": request.body.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"hex": request.body.hex()}
        record = {
            "provider": provider,
            "error": error,
            "received_at": time.time(),
            "method": request.method,
            "url": request.url,
            "content_type": request.content_type,
            "headers": {
                k: v for k, v in request.headers.items() if k.lower() not in PRIVATE_HEADERS
            },
            "body": body,
        }
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{provider}-{new_id()[:12]}.json"
        path = self.directory / name
        await asyncio.to_thread(self._write, path, json.dumps(record, indent=2))
        return path

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []


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
    too_big = error_response(413, f"request body larger than {max_body} bytes")
    if request.content_length is not None and request.content_length > max_body:
        return too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_body:
            return too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    content_type = request.content_type if request.body_exists else ""
    form: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
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


async def _checked(request: web.Request) -> tuple[SmsProvider, WebhookRequest] | web.Response:
    provider = _provider(request)
    built = await webhook_request(request, request.app[SETTINGS].webhooks.max_body)
    if isinstance(built, web.Response):
        log.warning("%s: %s webhook refused: body too large", provider.name, request.path)
        return built
    provider.verify(built)  # SignatureError -> 401 via the error middleware
    return provider, built


async def _malformed(
    request: web.Request, provider: str, wreq: WebhookRequest, exc: MalformedWebhook
) -> None:
    path = await request.app[REJECTED].keep(provider, wreq, str(exc))
    log.warning("%s: malformed webhook kept as %s: %s", provider, path, exc)


async def inbound(request: web.Request) -> web.Response:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    provider, wreq = checked
    try:
        messages = provider.parse_inbound(wreq)
    except MalformedWebhook as exc:
        await _malformed(request, provider.name, wreq, exc)
        raise
    intake = request.app[RUNTIME].intake
    for message in messages:
        await intake.accept(message)  # stored before we answer
    return web.json_response({"received": len(messages)})


async def status(request: web.Request) -> web.Response:
    checked = await _checked(request)
    if isinstance(checked, web.Response):
        return checked
    provider, wreq = checked
    try:
        reports = provider.parse_status(wreq)
    except MalformedWebhook as exc:
        await _malformed(request, provider.name, wreq, exc)
        raise
    outbox = request.app[RUNTIME].outbox
    applied = 0
    for report in reports:
        applied += await outbox.apply_report(report) is not None
    return web.json_response({"received": len(reports), "applied": applied})


def add_routes(app: web.Application) -> None:
    for method in ("GET", "POST"):
        app.router.add_route(method, webhook_path("{provider}", INBOUND), inbound)
        app.router.add_route(method, webhook_path("{provider}", STATUS), status)
