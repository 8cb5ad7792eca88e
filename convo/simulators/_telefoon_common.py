"""The fake ``/messages`` API that Telefoon SMS and Telefonie SMS share.

:class:`TelefoonFamilySimulator` serves ``GET|POST /messages`` and
``GET|DELETE /messages/{message_id}`` at the root of its app (point the adapter's
``base_url`` at the server), checks ``X-API-Key`` (401 when missing or wrong), validates
what the document requires (400 with ``{"error_code", "error_message"}``: the documents give
no error body, so this one borrows ``Message``'s error field names), and answers 201 with a
``Message``. Subclasses say what differs: ``statuses``, ``list_filters`` and
``_check_send``/``_extra_fields``.

It calls convo back like the real provider would: :meth:`deliver_inbound` and
:meth:`deliver_status` POST a ``Message`` JSON signed with ``X-Signature`` (no header when
``webhook_secret`` is empty). Test knobs: ``http_errors`` (HTTP statuses answered, in order,
to the next API requests: 429 comes with ``Retry-After: 1``) and ``auto_status`` (a
``delivered`` callback ``status_delay`` seconds after each send).

The ``/_simulator/`` control API (``_callbacks.ControlApi``; no ``X-API-Key`` needed) makes a
phone text convo, sends a status callback for an accepted message (by its ``id``) and lists
what convo sent. :meth:`TelefoonFamilySimulator.from_config` builds the fake from the
``[providers.NAME]`` section convo itself uses (``api_key``, ``webhook_secret``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from convo.providers._telefoon_common import sign
from convo.simulators._callbacks import CONTROL_PREFIX, ControlApi, webhook_answer
from convo.sms.segments import analyze

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Request fields kept on the record; all but media_url stay out of the Message we show.
STORED = ("status_callback", "gdpr_consent_ref", "sender_id", "validity_period", "media_url")
HIDDEN = frozenset(STORED) - {"media_url"}


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


class TelefoonFamilySimulator(ControlApi):
    """The fake; ``.app`` is the aiohttp application, ``.sent`` the accepted send requests."""

    statuses: ClassVar[frozenset[str]]
    list_filters: ClassVar[tuple[str, ...]] = ()
    default_name: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        webhook_secret: str = "test-secret",  # noqa: S107  # a dev default, not a real secret
        webhook_base: str | None = None,
        provider_name: str | None = None,
        auto_status: bool = False,
        status_delay: float = 0.01,
        price_per_segment: str = "0.0750",
        price_unit: str = "EUR",
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.provider_name = provider_name or self.default_name
        self.auto_status = auto_status
        self.status_delay = status_delay
        self.price_per_segment = price_per_segment
        self.price_unit = price_unit
        self.http_errors: list[int] = []
        self.sent: list[dict[str, Any]] = []
        self.sent_ids: list[str] = []  # the Message id of each entry of ``sent``
        self.messages: dict[str, dict[str, Any]] = {}  # id -> stored record (all fields)
        self.webhooks: list[tuple[str, dict[str, Any], int]] = []  # (url, body, status)
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_get("/messages", self._list)
        self.app.router.add_post("/messages", self._send)
        self.app.router.add_get("/messages/{message_id}", self._get)
        self.app.router.add_delete("/messages/{message_id}", self._delete)
        self._init_control()

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """Same ``api_key`` and ``webhook_secret`` (none configured: unsigned callbacks)."""
        return {
            "api_key": str(section.get("api_key") or "test-key"),
            "webhook_secret": str(section.get("webhook_secret") or ""),
        }

    def credentials(self) -> dict[str, str]:
        """What convo must be configured with to talk to this fake (secrets unmasked)."""
        return {"api_key": self.api_key, "webhook_secret": self.webhook_secret}

    # -- the API -----------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):  # ours, not the provider's: no API key
            control: web.StreamResponse = await handler(request)
            return control
        if request.headers.get("X-API-Key") != self.api_key:
            return _error(401, "missing or invalid X-API-Key")
        if self.http_errors:
            status = self.http_errors.pop(0)
            headers = {"Retry-After": "1"} if status == 429 else None
            return _error(status, "simulated failure", headers=headers)
        response: web.StreamResponse = await handler(request)
        return response

    async def _send(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return _error(400, "body is not valid JSON")
        if not isinstance(payload, dict):
            return _error(400, "body must be a JSON object")
        problem = self._check_common(payload) or self._check_send(payload)
        if problem:
            return _error(400, problem)
        body = payload.get("body") or ""
        segments = analyze(body).parts if body else 0
        record: dict[str, Any] = {
            "id": "SM" + uuid.uuid4().hex,
            "status": "queued",
            "direction": "outbound",
            "from": payload["from"],
            "to": payload["to"],
            "body": body,
            "num_segments": segments,
            "price": f"{float(self.price_per_segment) * max(segments, 1):.4f}",
            "price_unit": self.price_unit,
            "date_created": iso_now(),
            **self._extra_fields(payload),
        }
        record.update({k: payload[k] for k in STORED if k in payload})
        self.messages[record["id"]] = record
        self.sent.append(dict(payload))
        self.sent_ids.append(record["id"])
        if self.auto_status:
            self._spawn(self._auto_deliver(record["id"]))
        return web.json_response(self.public(record), status=201)

    def _check_common(self, payload: dict[str, Any]) -> str | None:
        for field in ("to", "from"):
            if not isinstance(payload.get(field), str) or not payload[field]:
                return f"'{field}' is required"
        if not E164.fullmatch(payload["to"]):
            return "'to' must be an E.164 phone number"
        if "body" in payload and not isinstance(payload["body"], str):
            return "'body' must be a string"
        if "status_callback" in payload and not is_url(payload["status_callback"]):
            return "'status_callback' must be an http(s) URL"
        return None

    def _check_send(self, payload: dict[str, Any]) -> str | None:
        """Provider-specific validation; the error text, or None when acceptable."""
        raise NotImplementedError

    def _extra_fields(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Provider-specific ``Message`` fields of a new outbound record."""
        return {}

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("direction") not in (None, "inbound", "outbound"):
            return _error(400, "'direction' must be inbound or outbound")
        if "status" in query and query["status"] not in self.statuses:
            return _error(400, f"'status' must be one of {', '.join(sorted(self.statuses))}")
        try:
            page = int(query.get("page", "1"))
            page_size = int(query.get("page_size", "50"))
        except ValueError:
            return _error(400, "'page' and 'page_size' must be integers")
        if page < 1 or not 1 <= page_size <= 100:
            return _error(400, "'page' must be >= 1 and 'page_size' between 1 and 100")
        wanted = {k: query[k] for k in ("direction", "status", *self.list_filters) if k in query}
        found = [m for m in self.messages.values() if all(m.get(k) == v for k, v in wanted.items())]
        found.reverse()  # newest first
        chosen = found[(page - 1) * page_size : page * page_size]
        return web.json_response(
            {"messages": [self.public(m) for m in chosen], "total": len(found)}
        )

    async def _get(self, request: web.Request) -> web.Response:
        record = self.messages.get(request.match_info["message_id"])
        if record is None:
            return _error(404, "message not found")
        return web.json_response(self.public(record))

    async def _delete(self, request: web.Request) -> web.Response:
        if self.messages.pop(request.match_info["message_id"], None) is None:
            return _error(404, "message not found")
        return web.Response(status=204)

    @staticmethod
    def public(record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as the API shows it: the ``Message`` schema's fields only."""
        return {k: v for k, v in record.items() if k not in HIDDEN}

    # -- calling convo back -------------------------------------------------------------

    def inbound_record(self, sender: str, to: str, text: str, **extra: Any) -> dict[str, Any]:
        """Store and return a new inbound ``Message`` (status ``received``)."""
        record = {
            "id": "SM" + uuid.uuid4().hex,
            "status": "received",
            "direction": "inbound",
            "from": sender,
            "to": to,
            "body": text,
            "num_segments": analyze(text).parts if text else 0,
            "date_created": iso_now(),
            **extra,
        }
        self.messages[record["id"]] = record
        return record

    async def deliver_inbound(self, sender: str, to: str, text: str) -> int:
        """POST an inbound ``Message`` to ``{webhook_base}/webhooks/NAME/inbound``, signed;
        returns the HTTP status convo answered."""
        record = self.inbound_record(sender, to, text)
        return await self.post_webhook(self._webhook_url("inbound"), self.public(record))

    async def deliver_status(
        self,
        message_id: str,
        status: str = "delivered",
        *,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> int:
        """Move an outbound message to ``status`` and POST it to convo (``webhook_base`` if
        set, else the message's ``status_callback``); returns convo's HTTP status."""
        if status not in self.statuses:
            raise ValueError(f"unknown status {status!r}")
        record = self.messages[message_id]
        record["status"] = status
        record["date_sent"] = record.get("date_sent") or iso_now()
        if error_code is not None:
            record["error_code"], record["error_message"] = error_code, error_message or ""
        url = self._webhook_url("status") if self.webhook_base else record.get("status_callback")
        if not url:
            raise RuntimeError("no webhook_base and no status_callback to deliver to")
        return await self.post_webhook(url, self.public(record))

    async def post_webhook(self, url: str, message: dict[str, Any]) -> int:
        """POST ``message`` as JSON with its ``X-Signature``; records and returns the status."""
        body = json.dumps(message).encode()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Signature"] = sign(self.webhook_secret, body)
        async with self._client().post(url, data=body, headers=headers) as response:
            await response.read()
            self.webhooks.append((url, message, response.status))
            return response.status

    def _webhook_url(self, kind: str) -> str:
        if not self.webhook_base:
            raise RuntimeError("webhook_base is not set: where is convo?")
        return f"{self.webhook_base}/webhooks/{self.provider_name}/{kind}"

    # -- the control API ----------------------------------------------------------------

    async def simulate_inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        url = self._webhook_url("inbound")
        return webhook_answer(await self.deliver_inbound(sender, to, text), url)

    async def simulate_status(self, message_id: str, status: str) -> dict[str, Any]:
        record = self.messages.get(message_id)
        if record is None or record["direction"] != "outbound":
            raise KeyError(f"no message {message_id!r} was sent to this simulator")
        if status not in self.statuses:
            raise ValueError(
                f"unknown status {status!r}; expected one of {', '.join(sorted(self.statuses))}"
            )
        url = self._webhook_url("status") if self.webhook_base else record.get("status_callback")
        return webhook_answer(await self.deliver_status(message_id, status), url)

    def sent_messages(self) -> list[dict[str, Any]]:
        out = []
        for payload, message_id in zip(self.sent, self.sent_ids, strict=False):
            record = self.messages.get(message_id)  # None once convo erased it
            entry = {
                "message_id": message_id,
                "from": payload["from"],
                "to": payload["to"],
                "text": payload.get("body") or "",
                "status": record["status"] if record else "deleted",
            }
            entry.update({k: payload[k] for k in STORED if k in payload})
            out.append(entry)
        return out

    async def _auto_deliver(self, message_id: str) -> None:
        await asyncio.sleep(self.status_delay)
        # convo gone, or the message erased meanwhile: a real provider gives up too.
        with contextlib.suppress(aiohttp.ClientError, RuntimeError, KeyError):
            await self.deliver_status(message_id, "delivered")


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error_code": status, "error_message": message}, status=status, headers=headers
    )
