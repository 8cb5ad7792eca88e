"""Request ids and the access log.

:func:`request_id_middleware` (the app's outermost middleware) gives every request an id:
the client's ``X-Request-Id`` when it is well formed (a load balancer's, say), else a new
one (:func:`convo.logs.new_request_id`). Every line logged while the request is handled,
and in the turns it starts, carries it (:func:`convo.logs.request_scope`), and the answer
sends it back in ``X-Request-Id``, so a provider's complaint about one webhook leads to its
lines.

:class:`AccessLog` writes one line per request to the ``convo.access`` logger at INFO:
method, path **without its query string** (a Vonage webhook carries the text of the
message in its query, and texts are never logged above DEBUG), status, bytes, duration
and the request id. ``[logging] access_log = false`` (or ``convo serve --no-access-log``)
turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from convo.logs import new_request_id, request_scope

HEADER = "X-Request-Id"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id(request.headers.get(HEADER))
    with request_scope(request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # raised answers (404, 400 ...) carry it too
            exc.headers[HEADER] = request_id
            raise
    if not response.prepared:
        response.headers[HEADER] = request_id
    return response


class AccessLog(AbstractAccessLogger):
    """One INFO line per request on ``convo.access`` (module docstring)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            "%s %s %d %dB %.1fms",
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
            extra={"request_id": response.headers.get(HEADER)},
        )

    @property
    def enabled(self) -> bool:
        return not self.logger.disabled and self.logger.isEnabledFor(logging.INFO)
