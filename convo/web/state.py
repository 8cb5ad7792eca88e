"""What the running web app holds, and how errors become HTTP answers.

The app keeps three things under typed ``aiohttp.web.AppKey`` keys: the settings, the
:class:`~convo.runtime.Runtime` (whose parts the routes read once it has started:
``request.app[RUNTIME].store``) and the keeper of refused webhooks. :data:`HTTP_STATUS` is
the one table mapping convo's exceptions to HTTP statuses: the app's error middleware
consults it for every route, so handlers just raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from convo.config import Settings
from convo.exceptions import (
    ConfigError,
    ConvoError,
    FlowRuntimeError,
    InvalidNumber,
    MalformedWebhook,
    OptedOut,
    Overloaded,
    ProviderError,
    SignatureError,
    StoreError,
    UnknownFlow,
    UnknownLine,
    WebhookError,
)
from convo.runtime import Runtime

if TYPE_CHECKING:
    from convo.web.rejected import RejectedWebhooks


#: Exception class -> HTTP status; the first matching row wins (subclasses before bases).
HTTP_STATUS: tuple[tuple[type[ConvoError], int], ...] = (
    (SignatureError, 401),
    (MalformedWebhook, 400),
    (WebhookError, 400),
    (InvalidNumber, 400),
    (OptedOut, 409),
    (UnknownFlow, 404),
    (UnknownLine, 404),
    (FlowRuntimeError, 400),
    (StoreError, 503),
    (Overloaded, 503),
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
RUNTIME = web.AppKey("runtime", Runtime)
REJECTED: web.AppKey[RejectedWebhooks] = web.AppKey("rejected")
