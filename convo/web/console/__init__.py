"""The web console at ``/console``: conversations, contacts, flows, the sandbox phone and
the outbox, for operators and flow authors, in a browser.

Server-rendered: Jinja2 templates (``templates/``, autoescaped) and a little htmx
(``static/htmx.min.js``, vendored with its licence, like every asset: nothing is loaded
from another site). Signing in and the CSRF check are :mod:`convo.web.console.auth`; one
module per page: :mod:`~convo.web.console.conversations` (the live list, a contact's
transcript, erasure), :mod:`~convo.web.console.flows` (graphs with drop-off, files that do
not load), :mod:`~convo.web.console.phone` (the sandbox phone), and
:mod:`~convo.web.console.outbox` (pending, failed and dead replies, retry).

The console exists when ``[server] api_token`` is set (the admin token is its password);
without one its routes answer 404. Wrong tokens at sign-in are throttled per client
address, with the admin API's (:mod:`convo.web.throttle`): after five, 429.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path

from aiohttp import web

from convo.web.console import conversations, flows, outbox, phone
from convo.web.console.auth import (
    CSRF_FIELD,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    admin_token,
    check_csrf,
    csrf_token,
    local_next,
    new_presession,
    read_form,
    session_value,
    set_cookie,
    signed_in,
)
from convo.web.console.render import html
from convo.web.state import error_response
from convo.web.throttle import TOKEN_THROTTLE, retry_after

STATIC = Path(__file__).parent / "static"


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/conversations")


async def signin(request: web.Request) -> web.StreamResponse:
    """The sign-in form (GET) and its check (POST): :mod:`convo.web.console.auth`."""
    token = admin_token(request)
    if token is None:
        return error_response(404, "not found (the console is off: no server.api_token)")
    if request.method == "GET":
        if signed_in(request, token) is not None:
            raise web.HTTPSeeOther(local_next(request.query.get("next")))
        return _signin_form(request, token, request.query.get("next"), error="")
    form = await read_form(request)
    presession = request.cookies.get(PRESESSION_COOKIE, "")
    check_csrf(request, token, presession or "-", form.get(CSRF_FIELD))
    given = form.get("token")
    target = local_next(form.get("next"))
    throttle = request.app[TOKEN_THROTTLE]
    seconds = throttle.wait(request)
    if seconds > 0:  # the token is not even compared (convo.web.throttle)
        wait = retry_after(seconds)
        error = f"Too many wrong tokens; try again in {wait} seconds."
        response = _signin_form(request, token, target, error=error, status=429)
        response.headers["Retry-After"] = wait
        return response
    if given is None or not hmac.compare_digest(given.strip().encode(), token.encode()):
        throttle.failed(request)
        return _signin_form(request, token, target, error="That is not the admin token.")
    response = web.HTTPSeeOther(target)
    set_cookie(request, response, SESSION_COOKIE, session_value(token, int(time.time())))
    response.del_cookie(PRESESSION_COOKIE, path="/console")
    raise response


def _signin_form(
    request: web.Request, token: str, next_path: str | None, error: str, status: int = 401
) -> web.Response:
    presession = new_presession()
    response = html(
        request,
        "signin.html",
        status=status if error else 200,
        csrf=csrf_token(token, presession),
        next=local_next(next_path),
        error=error,
        signin_page=True,
    )
    set_cookie(request, response, PRESESSION_COOKIE, presession)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/console/signin")
    response.del_cookie(SESSION_COOKIE, path="/console")
    raise response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console", home)
    app.router.add_get("/console/", home)
    app.router.add_get("/console/signin", signin)
    app.router.add_post("/console/signin", signin)
    app.router.add_post("/console/signout", signout)
    app.router.add_static("/console/static/", STATIC, append_version=True)
    conversations.add_routes(app)
    flows.add_routes(app)
    phone.add_routes(app)
    outbox.add_routes(app)
