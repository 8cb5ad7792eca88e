"""``POST /api/conversations``: start a flow on a number (admin API).

Body ``{"to", "flow", "line", "channel", "language", "params"}``: ``to`` is required;
``flow`` defaults to the line's flow, ``line`` to the first line carrying ``channel``
(``sms``, default, or ``voice``), ``language`` to the contact's, ``params`` to none. It runs
:func:`convo.outbound.start_conversation` and answers 201 with
``{"id", "to", "line", "flow", "channel", "status", "language"}`` plus ``messages``
(SMS: the texts queued) or ``call_id`` (voice). Errors are ``{"error": "..."}``: 400 for a
bad body, an impossible number, bad params, a language or channel the flow lacks; 404 for
an unknown flow or line; 409 for a number that opted out of the line (nothing is sent).

``Idempotency-Key`` (1 to 255 printable ASCII characters): the first request with a key
claims it in the store, and its 201 answer is stored with it; a retry with the same key
and the same body gets that answer again (with ``Idempotent-Replayed: true``) and starts
nothing. The same key with another body is a 422; while the first request is still being
handled (or if its process died half-way, when it is unknown what was sent) a retry gets
409. A request refused (4xx) or whose call the provider refused starts nothing, and its key
may be used again. Keys are kept as long as ``[store] seen_retention``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from convo import outbound
from convo.exceptions import FlowRuntimeError, InvalidNumber, ProviderError
from convo.models import CHANNELS
from convo.web.api import admin, bad_request
from convo.web.state import RUNTIME, error_response

_FIELDS = ("to", "flow", "line", "channel", "language", "params")
_EXPECTED = 'expected a JSON object {"to", "flow", "line", "channel", "language", "params"}'
MAX_KEY = 255


@admin
async def post_conversation(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    body = _body(raw)
    key = _idempotency_key(request)
    store = request.app[RUNTIME].store
    if key is None:
        return _created(await _start(request, body))
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    claimed = f"POST /api/conversations {key}"
    found = await store.claim_request(claimed, fingerprint, time.time())
    if found is not None:
        if found.fingerprint != fingerprint:
            return error_response(
                422, "Idempotency-Key was already used with a different request body"
            )
        if found.answer is None:
            return error_response(
                409,
                "a request with this Idempotency-Key is still being handled (or stopped "
                "half-way); retry later, or check GET /api/conversations/{number}",
            )
        response = _created(json.loads(found.answer))
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        answer = await _start(request, body)
    except (FlowRuntimeError, InvalidNumber, ProviderError):
        # Refused before anything was queued, or the call was not placed: nothing started,
        # so the key is free again. Anything else (the store failed half-way) keeps it
        # claimed without an answer: what was sent is unknown, and a retry must not guess.
        await store.settle_request(claimed, None)
        raise
    await store.settle_request(claimed, json.dumps(answer))
    return _created(answer)


async def _start(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    started = await outbound.start_conversation(
        request.app[RUNTIME],
        to=body["to"],
        flow=body.get("flow"),
        line=body.get("line"),
        channel=body.get("channel", "sms"),
        language=body.get("language"),
        params=body.get("params") or {},
    )
    return started.to_json()


def _created(answer: dict[str, Any]) -> web.Response:
    return web.json_response(answer, status=201)


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request(_EXPECTED) from None
    if not isinstance(body, dict):
        raise bad_request(_EXPECTED)
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(map(repr, unknown))}; {_EXPECTED}")
    if not isinstance(body.get("to"), str) or not body["to"].strip():
        raise bad_request("to: the number to start the conversation with is required")
    for name in ("flow", "line", "language"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"{name}: expected a string, got {body[name]!r}")
    if body.get("channel", "sms") not in CHANNELS:
        raise bad_request(f"channel: expected sms or voice, got {body['channel']!r}")
    if body.get("params") is not None and not isinstance(body["params"], dict):
        raise bad_request("params: expected an object of names and values")
    return body


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not all(" " <= c <= "~" for c in key):
        raise bad_request(f"Idempotency-Key: expected 1 to {MAX_KEY} printable ASCII characters")
    return key


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/conversations", post_conversation)
