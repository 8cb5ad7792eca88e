"""What the running web app holds, and how errors become HTTP answers.

The app keeps each resource under its own typed :class:`aiohttp.web.AppKey` (set by one
``cleanup_ctx`` each in :mod:`convo.web.app`); route modules read them from
``request.app[KEY]``. :data:`HTTP_STATUS` is the one table mapping convo's exceptions to HTTP
statuses: the app's error middleware consults it for every route, so handlers just raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from aiohttp import web

from convo.config import Settings
from convo.exceptions import (
    ConfigError,
    ConvoError,
    FlowRuntimeError,
    InvalidNumber,
    MalformedWebhook,
    ProviderError,
    SignatureError,
    StoreError,
    WebhookError,
)
from convo.models import ConversationKey, InboundMessage, OutboundMessage
from convo.outbox import Outbox
from convo.providers.base import SmsProvider
from convo.store.base import Store

if TYPE_CHECKING:
    from convo.web.intake import Intake
    from convo.web.webhooks import RejectedWebhooks


class TurnEngine(Protocol):
    """What the web layer needs of :class:`convo.flow.engine.Engine`."""

    store: Store

    async def receive(self, message: InboundMessage) -> bool: ...

    async def process(self, message: InboundMessage) -> list[OutboundMessage]: ...

    async def fire_timers(self, now: float | None = None) -> int: ...

    async def start(
        self,
        key: ConversationKey,
        flow_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        lang: str | None = None,
        name: str | None = None,
    ) -> list[OutboundMessage]: ...


#: Exception class -> HTTP status; the first matching row wins (subclasses before bases).
HTTP_STATUS: tuple[tuple[type[ConvoError], int], ...] = (
    (SignatureError, 401),
    (MalformedWebhook, 400),
    (WebhookError, 400),
    (InvalidNumber, 400),
    (FlowRuntimeError, 400),
    (StoreError, 503),
    (ProviderError, 502),
    (ConfigError, 500),
    (ConvoError, 500),
)


def status_for(error: ConvoError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_response(status: int, message: str) -> web.Response:
    """The JSON error body every route answers with: ``{"error": "..."}``."""
    return web.json_response({"error": message}, status=status)


SETTINGS = web.AppKey("settings", Settings)
HTTP_CLIENT = web.AppKey("http_client", httpx.AsyncClient)
STORE: web.AppKey[Store] = web.AppKey("store")
PROVIDERS: web.AppKey[dict[str, SmsProvider]] = web.AppKey("providers")
ENGINE: web.AppKey[TurnEngine] = web.AppKey("engine")
OUTBOX = web.AppKey("outbox", Outbox)
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
REJECTED: web.AppKey[RejectedWebhooks] = web.AppKey("rejected")
