"""Admin API for contacts (``DELETE /api/contacts/{number}``, the erasure, is in
:mod:`convo.web.api`).

* ``GET /api/contacts/{number}``: ``{"number", "name", "language", "timezone", "fields"}``;
  404 when there is no such contact.
* ``PUT /api/contacts/{number}`` with ``{"name", "language", "timezone", "fields"}`` (each
  optional): creates the contact (201) or replaces it whole (200), answering what is
  stored. A missing ``timezone`` is guessed from the number; ``fields`` is any JSON object.

The number is written as for ``GET /api/conversations/{number}`` (E.164, URL-encoded or
not; a national number is read as Belgian). Bad input is a 400 naming the attribute.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from convo.contacts.contact import contact_to_json, make_contact
from convo.exceptions import InvalidNumber
from convo.web.api import admin, bad_request, number_param
from convo.web.state import RUNTIME, error_response

_ATTRIBUTES = ("name", "language", "timezone", "fields")


@admin
async def get_contact(request: web.Request) -> web.StreamResponse:
    number = number_param(request.match_info["number"], "number")
    contact = await request.app[RUNTIME].store.get_contact(number)
    if contact is None:
        return error_response(404, f"no contact {number}")
    return web.json_response(contact_to_json(contact))


@admin
async def put_contact(request: web.Request) -> web.StreamResponse:
    number = number_param(request.match_info["number"], "number")
    body = _object(await request.read())
    for name in ("name", "language", "timezone"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"{name}: expected a string or null, got {body[name]!r}")
    fields = body.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise bad_request("fields: expected an object of names and values")
    try:
        contact = make_contact(
            number,
            name=body.get("name"),
            language=body.get("language"),
            timezone=body.get("timezone"),
            fields=fields,
        )
    except (InvalidNumber, ValueError) as exc:
        raise bad_request(str(exc)) from None
    created = await request.app[RUNTIME].store.put_contact(contact)
    return web.json_response(contact_to_json(contact), status=201 if created else 200)


def _object(raw: bytes) -> dict[str, Any]:
    expected = 'expected a JSON object {"name", "language", "timezone", "fields"}'
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(expected) from None
    if not isinstance(body, dict):
        raise bad_request(expected)
    unknown = sorted(set(body) - set(_ATTRIBUTES))
    if unknown:
        raise bad_request(f"unknown attribute(s) {', '.join(map(repr, unknown))}; {expected}")
    return body


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/contacts/{number}", get_contact)
    app.router.add_put("/api/contacts/{number}", put_contact)
