"""``GET /metrics``: the runtime's metrics in Prometheus' text format (:mod:`convo.metrics`).

Where it is served (``[metrics]`` in convo.toml):

* ``port = 0`` (the default): on the server's own port, behind the admin token like the
  admin API (``Authorization: Bearer <server.api_token>``; 404 without a token). Prometheus
  sends it with ``authorization: {credentials: ...}`` in its scrape config.
* ``port = N``: on ``host``:N of its own (:func:`metrics_app`, started by ``convo serve``),
  without a token, and not on the server's port. Bind it where only Prometheus reaches it.

Each scrape first reads the gauges that come from the store (outbox depth and age, dead
letters, conversations by flow and step, timers): about five cheap queries.

:func:`webhook_metrics` is the app middleware that counts every provider webhook
(``/webhooks/{provider}/...``) by provider, route and HTTP status and times it. Provider
names that are not configured are counted as ``unknown``, so a scanner cannot make up
label values.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from convo.metrics import CONTENT_TYPE
from convo.runtime import Runtime
from convo.web.api import admin
from convo.web.state import RUNTIME

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WEBHOOK_PREFIX = "/webhooks/{provider}/"


async def _exposition(runtime: Runtime) -> web.Response:
    try:
        store, intake = runtime.store, runtime.intake
    except RuntimeError:  # not started, or stopping: what is counted so far
        pass
    else:
        await runtime.metrics.refresh(
            store, runtime.flow_version_counts(), turns_pending=intake.in_flight
        )
    response = web.Response(body=runtime.metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@admin
async def metrics(request: web.Request) -> web.StreamResponse:
    return await _exposition(request.app[RUNTIME])


@web.middleware
async def webhook_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    if not canonical.startswith(WEBHOOK_PREFIX):
        return await handler(request)
    route = canonical.removeprefix(WEBHOOK_PREFIX).replace("/", "_")
    runtime = request.app[RUNTIME]
    name = request.match_info.get("provider", "")
    known = name in runtime.providers or name in runtime.voice_providers
    provider = name if known else "unknown"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        runtime.metrics.observe_webhook(provider, route, status, time.perf_counter() - started)


def add_routes(app: web.Application, *, own_port: bool) -> None:
    """``GET /metrics`` on the app, unless the metrics have a port of their own."""
    if not own_port:
        app.router.add_get("/metrics", metrics)


def metrics_app(runtime: Runtime) -> web.Application:
    """The app of the metrics' own port: ``GET /metrics`` of ``runtime``, no token."""

    async def scrape(request: web.Request) -> web.StreamResponse:
        return await _exposition(runtime)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app
