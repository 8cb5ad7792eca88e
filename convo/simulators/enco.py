"""A fake Proximus Enco SMS API for tests and local work.

Served at the root of its app (point the adapter's ``base_url`` at the server and its
``token_url`` at ``/token``):

* ``POST /token``: OAuth2 client credentials (HTTP Basic or form ``client_id``/
  ``client_secret``); 401 ``invalid_client``, 400 ``unsupported_grant_type``;
* every ``/sms/...`` path and ``/logs`` want ``Authorization: Bearer`` with a live token,
  else 401 with a gateway ``fault`` body; :meth:`EncoSimulator.expire_tokens` kills the
  live ones (so the adapter must renew);
* ``POST /sms/outboundmessages[/{address}]`` (address must be dedicated: else 404),
  ``POST /sms/outboundmessages/length``, ``GET /sms/outboundmessages/deliveryinfos/{id}``,
  ``GET /sms/inboundmessages/shared|{address}`` (``startdatetime``, ``enddatetime``,
  ``new-only`` required; ``new-only=true`` hands each message out once),
  ``GET /sms/dedicatedaddresses``, ``GET /logs`` (each send, and each refused send, of an
  origin, filtered by month and interval and paged: ``convo.simulators._enco_logs`` says
  what this fake assumes where the document is silent). Validation errors are OneAPI
  ``requestError`` bodies.

The ``/_simulator/`` control API (``_callbacks.ControlApi``; no token needed): ``POST
/_simulator/inbound`` queues a text for convo's next poll (Enco has no inbound webhook),
``POST /_simulator/status`` ``{"message_id", "status"}`` changes a delivery info (Enco's
``DeliveredToTerminal``, ``DeliveryImpossible``, ... or convo's ``delivered``,
``undelivered``, ``sent``) and POSTs it to the message's ``callbackURL`` if it has one (else
convo's status poll finds it), ``GET /_simulator/sent`` lists the sends.
:meth:`EncoSimulator.from_config` builds the fake from convo's ``[providers.NAME]`` section
(``client_id``, ``client_secret``, ``address``, ``shared_address``).

Test knobs: ``single_septet_extensions`` (count a GSM-7 extension character such as ``€``
as one character, not two, in ``/length`` and the ``forceCharacterLimit`` check, as some
networks do: then convo's count and Enco's disagree; ``length_requests`` lists the texts
``/length`` was asked about), ``logs`` (each origin's ``/logs`` entries: a test may
back-date their ``moment``) and ``log_requests`` (the query of each ``/logs`` call),
``http_errors`` (statuses answered, in order, to the next ``/sms`` and ``/logs``
requests), ``auto_status`` (``DeliveredToTerminal`` shortly after each send),
:meth:`queue_inbound` (a text where the next poll finds it), :meth:`deliver_status`
(changes a delivery info and POSTs it to the message's ``callbackURL``, re-rooted at
``webhook_base`` when set).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from convo.providers._enco_wire import STATUS_MAP, format_time
from convo.simulators._callbacks import ControlApi, webhook_answer
from convo.simulators._enco_logs import BadLogQuery, answer, parse_query
from convo.simulators._telefoon_common import E164, is_url
from convo.sms.segments import PART_LIMIT, SINGLE_LIMIT, SegmentInfo, analyze

# convo's neutral names for the deliveryStatus values that mean them.
_STATUS_ALIASES = {
    "delivered": "DeliveredToTerminal",
    "undelivered": "DeliveryImpossible",
    "failed": "DeliveryImpossible",
    "sent": "DeliveredToNetwork",
}


class EncoSimulator(ControlApi):
    """The fake; ``.app`` is the aiohttp application, ``.sent`` the accepted sends."""

    def __init__(
        self,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",  # noqa: S107  # a dev default, not a real secret
        dedicated_addresses: Sequence[str] = ("8888",),
        shared_address: str = "8937",
        token_ttl: float = 3600.0,
        webhook_base: str | None = None,
        provider_name: str = "enco",
        auto_status: bool = False,
        status_delay: float = 0.01,
        single_septet_extensions: bool = False,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.dedicated_addresses = list(dedicated_addresses)
        self.shared_address = shared_address
        self.token_ttl = token_ttl
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.provider_name = provider_name
        self.auto_status = auto_status
        self.status_delay = status_delay
        self.single_septet_extensions = single_septet_extensions
        self.length_requests: list[str] = []
        self.http_errors: list[int] = []
        self.sent: list[dict[str, Any]] = []
        self.delivery_infos: dict[str, dict[str, Any]] = {}
        self.inbound: list[dict[str, Any]] = []  # queued texts, with "to" and "retrieved"
        self.webhooks: list[tuple[str, dict[str, Any], int]] = []
        self.tokens_issued = 0
        # origin address -> its /logs entries, oldest first (with "type" and "moment")
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.log_requests: list[dict[str, str]] = []  # the query of each GET /logs
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.app = web.Application(middlewares=[self._guard])
        route = self.app.router
        route.add_post("/token", self._token)
        route.add_post("/sms/outboundmessages/length", self._length)
        route.add_post("/sms/outboundmessages", self._send)
        route.add_post("/sms/outboundmessages/{address}", self._send)
        route.add_get("/sms/outboundmessages/deliveryinfos/{info_id}", self._delivery_info)
        route.add_get("/sms/inboundmessages/{address}", self._inbound)
        route.add_get("/sms/dedicatedaddresses", self._dedicated)
        route.add_get("/logs", self._logs)
        self._init_control()

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """Same client credentials, its ``address`` as the account's dedicated address, its
        ``shared_address``."""
        address = str(section.get("address") or "")
        return {
            "client_id": str(section.get("client_id") or "test-client"),
            "client_secret": str(section.get("client_secret") or "test-secret"),
            "dedicated_addresses": [address] if address else ["8888"],
            "shared_address": str(section.get("shared_address") or "8937"),
        }

    def credentials(self) -> dict[str, str]:
        """What convo must be configured with to talk to this fake (secrets unmasked)."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "address": ", ".join(self.dedicated_addresses),
            "shared_address": self.shared_address,
        }

    # -- auth ---------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            with contextlib.suppress(ValueError):
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if (client_id, secret) != (self.client_id, self.client_secret):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = secrets.token_hex(16)
        self._tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_ttl)}
        )

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (the next API call gets 401)."""
        self._tokens.clear()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/sms/") or request.path == "/logs":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if self._tokens.get(token, 0.0) < time.monotonic():
                fault = {"code": 900901, "message": "Invalid Credentials",
                         "description": "Access failure: invalid or expired token"}  # fmt: skip
                return web.json_response({"fault": fault}, status=401)
            if self.http_errors:
                status = self.http_errors.pop(0)
                headers = {"Retry-After": "1"} if status == 429 else None
                return _fault(status, "SVC0001", "A service error occurred", headers=headers)
        response: web.StreamResponse = await handler(request)
        return response

    # -- outbound -----------------------------------------------------------------------

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            data = await request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def _send(self, request: web.Request) -> web.Response:
        address = request.match_info.get("address")
        if address is not None and address not in self.dedicated_addresses:
            return _fault(404, "SVC0004", "No valid addresses provided in message part %1",
                          [address])  # fmt: skip
        response = await self._accept_send(request, address or self.shared_address)
        if response.status >= 400:  # a refused call of one of our origins: an error log
            self._log(address or self.shared_address, "sms-outbound-error", str(uuid.uuid4()),
                      response.status, {})  # fmt: skip
        return response

    async def _accept_send(self, request: web.Request, origin: str) -> web.Response:
        data = await self._json(request)
        if data is None:
            return _fault(400, "SVC0002", "Invalid input value for message part %1", ["body"])
        text, destinations = data.get("message"), data.get("destinations")
        if not isinstance(text, str) or not text:
            return _fault(400, "SVC0002", "Invalid input value for message part %1", ["message"])
        if (
            not isinstance(destinations, list)
            or len(destinations) != 1
            or not isinstance(destinations[0], str)
            or not E164.fullmatch(destinations[0])
        ):
            return _fault(400, "SVC0002", "Invalid input value for message part %1",
                          ["destinations"])  # fmt: skip
        callback = data.get("callbackURL")
        if callback is not None and not is_url(callback):
            return _fault(400, "SVC0002", "Invalid input value for message part %1",
                          ["callbackURL"])  # fmt: skip
        force = request.query.get("forceCharacterLimit", "false")
        if force not in ("true", "false"):
            return _fault(400, "SVC0002", "Invalid input value for message part %1",
                          ["forceCharacterLimit"])  # fmt: skip
        info = self._count(text)
        if force == "true" and info.parts > 1:
            return _fault(400, "SVC0280", "Message too long. Maximum length is %1 characters",
                          [str(info.per_part)])  # fmt: skip
        info_id = str(uuid.uuid4())
        resource = f"{request.url.origin()}/sms/outboundmessages/deliveryinfos/{info_id}"
        self.delivery_infos[info_id] = {
            "resourceURL": resource,
            "address": "tel:" + destinations[0],
            "deliveryStatus": "DeliveredToNetwork",
            "callbackURL": callback,
        }
        self.sent.append({**data, "origin": origin, "id": info_id})
        self._log(origin, "sms-outbound", info_id, 201, data, info)
        if self.auto_status:
            self._spawn(self._auto_deliver(info_id))
        return web.json_response(
            self._info_body(info_id), status=201, headers={"Location": resource}
        )

    def _count(self, text: str) -> SegmentInfo:
        """This fake's count of ``text``: GSM 03.38's, or with ``single_septet_extensions``
        every GSM-7 character as one (parts of 160, then 153)."""
        info = analyze(text)
        if not self.single_septet_extensions or info.encoding != "GSM-7":
            return info
        units = len(text)
        single = units <= SINGLE_LIMIT["GSM-7"]
        per_part = SINGLE_LIMIT["GSM-7"] if single else PART_LIMIT["GSM-7"]
        parts = 1 if single else -(-units // per_part)
        return SegmentInfo("GSM-7", units, units, parts, per_part, parts * per_part - units)

    async def _length(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None or not isinstance(data.get("message"), str):
            return _fault(400, "SVC0002", "Invalid input value for message part %1", ["message"])
        self.length_requests.append(data["message"])
        info = self._count(data["message"])
        return web.json_response(
            {
                "numberOfChars": info.characters,
                "charLimitPerPart": info.per_part,
                "numberOfParts": info.parts,
                "numberOfRemainingCharsInPart": info.remaining,
            }
        )

    async def _delivery_info(self, request: web.Request) -> web.Response:
        info_id = request.match_info["info_id"]
        if info_id not in self.delivery_infos:
            return _fault(404, "SVC0002", "Invalid input value for message part %1", [info_id])
        return web.json_response(self._info_body(info_id))

    def _info_body(self, info_id: str) -> dict[str, Any]:
        info = self.delivery_infos[info_id]
        entry = {"address": info["address"], "deliveryStatus": info["deliveryStatus"]}
        return {"resourceURL": info["resourceURL"], "deliveryInfo": [entry]}

    async def _dedicated(self, _request: web.Request) -> web.Response:
        return web.json_response({"dedicatedAddresses": self.dedicated_addresses})

    # -- logs ---------------------------------------------------------------------------

    def _log(
        self,
        origin: str,
        kind: str,
        request_id: str,
        status: int,
        data: Mapping[str, Any],
        info: SegmentInfo | None = None,
    ) -> None:
        destinations = data.get("destinations")
        text = data.get("message")
        self.logs.setdefault(origin, []).append(
            {
                "type": kind,
                "moment": datetime.now(UTC),
                "destinationAddress": destinations[0] if isinstance(destinations, list)
                and destinations and isinstance(destinations[0], str) else "",
                "message": text if isinstance(text, str) else "",
                "numberOfChars": str(info.characters if info else 0),
                "numberOfMessages": str(info.parts if info else 0),
                "requestId": request_id,
                "httpResponseCode": str(status),
            }
        )  # fmt: skip

    async def _logs(self, request: web.Request) -> web.Response:
        self.log_requests.append(dict(request.query))
        address = request.query.get("dedicatedaddress")
        if address is not None and address not in self.dedicated_addresses:
            return _fault(404, "SVC0004", "No valid addresses provided in message part %1",
                          [address])  # fmt: skip
        try:
            query = parse_query(request.query)
        except BadLogQuery as exc:
            return _fault(400, "SVC0002", "Invalid input value for message part %1", [exc.field])
        entries = [
            {**e, "initialDeliveryInfo": self.delivery_infos.get(e["requestId"], {}).get(
                "deliveryStatus", "")}
            for e in self.logs.get(address or self.shared_address, [])
        ]  # fmt: skip
        try:
            return web.json_response(answer(entries, query))
        except KeyError:
            return _fault(400, "SVC0002", "Invalid input value for message part %1", ["pageref"])

    # -- inbound ------------------------------------------------------------------------

    async def _inbound(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        if address != "shared" and address not in self.dedicated_addresses:
            return _fault(404, "SVC0004", "No valid addresses provided in message part %1",
                          [address])  # fmt: skip
        query = request.query
        try:
            start, end = (_utc(query[k]) for k in ("startdatetime", "enddatetime"))
        except (KeyError, ValueError):
            return _fault(400, "SVC0002", "Invalid input value for message part %1",
                          ["startdatetime/enddatetime"])  # fmt: skip
        new_only = query.get("new-only")
        if new_only not in ("true", "false"):
            return _fault(400, "SVC0002", "Invalid input value for message part %1",
                          ["new-only"])  # fmt: skip
        to = self.shared_address if address == "shared" else address
        found = [
            m for m in self.inbound
            if m["to"] == to and start < m["received"] < end
            and not (new_only == "true" and m["retrieved"])
        ]  # fmt: skip
        for m in found:
            m["retrieved"] = True
        messages = [
            {
                "senderAddress": m["senderAddress"],
                "message": m["message"],
                "numberOfParts": m["numberOfParts"],
                "timeReceived": format_time(m["received"]),
            }
            for m in found
        ]
        return web.json_response({"numberOfMessages": len(messages), "messages": messages})

    def queue_inbound(
        self, sender: str, to: str, text: str, *, received: datetime | None = None
    ) -> dict[str, Any]:
        """Put a text from ``sender`` to our address ``to`` where the next poll finds it."""
        message = {
            "senderAddress": "tel:" + sender,
            "message": text,
            "numberOfParts": analyze(text).parts,
            "received": received or datetime.now(UTC),
            "to": to,
            "retrieved": False,
        }
        self.inbound.append(message)
        return message

    async def deliver_inbound(self, sender: str, to: str, text: str) -> None:
        """Enco has no inbound webhook: this only queues the text (see ``queue_inbound``)."""
        self.queue_inbound(sender, to, text)

    # -- delivery callbacks -------------------------------------------------------------

    async def deliver_status(self, info_id: str, status: str = "DeliveredToTerminal") -> int | None:
        """Set a delivery info's status; POST it to its ``callbackURL`` if it has one
        (returns convo's HTTP status), else None (convo will poll it)."""
        if status not in STATUS_MAP:
            raise ValueError(f"unknown deliveryStatus {status!r}")
        info = self.delivery_infos[info_id]
        info["deliveryStatus"] = status
        url = info.get("callbackURL")
        if not url:
            return None
        if self.webhook_base:
            parts = urlsplit(url)
            url = f"{self.webhook_base}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        body = self._info_body(info_id)
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        async with self._client().post(url, data=payload, headers=headers) as response:
            await response.read()
            self.webhooks.append((url, body, response.status))
            return response.status

    # -- the control API ----------------------------------------------------------------

    async def simulate_inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        if to != self.shared_address and to not in self.dedicated_addresses:
            known = ", ".join([*self.dedicated_addresses, self.shared_address])
            raise ValueError(f"'to' must be one of our addresses: {known}")
        self.queue_inbound(sender, to, text)
        return {"status": None, "url": None, "queued": True,
                "note": "Enco has no inbound webhook: convo's next poll fetches it"}  # fmt: skip

    async def simulate_status(self, message_id: str, status: str) -> dict[str, Any]:
        if message_id not in self.delivery_infos:
            raise KeyError(f"no message {message_id!r} was sent to this simulator")
        native = _STATUS_ALIASES.get(status, status)
        if native not in STATUS_MAP:
            expected = ", ".join([*STATUS_MAP, *_STATUS_ALIASES])
            raise ValueError(f"unknown status {status!r}; expected one of {expected}")
        answer = await self.deliver_status(message_id, native)
        if answer is None:
            return {"status": None, "url": None, "deliveryStatus": native,
                    "note": "no callbackURL: convo's status poll picks it up"}  # fmt: skip
        return webhook_answer(answer, self.webhooks[-1][0], deliveryStatus=native)

    def sent_messages(self) -> list[dict[str, Any]]:
        return [
            {
                "message_id": send["id"],
                "from": send["origin"],
                "to": send["destinations"][0],
                "text": send["message"],
                "status": self.delivery_infos[send["id"]]["deliveryStatus"],
                **{k: v for k, v in send.items() if k not in ("id", "message", "destinations")},
            }
            for send in self.sent
        ]

    async def _auto_deliver(self, info_id: str) -> None:
        await asyncio.sleep(self.status_delay)
        with contextlib.suppress(aiohttp.ClientError):  # convo gone: Enco gives up too
            await self.deliver_status(info_id, "DeliveredToTerminal")


def _utc(value: str) -> datetime:
    """An ISO 8601 datetime; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fault(
    status: int,
    code: str,
    text: str,
    variables: Sequence[str] = (),
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A OneAPI error body: ``serviceException`` (SVC...) or ``policyException`` (POL...)."""
    kind = "policyException" if code.startswith("POL") else "serviceException"
    body = {"requestError": {kind: {"messageId": code, "text": text, "variables": list(variables)}}}
    return web.json_response(body, status=status, headers=headers)
