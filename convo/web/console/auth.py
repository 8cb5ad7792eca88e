"""Signing in to the console, and the CSRF check of its forms.

The console is the admin API's face for people, so it takes the same credential: the
admin token (``[server] api_token``). Without a token the console is off (404), like the
admin API.

* ``GET /console/signin`` shows a form for the token. ``/console/signin#token=TOKEN``
  fills it in and submits it (the fragment never reaches the server or its logs), so a
  launcher can print a URL that signs in with one click.
* ``POST /console/signin`` compares the token in constant time; right, it sets the
  session cookie and goes to the page asked for (a local ``/console`` path only); wrong,
  the form again with 401.
* The session cookie, ``convo_console``, is ``ISSUED.MAC``: MAC is HMAC-SHA256 under the
  token of the issue time, so it is not the token itself, it expires after
  :data:`SESSION_TTL`, and changing the token signs everybody out. It is ``HttpOnly``,
  ``SameSite=Strict``, ``Path=/console``, and ``Secure`` when ``public_url`` is https.
* Every POST carries a CSRF token (form field ``csrf``, or header ``X-CSRF-Token`` for
  htmx requests): HMAC-SHA256 under the token of the session cookie's value, checked in
  constant time; a missing or wrong one is 403. The sign-in form has its own, bound to a
  pre-session cookie. SameSite=Strict already keeps other sites' forms from carrying the
  cookie; the token also covers same-site pages that are not ours.
* ``POST /console/signout`` clears the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from convo.web.state import SETTINGS, error_response

SESSION_COOKIE = "convo_console"
PRESESSION_COOKIE = "convo_console_signin"
#: Seconds a sign-in lasts.
SESSION_TTL = 12 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_token(request: web.Request) -> str | None:
    token = request.app[SETTINGS].server.api_token
    return None if token is None else token.reveal()


def _mac(token: str, purpose: str, value: str) -> str:
    return hmac.new(token.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def session_value(token: str, issued: int) -> str:
    return f"{issued}.{_mac(token, 'console-session', str(issued))}"


def signed_in(request: web.Request, token: str) -> str | None:
    """The request's valid session cookie value, or None."""
    value = request.cookies.get(SESSION_COOKIE, "")
    issued, _, mac = value.partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return None
    if not hmac.compare_digest(mac, _mac(token, "console-session", issued)):
        return None
    age = time.time() - int(issued)
    return value if 0 <= age < SESSION_TTL else None


def csrf_token(token: str, session: str) -> str:
    """The CSRF token of the forms of one session (or pre-session, for sign-in)."""
    return _mac(token, "console-csrf", session)


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS].server.public_url.startswith("https://")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        max_age=SESSION_TTL,
    )


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """The request's form fields (text only); 400 for a body that is not a form."""
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="console: expected a form (UTF-8)") from None
    return MultiDictProxy(MultiDict((k, v) for k, v in form.items() if isinstance(v, str)))


def check_csrf(request: web.Request, token: str, session: str, form_value: str | None) -> None:
    """403 unless the request carries the session's CSRF token."""
    given = request.headers.get(CSRF_HEADER) or form_value or ""
    if not hmac.compare_digest(given.encode(), csrf_token(token, session).encode()):
        raise web.HTTPForbidden(text="console: missing or wrong CSRF token; reload the page")


def signin_url(next_path: str) -> str:
    return "/console/signin?next=" + quote(next_path, safe="/")


def local_next(raw: str | None) -> str:
    """Where to go after signing in: a ``/console`` path of ours, never another site."""
    if raw and raw.startswith("/console") and "//" not in raw and "\\" not in raw:
        return raw
    return "/console/conversations"


def console_page(handler: Handler) -> Handler:
    """Guard a console route: 404 when the console is off, sign-in for a GET without a
    session (401 for anything else), and the CSRF check for a POST. Pages find the
    session's CSRF token with :func:`current_csrf`."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = admin_token(request)
        if token is None:
            return error_response(404, "not found (the console is off: no server.api_token)")
        session = signed_in(request, token)
        if session is None:
            if request.method == "GET" and "HX-Request" not in request.headers:
                raise web.HTTPSeeOther(signin_url(request.path_qs))
            response = web.Response(status=401, text="console: sign in again")
            response.headers["HX-Redirect"] = signin_url("/console/conversations")
            return response
        if request.method == "POST":
            form = await read_form(request)
            check_csrf(request, token, session, form.get(CSRF_FIELD))
        return await handler(request)

    return guarded


def current_csrf(request: web.Request) -> str:
    """The CSRF token of the request's session ("" without one)."""
    token = admin_token(request)
    session = None if token is None else signed_in(request, token)
    return "" if token is None or session is None else csrf_token(token, session)


def new_presession() -> str:
    return secrets.token_urlsafe(16)
