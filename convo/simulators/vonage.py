"""A fake Vonage SMS API for tests and local development.

``POST /sms/json`` takes the document's form fields (JSON bodies too), authenticates with
``api_key`` + ``api_secret`` (in the body or as HTTP basic auth, not both) or ``api_key`` +
``timestamp`` + ``sig``, checks the advanced fields the document bounds (``ttl`` 20 000 -
604 800 000 ms, ``client-ref`` up to 100 characters; ``entity-id``, ``content-id`` and
``account-ref`` are kept on the send as given), and answers like Vonage: HTTP 200
whatever happened, with a ``status`` per message part (2 missing parameter, 3 invalid
parameter, 4 bad credentials, 14 bad signature, 15 invalid sender, 23 bad callback, 32
signature plus secret, 1 throttled).

The ``/_simulator/`` control API (``_callbacks.ControlApi``; not part of Vonage's API), for
``convo simulator vonage`` users: ``POST /_simulator/inbound`` ``{"from", "to", "text"}``
makes a simulated phone text convo, ``POST /_simulator/status`` ``{"message_id", "status"}``
posts a delivery receipt for every part of the send with that ``message-id`` (statuses:
``delivered``, ``expired``, ``failed``, ``rejected``, ``accepted``, ``buffered``,
``unknown``; convo's ``undelivered`` and ``sent`` mean ``expired`` and ``accepted``),
``GET /_simulator/sent`` lists the sends. :meth:`VonageSimulator.from_config` builds the fake
from convo's ``[providers.NAME]`` section, so webhooks are signed with its
``signature_secret``.

Test knobs: ``throttle_next`` (answer status 1 to the next N sends), ``http_errors`` (HTTP
statuses, e.g. ``[429]``, answered to the next sends, in order), ``part_errors`` (part
index -> status for the next send, to provoke a partial delivery).

It calls convo back as Vonage would: :meth:`deliver_inbound` splits a long text into
``concat`` parts (sent in any order) and :meth:`deliver_status` posts a delivery receipt,
both signed with ``signature_secret`` when one is set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import itertools
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from aiohttp import web

from convo.providers.vonage_webhooks import RECEIPT_STATUS, signature, signature_matches
from convo.simulators._callbacks import ControlApi, webhook_answer
from convo.sms.phone import is_sender_id
from convo.sms.segments import Encoding, analyze, split

_REQUIRED = ("from", "to", "text")
TTL_RANGE = (20_000, 604_800_000)  # the document's ttl minimum and maximum (milliseconds)
_CREDENTIALS = frozenset({"api_key", "api_secret", "sig", "timestamp", "nonce"})
# convo's neutral names for receipt statuses Vonage spells differently.
_STATUS_ALIASES = {"undelivered": "expired", "sent": "accepted"}


class VonageSimulator(ControlApi):
    """The fake; ``.app`` is the aiohttp application, ``.sent`` the accepted sends."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        api_secret: str = "test-secret",  # noqa: S107 - a simulator's dev credential
        signature_secret: str | None = None,
        signature_method: str = "md5hash",
        webhook_base: str | None = None,
        provider_name: str = "vonage",
        auto_status: bool = False,
        status_delay: float = 0.0,
        price_per_part: str = "0.03330000",
        network: str = "20610",
        timestamp_window: float = 300.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.signature_secret = signature_secret
        self.signature_method = signature_method
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.provider_name = provider_name
        self.auto_status = auto_status
        self.status_delay = status_delay
        self.price_per_part = price_per_part
        self.network = network
        self.timestamp_window = timestamp_window
        self.balance = 10.0
        self.throttle_next = 0
        self.http_errors: list[int] = []
        self.part_errors: dict[int, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.auth_used: list[str] = []  # per accepted request: "basic", "body" or "signature"
        self.webhooks: list[tuple[str, dict[str, str], int]] = []  # (url, fields, status)
        self._concat_refs = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/sms/json", self._send)
        self._init_control()  # /_simulator/...: not Vonage's, for `convo simulator` users

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """Same ``api_key``, ``api_secret``, ``signature_secret`` and ``signature_method``."""
        return {
            "api_key": str(section.get("api_key") or "test-key"),
            "api_secret": str(section.get("api_secret") or "test-secret"),
            "signature_secret": str(section.get("signature_secret") or "") or None,
            "signature_method": str(section.get("signature_method") or "md5hash"),
        }

    def credentials(self) -> dict[str, str]:
        """What convo must be configured with to talk to this fake (secrets unmasked)."""
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "signature_secret": self.signature_secret or "",
            "signature_method": self.signature_method,
        }

    # -- the API -----------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        if self.http_errors:
            return web.json_response({"error": "simulated"}, status=self.http_errors.pop(0))
        if request.content_type == "application/json":
            try:
                raw = await request.json()
            except ValueError:
                return _error("3", "Invalid JSON body")
            if not isinstance(raw, dict):
                return _error("3", "JSON body must be an object")
            params = {str(k): str(v) for k, v in raw.items()}
        else:
            params = {k: str(v) for k, v in (await request.post()).items()}
        basic = _basic_auth(request.headers.get("Authorization", ""))
        if basic and ("api_key" in params or "api_secret" in params):
            return _error("3", "Credentials given both as basic auth and in the body")
        params.update(basic)
        problem = self._check(params)
        if problem:
            return _error(*problem)
        self.auth_used.append("basic" if basic else "signature" if "sig" in params else "body")
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return _error("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
        return self._accept(params)

    def _check(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """The document's status for a request we refuse, or None to accept it."""
        if "api_key" not in params:
            return "2", "Missing api_key"
        if "sig" in params and "api_secret" in params:
            return "32", "Signature and API secret disallowed"
        if "sig" not in params and "api_secret" not in params:
            return "2", "Missing api_secret"
        if not _same(params["api_key"], self.api_key):
            return "4", "Bad Credentials"
        if "sig" in params:
            if not self.signature_secret:
                return "14", "Invalid Signature"
            stamp = params.get("timestamp", "")
            if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.timestamp_window:
                return "14", "Invalid Signature: timestamp missing or out of range"
            if not signature_matches(params, self.signature_secret, self.signature_method):
                return "14", "Invalid Signature"
        elif not _same(params["api_secret"], self.api_secret):
            return "4", "Bad Credentials"
        for name in _REQUIRED:
            if not params.get(name):
                return "2", f"Missing {name} param"
        if not _valid_sender(params["from"]):
            return "15", "Illegal Sender Address - rejected"
        if not (params["to"].isdigit() and 7 <= len(params["to"]) <= 15):
            return "3", "Invalid to param"
        if params.get("type", "text") not in ("text", "unicode", "binary"):
            return "3", "Invalid type param"
        if len(params.get("callback", "")) > 100:
            return "23", "Invalid callback url"
        ttl = params.get("ttl")
        if ttl is not None and not (ttl.isdigit() and TTL_RANGE[0] <= int(ttl) <= TTL_RANGE[1]):
            return "3", "Invalid ttl param: milliseconds from 20000 to 604800000"
        if len(params.get("client-ref", "")) > 100:
            return "3", "Invalid client-ref param: at most 100 characters"
        for name in ("entity-id", "content-id", "account-ref"):
            if name in params and not params[name]:
                return "3", f"Invalid {name} param: empty"
        return None

    def _accept(self, params: dict[str, str]) -> web.Response:
        encoding: Encoding | None = "UCS-2" if params.get("type") == "unicode" else None
        texts = split(params["text"], encoding)
        errors, self.part_errors = self.part_errors, {}
        messages: list[dict[str, str]] = []
        ids: list[str] = []
        for index, _ in enumerate(texts, start=1):
            status = errors.get(index, "0")
            if status != "0":
                messages.append({"status": status, "error-text": "Simulated part failure"})
                continue
            message_id = uuid.uuid4().hex[:16].upper()
            ids.append(message_id)
            self.balance -= float(self.price_per_part)
            entry = {
                "to": params["to"],
                "message-id": message_id,
                "status": "0",
                "remaining-balance": f"{self.balance:.8f}",
                "message-price": self.price_per_part,
                "network": self.network,
            }
            if "client-ref" in params:
                entry["client-ref"] = params["client-ref"]
            messages.append(entry)
        if ids:
            self.sent.append({**params, "message-ids": ids})
            if self.auto_status and params.get("status-report-req", "1") not in ("0", "false"):
                for message_id in ids:
                    self._spawn(self._auto_deliver(message_id))
        return web.json_response({"message-count": str(len(messages)), "messages": messages})

    async def _auto_deliver(self, message_id: str) -> None:
        if self.status_delay:
            await asyncio.sleep(self.status_delay)
        with contextlib.suppress(aiohttp.ClientError):  # convo gone: Vonage gives up too
            await self.deliver_status(message_id)

    # -- the control API ----------------------------------------------------------------

    async def simulate_inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        status = await self.deliver_inbound(sender, to, text)
        return webhook_answer(status, self.webhooks[-1][0] if self.webhooks else None)

    async def simulate_status(self, message_id: str, status: str) -> dict[str, Any]:
        """A receipt for each part of the send that has part ``message_id``."""
        status = _STATUS_ALIASES.get(status, status)
        if status not in RECEIPT_STATUS:
            raise ValueError(
                f"unknown status {status!r}; expected one of {', '.join(RECEIPT_STATUS)}"
            )
        send = next((s for s in self.sent if message_id in s["message-ids"]), None)
        if send is None:
            raise KeyError(f"no message {message_id!r} was sent to this simulator")
        answers = [await self.deliver_status(part, status) for part in send["message-ids"]]
        return webhook_answer(max(answers), self.webhooks[-1][0], receipts=len(answers))

    def sent_messages(self) -> list[dict[str, Any]]:
        return [
            {
                "message_id": send["message-ids"][0],
                "message_ids": list(send["message-ids"]),
                "from": send["from"],
                "to": send["to"],
                "text": send["text"],
                **{k: v for k, v in send.items() if k not in _CREDENTIALS | {"message-ids"}},
            }
            for send in self.sent
        ]

    # -- calling convo back ----------------------------------------------------------

    async def deliver_inbound(
        self,
        sender: str,
        to: str,
        text: str,
        *,
        parts: int | None = None,
        order: list[int] | None = None,
        method: Literal["POST", "GET", "JSON"] = "POST",
    ) -> int:
        """Send ``text`` from ``sender`` to our number ``to`` as Vonage's inbound webhook.

        A text longer than one SMS (or ``parts`` > 1, split evenly) arrives as concat parts,
        in ``order`` (1-based part numbers; default 1, 2, ...). Returns the worst (highest)
        HTTP status convo answered.
        """
        if parts is not None and parts > 1:
            size = -(-len(text) // parts)
            pieces = [text[i : i + size] for i in range(0, len(text), size)]
        else:
            pieces = split(text)
        total = len(pieces)
        ref = str(next(self._concat_refs) % 256)
        statuses = []
        for number in order or range(1, total + 1):
            piece = pieces[number - 1]
            fields = {
                "api-key": self.api_key,
                "msisdn": sender.lstrip("+"),
                "to": to.lstrip("+"),
                "messageId": uuid.uuid4().hex[:16].upper(),
                "text": piece,
                "type": "unicode" if analyze(text).encoding == "UCS-2" else "text",
                "keyword": (piece.split() or [""])[0].upper(),
                "message-timestamp": _now_text(),
            }
            if total > 1:
                fields |= {
                    "concat": "true",
                    "concat-ref": ref,
                    "concat-total": str(total),
                    "concat-part": str(number),
                }
            statuses.append(await self._call_convo("inbound", fields, method))
        return max(statuses)

    async def deliver_status(
        self,
        message_id: str,
        status: str = "delivered",
        *,
        err_code: str | None = None,
        method: Literal["POST", "GET", "JSON"] = "JSON",
    ) -> int:
        """POST a delivery receipt for a part we accepted (JSON, as the document shows);
        returns the HTTP status convo answered. Raises ``KeyError`` for an unknown id."""
        send = next((s for s in self.sent if message_id in s["message-ids"]), None)
        if send is None:
            raise KeyError(f"no message {message_id!r} was sent to this simulator")
        fields = {
            "msisdn": send["to"],
            "to": send["from"],
            "network-code": self.network,
            "messageId": message_id,
            "price": self.price_per_part,
            "status": status,
            "scts": datetime.now(UTC).strftime("%y%m%d%H%M"),
            "err-code": err_code
            if err_code is not None
            else ("0" if status == "delivered" else "1"),
            "api-key": self.api_key,
            "message-timestamp": _now_text(),
        }
        if "client-ref" in send:
            fields["client-ref"] = send["client-ref"]
        return await self._call_convo("status", fields, method, url=send.get("callback"))

    async def _call_convo(
        self, kind: str, fields: dict[str, str], method: str, *, url: str | None = None
    ) -> int:
        if self.webhook_base:
            url = f"{self.webhook_base}/webhooks/{self.provider_name}/{kind}"
        if not url:
            raise RuntimeError("VonageSimulator needs webhook_base to call convo back")
        if self.signature_secret:
            fields["timestamp"] = str(int(time.time()))
            fields["nonce"] = uuid.uuid4().hex
            fields["sig"] = signature(fields, self.signature_secret, self.signature_method)
        async with aiohttp.ClientSession() as session:
            if method == "GET":
                request = session.get(url, params=fields)
            elif method == "JSON":
                request = session.post(url, json=fields)
            else:
                request = session.post(url, data=fields)
            async with request as response:
                await response.read()
                self.webhooks.append((url, dict(fields), response.status))
                return response.status


def _error(status: str, text: str) -> web.Response:
    return web.json_response(
        {"message-count": "1", "messages": [{"status": status, "error-text": text}]}
    )


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_auth(header: str) -> dict[str, str]:
    """``api_key``/``api_secret`` from an HTTP basic ``Authorization`` header, if any."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return {}
    try:
        key, sep, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return {}
    return {"api_key": key, "api_secret": secret} if sep else {}


def _valid_sender(value: str) -> bool:
    digits = value.lstrip("+")
    return (digits.isdigit() and 3 <= len(digits) <= 15) or is_sender_id(value)


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
