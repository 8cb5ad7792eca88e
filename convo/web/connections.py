"""Slow and idle clients: how long a connection may take, and how many may be open.

A client that opens connections and sends its requests a byte at a time must not hold the
server's file descriptors: every limit below closes such a connection without a log line
(a slow client is expected on the internet, not an error).

* **Request head and idle keep-alive** (``server.keepalive_timeout``): aiohttp closes a
  connection on which no complete request head has arrived this many seconds after it
  opened or after its previous answer (``RequestHandler``'s keep-alive timer, armed from
  the connection's start). That one timer covers a head sent slowly and an idle
  connection: aiohttp has no separate head timeout.
* **Request body** (``server.body_timeout``): :func:`body_deadline`, a middleware. Once a
  request's head is in, its body must have arrived this many seconds later; if not, the
  body's reader fails and the connection is closed (no answer: the client is too slow to
  read one anyway). A handler that finished with its body meanwhile is not disturbed.
* **Open connections** (``server.max_connections``): :class:`ConnectionLimit`, the
  protocol factory given to the listening socket. A connection beyond the cap is closed as
  it arrives, before anything is read from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SlowBody(Exception):
    """A request's body did not arrive in time; its reader fails with this."""


def body_deadline(timeout: float) -> Middleware:
    """A middleware closing the connection of a request whose body is not in after
    ``timeout`` seconds (module docstring)."""

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = request.content
        if body.is_eof():  # no body, or all of it arrived with the head
            return await handler(request)
        expired = False

        def expire() -> None:
            nonlocal expired
            if body.is_eof():
                return
            expired = True
            body.set_exception(SlowBody())  # wakes the handler that waits for it
            if request.transport is not None:
                request.transport.close()

        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await handler(request)
        except Exception:
            if not expired:
                raise
            # Whatever the handler made of the failed read: the client is gone. An
            # HTTPException is the quiet way out (aiohttp logs any other error).
            raise web.HTTPRequestTimeout() from None
        finally:
            timer.cancel()

    return deadline


class ConnectionLimit:
    """A protocol factory that serves at most ``limit`` connections at once with the
    protocols ``make()`` builds; one more is closed as it arrives (module docstring)."""

    def __init__(self, make: Callable[[], asyncio.Protocol], limit: int) -> None:
        self.make = make
        self.limit = limit
        self.open = 0

    def __repr__(self) -> str:
        return f"<ConnectionLimit {self.open}/{self.limit}>"

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit:
            return _Refused()
        self.open += 1
        return _Counted(self.make(), self)


class _Counted(asyncio.Protocol):
    """Passes everything to the protocol serving the connection, and counts it out when
    the connection is lost (or was never made)."""

    def __init__(self, inner: asyncio.Protocol, limit: ConnectionLimit) -> None:
        self._inner = inner
        self._limit: ConnectionLimit | None = limit

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        limit, self._limit = self._limit, None
        if limit is not None:
            limit.open -= 1
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
