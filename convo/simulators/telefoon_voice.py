"""A fake Telefoon Voice: its REST API, and a caller who listens and presses keys.

API side (document ``002``; served at ``/calls`` and also under ``/v1/voice``): ``X-API-Key``
auth (401 otherwise), ``POST|GET /calls``, ``GET|DELETE /calls/{id}``, ``GET|POST
/conferences``, with the document's field checks (400 with ``{"error": {"code", "message"}}``;
the document defines no error body, this shape is ours). ``fail_next(status)`` makes the
next API requests fail (429 carries ``Retry-After: 1``).

Caller side: :meth:`TelefoonVoiceSimulator.place_call` rings convo's
``{webhook_base}/webhooks/{name}/voice/answer`` with a signed form, reads the
XML or JSON document it gets, and acts it out: Say/Play/Pause are recorded; each Gather (and
Record) takes the next of ``inputs`` (``"1234"`` digits, ``"say:some words"`` speech,
``None`` silence, i.e. a post with no input) and posts it to the action URL; Redirect is
followed; Dial, Conference and Hangup are recorded. The call ends at Hangup, when the
instructions run out, or when a Gather finds no inputs left (the caller hangs up); then
``completed`` is posted to ``/voice/status``. A call requested with ``POST /calls`` is
answered the same way in a tracked task, with inputs from :meth:`queue_answer_inputs`.
What happened is in a
:class:`~convo.simulators.telefoon_voice_caller.CallTranscript`.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any, Self

from aiohttp import web

from convo.providers.telefoon_voice import TTS_LANGUAGES
from convo.simulators._callbacks import CONTROL_PREFIX
from convo.simulators._calls import CallPlayer
from convo.simulators.telefoon_voice_caller import Caller

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_STATUSES = (
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "failed",
    "busy",
    "no-answer",
    "canceled",
)


class TelefoonVoiceSimulator(CallPlayer):
    """See the module docstring. ``numbers``: the Telefoon numbers calls may come ``from``
    (None: any E.164 number)."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        webhook_secret: str = "test-secret",  # noqa: S107  # a dev default, like the API key
        webhook_base: str | None = None,
        name: str = "telefoon_voice",
        numbers: Collection[str] | None = None,
        tts_languages: Collection[str] = TTS_LANGUAGES,
        auto_answer: bool = True,
        max_webhooks: int = 50,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.name = name
        self.numbers = set(numbers) if numbers is not None else None
        self.tts_languages = set(tts_languages)
        self.auto_answer = auto_answer
        self.sent: list[dict[str, Any]] = []
        self.conferences: dict[str, dict[str, Any]] = {}
        self._failures: deque[int] = deque()
        self._caller = Caller(webhook_secret, max_webhooks=max_webhooks)
        self.app = web.Application(middlewares=[self._guard])
        for prefix in ("", "/v1/voice"):
            self.app.router.add_post(f"{prefix}/calls", self._initiate)
            self.app.router.add_get(f"{prefix}/calls", self._list)
            self.app.router.add_get(f"{prefix}/calls/{{call_id}}", self._get)
            self.app.router.add_delete(f"{prefix}/calls/{{call_id}}", self._end)
            self.app.router.add_post(f"{prefix}/conferences", self._create_conference)
            self.app.router.add_get(f"{prefix}/conferences", self._list_conferences)
        self._init_calls()

    @classmethod
    def from_config(
        cls,
        section: Mapping[str, Any],
        *,
        webhook_base: str | None = None,
        provider_name: str | None = None,
        **_ignored: Any,
    ) -> Self:
        """The fake for convo's ``[providers.NAME]`` ``section`` (``api_key``,
        ``webhook_secret``); SMS-only options such as ``auto_status`` are ignored."""
        return cls(
            api_key=str(section.get("api_key") or "test-key"),
            webhook_secret=str(section.get("webhook_secret") or "test-secret"),
            webhook_base=webhook_base,
            name=provider_name or "telefoon_voice",
        )

    def credentials(self) -> dict[str, str]:
        """What convo must be configured with to talk to this fake (secrets unmasked)."""
        return {"api_key": self.api_key, "webhook_secret": self.webhook_secret}

    # -- test controls ----------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` API requests with ``status`` (after auth)."""
        self._failures.extend([status] * count)

    # -- REST API ---------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        headers = {"Retry-After": "1"} if status == 429 else None
        body = {"error": {"code": code, "message": message}}
        return web.json_response(body, status=status, headers=headers)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):  # ours, not Telefoon's: no API key
            control: web.StreamResponse = await handler(request)
            return control
        if request.headers.get("X-API-Key") != self.api_key:
            return self._error(401, "unauthorized", "missing or invalid X-API-Key")
        if self._failures:
            status = self._failures.popleft()
            return self._error(status, "simulated", f"simulated failure {status}")
        response: web.StreamResponse = await handler(request)
        return response

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text='{"error": {"code": "invalid_body", "message": "expected a JSON object"}}',
                content_type="application/json",
            )
        return body

    async def _initiate(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        for key in ("to", "from"):
            if not isinstance(body.get(key), str) or not _E164.fullmatch(body[key]):
                return self._error(400, "invalid_parameter", f"{key!r} must be an E.164 number")
        if self.numbers is not None and body["from"] not in self.numbers:
            return self._error(400, "invalid_parameter", "'from' must be a Telefoon number")
        for key in ("url", "status_callback"):
            if key in body and not str(body[key]).startswith(("http://", "https://")):
                return self._error(400, "invalid_parameter", f"{key!r} must be an http(s) URL")
        timeout = body.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            return self._error(400, "invalid_parameter", "'timeout' must be a positive integer")
        if not isinstance(body.get("record", False), bool):
            return self._error(400, "invalid_parameter", "'record' must be a boolean")
        lang = body.get("tts_language")
        if lang is not None and lang not in self.tts_languages:
            return self._error(400, "invalid_parameter", f"unsupported tts_language {lang!r}")
        self.sent.append(body)
        call = self._new_call(body["from"], body["to"], "outbound", status="queued")
        if self.auto_answer and "url" in body:
            self._answer_outbound(call, body["url"], body.get("status_callback") or "")
        return web.json_response(call, status=201)

    def _new_call(self, from_: str, to: str, direction: str, status: str) -> dict[str, Any]:
        call: dict[str, Any] = {
            "id": "CA" + uuid.uuid4().hex,
            "status": status,
            "direction": direction,
        }
        call |= {"from": from_, "to": to, "duration": 0, "price_unit": "EUR"}
        self.calls[call["id"]] = call
        return call

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("status", _STATUSES[0]) not in _STATUSES:
            return self._error(400, "invalid_parameter", "unknown status filter")
        if query.get("direction", "inbound") not in ("inbound", "outbound"):
            return self._error(400, "invalid_parameter", "unknown direction filter")
        try:
            page, size = int(query.get("page", "1")), int(query.get("page_size", "20"))
        except ValueError:
            return self._error(400, "invalid_parameter", "page and page_size are integers")
        if page < 1 or not 1 <= size <= 100:
            return self._error(400, "invalid_parameter", "page >= 1 and page_size 1..100")
        calls = [
            c
            for c in self.calls.values()
            if query.get("status", c["status"]) == c["status"]
            and query.get("direction", c["direction"]) == c["direction"]
        ]
        window = calls[(page - 1) * size : page * size]
        return web.json_response({"calls": window, "total": len(calls)})

    async def _get(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return self._error(404, "not_found", "call not found")
        return web.json_response(call)

    async def _end(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return self._error(404, "not_found", "call not found")
        if call["status"] in ("queued", "ringing"):
            call["status"] = "canceled"
        elif call["status"] == "in-progress":
            call["status"] = "completed"
        return web.Response(status=204)

    async def _create_conference(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        size = body.get("max_participants", 100)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            return self._error(400, "invalid_parameter", "'max_participants' must be >= 1")
        self.sent.append(body)
        room: dict[str, Any] = {
            "id": "CF" + uuid.uuid4().hex,
            "status": "init",
            "participant_count": 0,
        }
        room |= {"friendly_name": str(body.get("friendly_name", "")) or None}
        self.conferences[room["id"]] = room
        return web.json_response(room, status=201)

    async def _list_conferences(self, request: web.Request) -> web.Response:
        return web.json_response({"conferences": list(self.conferences.values())})

    # -- the caller's side (convo.simulators._calls) -----------------------------------

    async def deliver_status(self, call_id: str, status: str, *, duration: int = 0) -> int:
        """Post a status change of a known call to convo's ``/voice/status``; its HTTP status."""
        call = self.calls[call_id]
        call["status"] = status
        fields = self._caller.fields(call | {"duration": duration}, "status")
        return (await self._caller.post(self._webhook("status"), fields)).status_code
