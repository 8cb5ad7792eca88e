"""A fake Twilio Programmable Messaging API for tests and local development.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` takes Twilio's form fields
(``To``, ``From`` or ``MessagingServiceSid``, ``Body``, ``MediaUrl``, ``StatusCallback``),
authenticates with HTTP basic auth (account SID + auth token, or API key SID + secret;
401 error 20003 otherwise) and answers 201 with a Message resource, or Twilio's error body
``{"code", "message", "more_info", "status"}``: 21211 invalid ``To``, 21603/21604 missing
``From``/``To``, 21602 no body, 21610 for a number in :attr:`opted_out` (it texted STOP).
``DELETE .../Messages/{sid}.json`` deletes a message (204; 404 error 20404).

Test knobs: ``fail_next(status, code)`` answers the next sends with that HTTP status and
Twilio error code (429 carries ``Retry-After: 1``).

It calls convo back as Twilio does, form posts signed with ``X-Twilio-Signature`` (HMAC-SHA1
of the URL and sorted parameters, keyed with the auth token): :meth:`deliver_inbound` (the
number's incoming-message webhook) and :meth:`deliver_status` (to the message's
``StatusCallback``). The ``/_simulator/`` control API (``_callbacks.ControlApi``) drives
both for ``convo simulator twilio`` users.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web

from convo.providers.twilio_sms import STATUSES
from convo.simulators._callbacks import ControlApi, webhook_answer
from convo.simulators._twilio import TwilioAccountGuard, twilio_error
from convo.sms.segments import analyze

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_STATUS_ALIASES = {"sent": "sent", "received": "delivered"}


class TwilioSmsSimulator(ControlApi):
    """The fake; ``.app`` is the aiohttp application, ``.sent`` the accepted sends."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",  # noqa: S107 - a simulator's dev credential
        api_key_sid: str = "",
        api_key_secret: str = "",
        webhook_base: str | None = None,
        provider_name: str = "twilio",
        auto_status: bool = False,
        status_delay: float = 0.0,
    ) -> None:
        self.account = TwilioAccountGuard(account_sid, auth_token, api_key_sid, api_key_secret)
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.provider_name = provider_name
        self.auto_status = auto_status
        self.status_delay = status_delay
        self.opted_out: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.webhooks: list[tuple[str, dict[str, str], int]] = []  # (url, fields, status)
        self.app = web.Application()
        base = "/2010-04-01/Accounts/{account}"
        self.app.router.add_post(base + "/Messages.json", self._send)
        self.app.router.add_delete(base + "/Messages/{sid}.json", self._delete)
        self._init_control()

    @property
    def auth_token(self) -> str:
        return self.account.auth_token

    @auth_token.setter
    def auth_token(self, value: str) -> None:
        self.account.auth_token = value

    def fail_next(self, status: int, code: int, count: int = 1) -> None:
        """Answer the next ``count`` sends with HTTP ``status`` and Twilio error ``code``."""
        self.account.failures.extend([(status, code)] * count)

    @classmethod
    def config_options(cls, section: Mapping[str, Any]) -> dict[str, Any]:
        """The same ``account_sid``, ``auth_token`` and API key as convo's section."""
        return {
            "account_sid": str(section.get("account_sid") or "AC" + "0" * 32),
            "auth_token": str(section.get("auth_token") or "test-token"),
            "api_key_sid": str(section.get("api_key_sid") or ""),
            "api_key_secret": str(section.get("api_key_secret") or ""),
        }

    def credentials(self) -> dict[str, str]:
        creds = {"account_sid": self.account.account_sid, "auth_token": self.auth_token}
        if self.account.api_key_sid:
            creds |= {
                "api_key_sid": self.account.api_key_sid,
                "api_key_secret": self.account.api_key_secret,
            }
        return creds

    # -- the API -----------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        refused = self.account.refuse(request)
        if refused is not None:
            return refused
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        media = [str(v) for v in form.getall("MediaUrl", [])]
        to = fields.get("To", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not _E164.fullmatch(to):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sender = fields.get("From", "")
        service = fields.get("MessagingServiceSid", "")
        if not sender and not service:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not fields.get("Body") and not media:
            return twilio_error(400, 21602, "Message body is required.")
        if to in self.opted_out:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + uuid.uuid4().hex
        message = {
            "sid": sid,
            "account_sid": self.account.account_sid,
            "messaging_service_sid": service or None,
            "to": to,
            "from": sender or "+15005550006",
            "body": fields.get("Body", ""),
            "status": "accepted" if service else "queued",
            "num_segments": str(max(1, analyze(fields.get("Body", "")).parts)),
            "num_media": str(len(media)),
            "direction": "outbound-api",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": formatdate(usegmt=True),
            "uri": f"{self.account.prefix()}/Messages/{sid}.json",
        }
        self.sent.append(
            {**message, "media_url": media, "status_callback": fields.get("StatusCallback")}
        )
        if self.auto_status and fields.get("StatusCallback"):
            self._spawn(self._auto_deliver(sid))
        return web.json_response(message, status=201)

    async def _delete(self, request: web.Request) -> web.Response:
        refused = self.account.refuse(request)
        if refused is not None:
            return refused
        sid = request.match_info["sid"]
        before = len(self.sent)
        self.sent = [m for m in self.sent if m["sid"] != sid]
        if len(self.sent) == before:
            return twilio_error(404, 20404, f"The requested resource {sid} was not found")
        return web.Response(status=204)

    async def _auto_deliver(self, sid: str) -> None:
        if self.status_delay:
            await asyncio.sleep(self.status_delay)
        with contextlib.suppress(aiohttp.ClientError):  # convo gone: Twilio gives up too
            await self.deliver_status(sid)

    # -- the control API ----------------------------------------------------------------

    async def simulate_inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        status = await self.deliver_inbound(sender, to, text)
        return webhook_answer(status, self.webhooks[-1][0])

    async def simulate_status(self, message_id: str, status: str) -> dict[str, Any]:
        status = _STATUS_ALIASES.get(status, status)
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        answer = await self.deliver_status(message_id, status)
        return webhook_answer(answer, self.webhooks[-1][0])

    def sent_messages(self) -> list[dict[str, Any]]:
        return [
            {"message_id": m["sid"], "from": m["from"], "to": m["to"], "text": m["body"],
             "status": m["status"], "media_urls": m["media_url"]}
            for m in self.sent
        ]  # fmt: skip

    # -- calling convo back ----------------------------------------------------------

    async def deliver_inbound(
        self, sender: str, to: str, text: str, *, media: list[str] | None = None
    ) -> int:
        """``sender`` texts our number ``to``: the incoming-message webhook; convo's status."""
        fields = {
            "ToCountry": "BE",
            "SmsMessageSid": "",
            "NumMedia": str(len(media or [])),
            "SmsSid": "",
            "SmsStatus": "received",
            "Body": text,
            "To": to,
            "NumSegments": str(max(1, analyze(text).parts)),
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.account.account_sid,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }
        fields["SmsMessageSid"] = fields["SmsSid"] = fields["MessageSid"]
        for index, url in enumerate(media or []):
            fields |= {f"MediaUrl{index}": url, f"MediaContentType{index}": "image/jpeg"}
        return await self._call_convo(self._webhook("inbound"), fields)

    async def deliver_status(
        self, sid: str, status: str = "delivered", *, error_code: str | None = None
    ) -> int:
        """A status callback for a message we accepted; ``KeyError`` for an unknown sid."""
        message = next((m for m in self.sent if m["sid"] == sid), None)
        if message is None:
            raise KeyError(f"no message {sid!r} was sent to this simulator")
        message["status"] = status
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account.account_sid,
            "From": message["from"],
            "To": message["to"],
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            fields["ErrorCode"] = error_code
        url = message["status_callback"] or self._webhook("status")
        return await self._call_convo(url, fields)

    def _webhook(self, route: str) -> str:
        if not self.webhook_base:
            raise RuntimeError("TwilioSmsSimulator needs webhook_base to call convo back")
        return f"{self.webhook_base}/webhooks/{self.provider_name}/{route}"

    async def _call_convo(self, url: str, fields: dict[str, str]) -> int:
        async with self._client().post(
            url, data=fields, headers=self.account.sign(url, fields)
        ) as response:
            await response.read()
            self.webhooks.append((url, dict(fields), response.status))
            return response.status
