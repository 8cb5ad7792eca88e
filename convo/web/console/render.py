"""The console's templates: one autoescaping Jinja2 environment over the package's
``templates/``, its filters, and the headers every page carries.

Pages are rendered whole for a normal request and as their fragment for an htmx one
(``HX-Request``), so the live parts refresh without a reload. The Content-Security-Policy
allows scripts, styles and images from the console itself only: nothing is loaded from
another site, and no inline script runs.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jinja2
from aiohttp import web

from convo.web.console.auth import current_csrf

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("convo.web.console", "templates"),
    autoescape=True,  # every template is HTML
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def age(at: float | None, now: float | None = None) -> str:
    """How long ago ``at`` was, in the largest whole unit: ``12 s``, ``4 min``, ``3 h``."""
    if at is None:
        return ""
    seconds = max(0, int((time.time() if now is None else now) - at))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def clock(at: float | None) -> str:
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_ENV.filters["age"] = age
_ENV.filters["clock"] = clock


def html(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """``template`` rendered with ``context`` (plus ``csrf`` and ``path``), as a page."""
    if "csrf" not in context:
        context["csrf"] = current_csrf(request)
    context.setdefault("path", request.path)
    context.setdefault("signin_page", False)
    context.setdefault("htmx", "HX-Request" in request.headers)
    body = _ENV.get_template(template).render(**context)
    response = web.Response(text=body, content_type="text/html", status=status)
    response.headers.update(SECURITY_HEADERS)
    return response
