"""Health routes: is the process alive, and is it ready for traffic.

* ``GET /livez``: 200 ``{"status": "ok"}`` as long as the process answers. Nothing else is
  checked: a supervisor restarts a process only when this fails.
* ``GET /readyz`` (and ``GET /healthz``, its older name): 200 ``{"status": "ok", "checks":
  {...}}`` when every check passes, else 503 ``{"status": "unavailable", "checks": {...},
  "failed": [...]}`` with ``Retry-After``. The checks, each ``true`` or ``false``:

  - ``store``: a write commits now (:meth:`convo.store.base.Store.writable`: a real write
    that changes no data), within :data:`PROBE_TIMEOUT` seconds;
  - every background loop of :meth:`convo.runtime.Runtime.status` by name (``outbox``,
    ``timers``, ``inbound recovery``, ...): running, not waiting out a backoff after a
    failure;
  - ``runtime``: started (false before the start and once stopping).

Bodies carry check names and booleans only: never a path, an exception's text or other
internals (those go to the log).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from convo.web.state import RUNTIME

log = logging.getLogger("convo.web.health")

#: Seconds a client is told to wait before asking an unready server again.
RETRY_AFTER = 5
#: Seconds the store's write probe may take: behind writes that wait for a locked file, it
#: would wait as long as they do, and a readiness check must answer promptly.
PROBE_TIMEOUT = 2.0


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = await readiness(request.app)
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        body = {"status": "unavailable", "checks": checks, "failed": failed}
        response = web.json_response(body, status=503)
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response
    return web.json_response({"status": "ok", "checks": checks})


async def readiness(app: web.Application) -> dict[str, bool]:
    """Each readiness check's name -> passed (module docstring)."""
    runtime = app[RUNTIME]
    try:
        store = runtime.store
    except RuntimeError:  # not started, or stopped
        return {"runtime": False}
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            writable = await store.writable()
    except TimeoutError:
        writable = False
    except Exception:  # a backend that breaks its "never an error" promise
        log.exception("readiness: the store's write probe failed")
        writable = False
    return {"runtime": True, "store": writable, **runtime.status()}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", readyz)
