"""The aiohttp app factory: a thin web face over one :class:`~convo.runtime.Runtime`.

:func:`create_app` builds the runtime (not started), adds the routes and one
``cleanup_ctx`` that starts the runtime when the app starts and closes it when the app
stops (the runtime's own order: store, providers, engine, outbox, intake, background
loops; shutdown backwards). Routes read the runtime's parts from ``app[RUNTIME]``.

Routes: the provider webhooks (``convo.web.webhooks``), the call webhooks
(``convo.web.voice``), the admin API (``convo.web.api``, contacts in
``convo.web.contacts``, starting conversations in ``convo.web.conversations``), the health
routes (``/livez``, ``/readyz``: ``convo.web.health``), ``/metrics`` (``convo.web.metrics``,
which also counts every webhook), the web console (``/console``: ``convo.web.console``),
and the extra
routes of every provider kind our lines use that has a web extension in the provider
registry (the sandbox's phones, ``convo.web.sandbox``).

Errors raised by any route are answered as ``{"error": "..."}`` with the status from
``convo.web.state.HTTP_STATUS`` (one table, one middleware). A store that cannot be used
(``StoreError``: locked past its timeout, read-only, full) is 503 with ``Retry-After`` (a
provider retries its webhook; nothing was acknowledged that is not stored) and a body that
says only that: the error itself, which names the database, goes to the log, one line.
Every request gets an id (``X-Request-Id``, ``convo.web.access``) that the lines logged
while handling it carry. A request whose body does not arrive within
``server.body_timeout`` is dropped (``convo.web.connections``).
An inbound text refused because the outbox is behind (``Overloaded``,
:mod:`convo.backpressure`) is 503 with its ``Retry-After`` too, and not logged per request
(the episode is, when it starts and ends).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from aiohttp import web

from convo.bot import Bot
from convo.config import Settings
from convo.exceptions import ConvoError, Overloaded, StoreError
from convo.runtime import EngineFactory, Runtime
from convo.runtime.wiring import web_extensions
from convo.web import (
    api,
    campaigns,
    console,
    contacts,
    conversations,
    health,
    metrics,
    voice,
    webhooks,
)
from convo.web.access import request_id_middleware
from convo.web.connections import body_deadline
from convo.web.state import REJECTED, RUNTIME, SETTINGS, error_response, status_for
from convo.web.throttle import TOKEN_THROTTLE, TokenThrottle

log = logging.getLogger("convo.web")

#: Seconds a client (a provider retrying its webhook) is told to wait while the store fails.
STORE_RETRY_AFTER = health.RETRY_AFTER


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StoreError as exc:
        log.warning("%s %s: 503, the store failed: %s", request.method, request.path, exc)
        response = error_response(503, "the store is unavailable; try again later")
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER)
        return response
    except Overloaded as exc:
        response = error_response(503, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except ConvoError as exc:
        status = status_for(exc)
        if status >= 500:
            log.exception("%s %s failed", request.method, request.path)
        return error_response(status, str(exc))


def create_app(
    settings: Settings,
    *,
    bot: Bot | None = None,
    http_client: httpx.AsyncClient | None = None,
    engine_factory: EngineFactory | None = None,
) -> web.Application:
    """The convo web app. ``http_client`` (not closed by the app) is shared by adapters;
    ``engine_factory`` builds the engine over the opened store (default: the real
    :class:`~convo.flow.engine.Engine` with the flows of ``settings.flows.paths``)."""
    app = web.Application(
        middlewares=[
            request_id_middleware,
            metrics.webhook_metrics,
            error_middleware,
            body_deadline(settings.server.body_timeout),
        ]
    )
    app[SETTINGS] = settings
    app[RUNTIME] = Runtime(
        settings, bot=bot, http_client=http_client, engine_factory=engine_factory
    )
    app[REJECTED] = webhooks.RejectedWebhooks.from_settings(settings)
    # Wrong admin tokens, console and API together.
    app[TOKEN_THROTTLE] = TokenThrottle(trusted=settings.server.trusted_proxies)
    app.cleanup_ctx.append(_runtime_ctx)
    webhooks.add_routes(app)
    voice.add_routes(app)
    api.add_routes(app)
    contacts.add_routes(app)
    conversations.add_routes(app)
    campaigns.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app, own_port=settings.metrics.port != 0)
    console.add_routes(app)
    for extension in web_extensions(settings):
        importlib.import_module(extension).add_routes(app)
    return app


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    await runtime.start()  # a failure has closed what had started
    yield
    await runtime.aclose()
