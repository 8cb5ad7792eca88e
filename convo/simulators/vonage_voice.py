"""A fake Vonage Voice API: ``/v1/calls``, and a caller who follows NCCOs.

API side: ``POST /v1/calls`` (``to``/``from`` phone endpoints, ``answer_url``,
``event_url``, ``ringing_timer``) -> 201 ``{"uuid", "status": "started", "direction",
"conversation_uuid"}``; ``GET /v1/calls/{uuid}``; ``PUT /v1/calls/{uuid}``
``{"action": "hangup"}`` -> 204. Requests need ``Authorization: Bearer`` a JWT signed
RS256 with the application's private key (checked with its public key) whose
``application_id`` is ours; otherwise 401. Errors are Vonage's problem bodies
``{"type", "title", "detail"}``; ``fail_next(status)`` makes the next requests fail.

Caller side, as Vonage calls an application: JSON posts with ``Authorization: Bearer`` a
JWT signed HS256 with the signature secret (``iat``, ``jti``, ``application_id``,
``payload_hash``). The answer webhook carries ``uuid``, ``conversation_uuid``, ``from``,
``to`` (digits, no ``+``); an ``input`` result ``dtmf`` and ``speech``; a ``connect``'s
synchronous event the dialled leg's ``status``; a ``record`` event ``recording_url``,
``start_time``, ``end_time`` and no numbers, and its answer is not used: the NCCO goes on.
The call ends where an NCCO ends. NCCO actions are read as the caller's document nodes
(``talk`` -> Say, ``stream`` -> Play, ``input`` -> Gather, ``record`` -> Record,
``connect`` -> Dial with a Number/Sip, ``conversation`` -> Dial with a Conference, ``notify``
-> Redirect), so transcripts read as on every voice simulator.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from convo.simulators._callbacks import CONTROL_PREFIX
from convo.simulators._calls import CallPlayer
from convo.simulators.telefoon_voice_caller import Caller
from convo.voice.twiml import Node

#: convo's call statuses (as the caller keeps them) -> Vonage's.
_STATUS = {"queued": "started", "ringing": "ringing", "in-progress": "answered",
           "completed": "completed", "failed": "failed", "busy": "busy",
           "no-answer": "timeout", "canceled": "cancelled"}  # fmt: skip


def _digits(number: str) -> str:
    return number.removeprefix("+")


class VonageDialect:
    """How Vonage Voice webhooks look (module docstring)."""

    end_is_hangup: ClassVar[bool] = True
    record_answers: ClassVar[bool] = False
    silence_falls_through: ClassVar[bool] = False

    def __init__(self, application_id: str, signature_secret: str, api_key: str) -> None:
        self.application_id = application_id
        self.secret = signature_secret
        self.api_key = api_key

    def call_fields(self, call: Mapping[str, Any], route: str) -> dict[str, Any]:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        base = {"conversation_uuid": call["conversation"], "timestamp": stamp}
        if route == "record":
            return base  # Vonage's recording event names no numbers
        fields = base | {
            "uuid": call["id"],
            "from": _digits(call["from"]),
            "to": _digits(call["to"]),
        }
        if route == "dial":  # the dialled leg's event: a new leg of the same conversation
            fields |= {"uuid": str(uuid.uuid4()), "direction": "outbound"}
        if route == "status":
            fields |= {
                "status": _STATUS.get(call["status"], call["status"]),
                "direction": call["direction"],
                "duration": str(call.get("duration", 0)),
            }
        return fields

    def input_fields(self, given: str | None, where: str) -> dict[str, Any]:
        if given is None:
            return {
                "dtmf": {"digits": "", "timed_out": True},
                "speech": {"timeout_reason": "start_timeout"},
            }
        if given.startswith("say:"):
            return {
                "dtmf": {"digits": "", "timed_out": False},
                "speech": {"results": [{"text": given[4:], "confidence": "0.91"}]},
            }
        return {"dtmf": {"digits": given, "timed_out": False}, "speech": {}}

    def dial_fields(self, outcome: str) -> dict[str, Any]:
        return {"status": _STATUS.get(outcome, outcome)}

    def recording_fields(self, url: str | None) -> dict[str, Any]:
        if url is None:
            return {}
        end = datetime.now(UTC)
        return {
            "recording_url": url,
            "recording_uuid": str(uuid.uuid4()),
            "start_time": (end - timedelta(seconds=5)).isoformat().replace("+00:00", "Z"),
            "end_time": end.isoformat().replace("+00:00", "Z"),
            "size": 40000,
        }

    def request(self, url: str, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(fields).encode("utf-8")
        claims = {
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            "iss": "Vonage",
            "application_id": self.application_id,
            "api_key": self.api_key,
            "payload_hash": hashlib.sha256(body).hexdigest(),
        }
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        return body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def parse(self, body: bytes, content_type: str) -> list[Node]:
        try:
            actions = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"NCCO is not JSON: {exc}") from None
        if not isinstance(actions, list):
            raise ValueError("an NCCO is a JSON array of actions")
        nodes: list[Node] = []
        recording = False
        for index, action in enumerate(actions):
            if _records_call(action):
                recording = True  # the whole call from here on: shown on the dial it records
                continue
            node = _node(action, index)
            if recording and node.verb == "Dial" and node.children[0].verb != "Conference":
                node = Node("Dial", {**node.attrs, "record": True}, node.text, node.children)
            nodes.append(node)
        return nodes


def _records_call(action: object) -> bool:
    """A ``record`` action with no end condition: asynchronous, it records until the end."""
    return (
        isinstance(action, dict)
        and action.get("action") == "record"
        and not {"endOnKey", "timeOut", "endOnSilence"} & action.keys()
    )


def _url(action: Mapping[str, Any]) -> str:
    urls = action.get("eventUrl") or [""]
    return str(urls[0])


def _node(action: object, index: int) -> Node:
    if not isinstance(action, dict) or not isinstance(action.get("action"), str):
        raise ValueError(f"NCCO action {index} is not an object with an 'action'")
    kind = action["action"]
    attrs = {k: v for k, v in action.items() if isinstance(v, str | int | bool) and k != "text"}
    if kind == "talk":
        return Node("Say", attrs, str(action.get("text", "")))
    if kind == "stream":
        return Node("Play", attrs, str((action.get("streamUrl") or [""])[0]))
    if kind == "input":
        return Node("Gather", {**attrs, "action": _url(action)})
    if kind == "record":
        return Node("Record", {**attrs, "action": _url(action)})
    if kind == "connect":
        endpoint = (action.get("endpoint") or [{}])[0]
        target = (
            Node("Sip", {}, str(endpoint.get("uri", "")))
            if endpoint.get("type") == "sip"
            else Node("Number", {}, "+" + str(endpoint.get("number", "")))
        )
        dial_attrs = {**attrs, "action": _url(action)} if action.get("eventUrl") else attrs
        return Node("Dial", dial_attrs, children=(target,))
    if kind == "conversation":
        room = Node("Conference", attrs, str(action.get("name", "")))
        return Node("Dial", {}, children=(room,))
    if kind == "notify":
        return Node("Redirect", attrs, _url(action))
    raise ValueError(f"NCCO action {index}: unknown action {kind!r}")


class VonageVoiceSimulator(CallPlayer):
    """See the module docstring; ``.sent`` holds the call requests convo made."""

    def __init__(
        self,
        *,
        application_id: str = "test-application",
        public_key: RSAPublicKey | None = None,
        signature_secret: str = "test-signature-secret-of-32-bytes",  # noqa: S107 - dev default
        api_key: str = "test-key",
        webhook_base: str | None = None,
        name: str = "vonage_voice",
        max_webhooks: int = 50,
    ) -> None:
        self.application_id = application_id
        self.public_key = public_key
        self.signature_secret = signature_secret
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.failures: list[int] = []
        self._caller = Caller(
            max_webhooks=max_webhooks,
            dialect=VonageDialect(application_id, signature_secret, api_key),
            media_host="api.nexmo.com/v1/files",
        )
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_post("/v1/calls", self._create)
        self.app.router.add_get("/v1/calls/{uuid}", self._get)
        self.app.router.add_put("/v1/calls/{uuid}", self._update)
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
        """The fake for convo's section: its application, the public half of its private
        key (``private_key`` or ``private_key_path``) and its signature secret."""
        pem = str(section.get("private_key") or "")
        path = str(section.get("private_key_path") or "")
        if not pem and path:
            with open(path, encoding="utf-8") as file:
                pem = file.read()
        public = None
        if pem:
            key = load_pem_private_key(pem.encode(), password=None)
            if isinstance(key, RSAPrivateKey):
                public = key.public_key()
        return cls(
            application_id=str(section.get("application_id") or "test-application"),
            public_key=public,
            signature_secret=str(
                section.get("signature_secret") or "test-signature-secret-of-32-bytes"
            ),
            webhook_base=webhook_base,
            name=provider_name or "vonage_voice",
        )

    def credentials(self) -> dict[str, str]:
        return {
            "application_id": self.application_id,
            "signature_secret": self.signature_secret,
            "public_key": "the public half of the section's private_key checks API tokens"
            if self.public_key
            else "none (no private_key in the section): API calls are refused",
        }

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` API requests with ``status`` (after auth)."""
        self.failures.extend([status] * count)

    @staticmethod
    def _problem(status: int, title: str, detail: str) -> web.Response:
        body = {"type": "https://developer.nexmo.com/api-errors", "title": title, "detail": detail}
        headers = {"Retry-After": "1"} if status == 429 else None
        return web.json_response(body, status=status, headers=headers)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):  # ours, not Vonage's: no JWT
            control: web.StreamResponse = await handler(request)
            return control
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if self.public_key is None or scheme.lower() != "bearer":
            return self._problem(401, "Unauthorized", "a Bearer JWT is required")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.InvalidTokenError as exc:
            return self._problem(401, "Unauthorized", f"invalid token: {exc}")
        if claims.get("application_id") != self.application_id:
            return self._problem(401, "Unauthorized", "token is for another application")
        if self.failures:
            status = self.failures.pop(0)
            return self._problem(status, "Simulated failure", f"simulated {status}")
        response: web.StreamResponse = await handler(request)
        return response

    def _new_call(self, from_: str, to: str, direction: str, status: str) -> dict[str, Any]:
        call: dict[str, Any] = {"id": str(uuid.uuid4()), "conversation": "CON-" + str(uuid.uuid4())}
        call |= {"status": status, "direction": direction, "from": from_, "to": to, "duration": 0}
        self.calls[call["id"]] = call
        return call

    def _resource(self, call: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "uuid": call["id"],
            "conversation_uuid": call["conversation"],
            "status": _STATUS.get(call["status"], call["status"]),
            "direction": call["direction"],
        }

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._problem(400, "Bad Request", "expected a JSON object")
        try:
            to = body["to"][0]["number"]
            from_ = body["from"]["number"]
            answer_url = body["answer_url"][0]
        except (KeyError, IndexError, TypeError):
            return self._problem(400, "Bad Request", "to, from and answer_url are required")
        numbers_ok = all(isinstance(n, str) and n.isdigit() for n in (to, from_))
        if not numbers_ok:
            return self._problem(400, "Bad Request", "numbers are digits without '+'")
        self.sent.append(body)
        call = self._new_call("+" + from_, "+" + to, "outbound", status="queued")
        events = (body.get("event_url") or [""])[0]
        self._answer_outbound(call, str(answer_url), str(events))
        return web.json_response(self._resource(call), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["uuid"])
        if call is None:
            return self._problem(404, "Not Found", "no such call")
        return web.json_response(self._resource(call))

    async def _update(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["uuid"])
        if call is None:
            return self._problem(404, "Not Found", "no such call")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("action") != "hangup":
            return self._problem(400, "Bad Request", "only {'action': 'hangup'} is simulated")
        call["status"] = "completed"
        return web.Response(status=204)
