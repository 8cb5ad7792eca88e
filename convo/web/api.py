"""Admin API (the health routes are ``convo.web.health``).

* ``GET /api/conversations/{number}``: every conversation of a contact and their messages
  (newest first, at most 200). The number may be URL-encoded (``%2B32...``) or not.
* ``GET /api/messages?direction=&status=&number=&page=&page_size=``: one page of the message
  log, newest first: ``{"messages": [...], "total", "page", "page_size"}``. ``page`` is
  1..1000000 (default 1), ``page_size`` 1..500 (default 50), both written in ASCII digits.
  A bad filter value is a 400 naming the parameter.
* ``DELETE /api/contacts/{number}``: erase a contact (GDPR; :mod:`convo.erasure`) here and
  at the providers that can delete messages; 200 with the counts, ``provider_failed`` and
  ``kept_by_provider``; 400 for a bad number. The number is written as for the GET route.
* ``GET /api/outbox/dead?page=&page_size=``: one page of the dead letters (replies whose
  sending kept failing for ``[outbox] max_age``), newest first, each with its last error;
  the same shape and paging as ``/api/messages``. (Pending replies are
  ``/api/messages?direction=outbound&status=queued``.)
* ``POST /api/outbox/retry`` with ``{"ids": [...]}`` or ``{"all": true}``: queue dead
  letters again, with a fresh age window (the outbox sends them in each contact's order);
  answers ``{"requeued": [ids, oldest first], "not_dead": [the given ids that were not]}``.

The admin routes need ``Authorization: Bearer <server.api_token>`` (compared in constant
time); a missing or wrong token is 401. Wrong tokens are throttled per client address
(:mod:`convo.web.throttle`, shared with the console's sign-in): after five, 429 with
``Retry-After``. Without a configured token the admin API is off and its routes answer 404,
as if they did not exist.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from convo.erasure import erase_contact
from convo.exceptions import InvalidNumber
from convo.models import Direction, MessageStatus
from convo.store.base import MessageQuery
from convo.web.state import RUNTIME, SETTINGS, error_response
from convo.web.throttle import TOKEN_THROTTLE

log = logging.getLogger("convo.web.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_PAGE_SIZE = 500
#: Far beyond any real log (5*10**8 messages at the largest page size), and small enough
#: that the store's offset stays a 64-bit integer.
MAX_PAGE = 1_000_000


def admin(handler: Handler) -> Handler:
    """Guard an admin route with the bearer token (see module docstring)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = request.app[SETTINGS].server.api_token
        if token is None:
            return error_response(404, "not found (the admin API is off: no server.api_token)")
        given = request.headers.get("Authorization", "")
        throttle = request.app[TOKEN_THROTTLE]
        if given:  # a token presented: compared only while its address may try
            refused = throttle.refused(request)
            if refused is not None:
                return refused
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.reveal().encode()
        ):
            if given:
                throttle.failed(request)
            response = error_response(401, "admin API: missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="convo"'
            return response
        return await handler(request)

    return guarded


def number_param(raw: str, where: str) -> str:
    """``raw`` (a path or query value) as E.164; 400 naming ``where`` otherwise."""
    from convo.sms.phone import normalize

    # A "+" written unencoded in a query string arrives as a space.
    text = raw.strip()
    if raw.startswith(" ") and text[:1].isdigit():
        text = "+" + text
    try:
        return normalize(text)
    except InvalidNumber as exc:
        raise bad_request(f"{where}: {exc}") from exc


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 whose JSON body ``{"error": message}`` says what was wrong (every admin route)."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _int(request: web.Request, name: str, default: int, maximum: int) -> int:
    """Query parameter ``name`` as 1..``maximum``; 400 naming it otherwise. ASCII digits
    only (``int`` would also take "٣", "1_0" or " 5 ")."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise bad_request(f"{name}: expected a whole number, got {raw[:40]!r}")
    # the length first: a number of thousands of digits never reaches int()
    value = int(raw) if len(raw.lstrip("0")) <= len(str(maximum)) else maximum + 1
    if not 1 <= value <= maximum:
        shown = raw if len(raw) <= 20 else raw[:20] + "..."
        raise bad_request(f"{name}: expected a number between 1 and {maximum}, got {shown}")
    return value


@admin
async def conversations(request: web.Request) -> web.StreamResponse:
    number = number_param(request.match_info["number"], "number")
    store = request.app[RUNTIME].store
    sessions = await store.sessions_of(number)
    messages, total = await store.list_messages(MessageQuery(number=number, page_size=200))
    return web.json_response(
        {
            "number": number,
            "conversations": [s.to_json() for s in sessions],
            "messages": [m.to_json() for m in messages],
            "total_messages": total,
        }
    )


@admin
async def messages(request: web.Request) -> web.StreamResponse:
    q = request.query
    direction = status = None
    if q.get("direction"):
        try:
            direction = Direction(q["direction"])
        except ValueError:
            raise bad_request(
                f"direction: expected inbound or outbound, got {q['direction']!r}"
            ) from None
    if q.get("status"):
        try:
            status = MessageStatus(q["status"])
        except ValueError:
            known = ", ".join(s.value for s in MessageStatus)
            raise bad_request(f"status: expected one of {known}, got {q['status']!r}") from None
    number = number_param(q["number"], "number") if q.get("number") else None
    page = _int(request, "page", 1, MAX_PAGE)
    page_size = _int(request, "page_size", 50, MAX_PAGE_SIZE)
    query = MessageQuery(
        direction=direction, status=status, number=number, page=page, page_size=page_size
    )
    found, total = await request.app[RUNTIME].store.list_messages(query)
    return web.json_response(
        {
            "messages": [m.to_json() for m in found],
            "total": total,
            "page": page,
            "page_size": page_size,
        }
    )


@admin
async def erase(request: web.Request) -> web.StreamResponse:
    number = number_param(request.match_info["number"], "number")  # a bad one: 400 here
    runtime = request.app[RUNTIME]
    report = await erase_contact(runtime.store, runtime.providers, number)
    return web.json_response(report.to_json())


@admin
async def dead_letters(request: web.Request) -> web.StreamResponse:
    page = _int(request, "page", 1, MAX_PAGE)
    page_size = _int(request, "page_size", 50, MAX_PAGE_SIZE)
    found, total = await request.app[RUNTIME].outbox.dead_letters(page, page_size)
    return web.json_response(
        {
            "messages": [m.to_json() for m in found],
            "total": total,
            "page": page,
            "page_size": page_size,
        }
    )


@admin
async def retry_dead(request: web.Request) -> web.StreamResponse:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise bad_request('expected a JSON object: {"ids": [...]} or {"all": true}') from None
    if not isinstance(body, dict) or set(body) - {"ids", "all"}:
        raise bad_request("expected a JSON object with ids or all")
    everything = body.get("all", False)
    ids = body.get("ids")
    if everything is not True and everything is not False:
        raise bad_request("all: expected true or false")
    if ids is not None and not (
        isinstance(ids, list) and all(isinstance(i, str) and i for i in ids) and len(ids) <= 1000
    ):
        raise bad_request("ids: expected a list of at most 1000 message ids")
    if everything == (ids is not None):
        raise bad_request("give ids or all (not both)")
    requeued = await request.app[RUNTIME].outbox.retry_dead(None if everything else ids)
    done = set(requeued)
    not_dead = [] if everything else [i for i in ids or () if i not in done]
    return web.json_response({"requeued": requeued, "not_dead": not_dead})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/conversations/{number}", conversations)
    app.router.add_get("/api/messages", messages)
    app.router.add_delete("/api/contacts/{number}", erase)
    app.router.add_get("/api/outbox/dead", dead_letters)
    app.router.add_post("/api/outbox/retry", retry_dead)
