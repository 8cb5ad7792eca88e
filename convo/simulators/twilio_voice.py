"""A fake Twilio Voice: the Calls resource, and a caller who listens and presses keys.

API side: ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (``To``, ``From``, ``Url``,
``StatusCallback``, ``Timeout``, ``Record``; 201 with a Call resource; 400 error 21211 for a
bad ``To``, 21205 for a bad ``Url``), ``GET|POST .../Calls/{sid}.json`` (a POST with
``Status=completed`` or ``canceled`` ends the call), with Twilio's basic auth and error body
(``convo.simulators._twilio.TwilioAccountGuard``). ``fail_next(status, code)`` makes the
next requests fail.

Caller side, as Twilio calls an application: form posts signed with ``X-Twilio-Signature``
(``CallSid``, ``From``, ``To``, ``CallStatus``, ``Direction``; ``Digits`` or
``SpeechResult`` + ``Confidence``; ``RecordingUrl`` + ``RecordingDuration``;
``DialCallStatus``; ``CallDuration`` on the final status), answers read as TwiML. A
Gather that hears nothing goes on to the next verb, as Twilio's does. Calls are played by
:class:`~convo.simulators._calls.CallPlayer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import urlencode

from aiohttp import web

from convo.providers._twilio_common import SIGNATURE_HEADER, signature
from convo.simulators._calls import CallPlayer
from convo.simulators._twilio import TwilioAccountGuard, twilio_error
from convo.simulators.telefoon_voice_caller import Caller
from convo.voice.twiml import Node, parse_document

_E164_OR_SIP = ("+", "sip:", "client:")


class TwilioDialect:
    """How Twilio's webhooks look (module docstring)."""

    end_is_hangup: ClassVar[bool] = False
    record_answers: ClassVar[bool] = True
    silence_falls_through: ClassVar[bool] = True

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.secret = auth_token  # Twilio signs webhooks with the auth token

    def call_fields(self, call: Mapping[str, Any], route: str) -> dict[str, Any]:
        fields = {
            "CallSid": call["id"],
            "AccountSid": self.account_sid,
            "From": call["from"],
            "To": call["to"],
            "CallStatus": call["status"],
            "Direction": "inbound" if call["direction"] == "inbound" else "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        if route == "status":
            fields["CallDuration"] = str(call.get("duration", 0))
        return fields

    def input_fields(self, given: str | None, where: str) -> dict[str, Any]:
        if given is None:
            return {}
        if given.startswith("say:"):
            return {"SpeechResult": given[4:], "Confidence": "0.92"}
        return {"Digits": given}

    def dial_fields(self, outcome: str) -> dict[str, Any]:
        return {"DialCallStatus": outcome, "DialCallSid": "CA" + uuid.uuid4().hex}

    def recording_fields(self, url: str | None) -> dict[str, Any]:
        if url is None:
            return {}
        return {"RecordingUrl": url, "RecordingDuration": "5", "RecordingSid": "RE" + "0" * 32}

    def request(self, url: str, fields: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        form = {k: str(v) for k, v in fields.items()}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: signature(self.secret, url, form),
        }
        return urlencode(form).encode("utf-8"), headers

    def parse(self, body: bytes, content_type: str) -> list[Node]:
        if "xml" not in content_type.lower():
            raise ValueError(f"Twilio expects TwiML (XML), got content type {content_type!r}")
        return parse_document(body, content_type)


class TwilioVoiceSimulator(CallPlayer):
    """See the module docstring; ``.sent`` holds the call requests convo made."""

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-token",  # noqa: S107 - a simulator's dev credential
        api_key_sid: str = "",
        api_key_secret: str = "",
        webhook_base: str | None = None,
        name: str = "twilio_voice",
        max_webhooks: int = 50,
    ) -> None:
        self.account = TwilioAccountGuard(account_sid, auth_token, api_key_sid, api_key_secret)
        self.webhook_base = webhook_base.rstrip("/") if webhook_base else None
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self._caller = Caller(
            max_webhooks=max_webhooks,
            dialect=TwilioDialect(account_sid, auth_token),
            media_host="api.twilio.com/2010-04-01/Recordings",
        )
        self.app = web.Application()
        base = "/2010-04-01/Accounts/{account}/Calls"
        self.app.router.add_post(base + ".json", self._create)
        self.app.router.add_get(base + "/{sid}.json", self._get)
        self.app.router.add_post(base + "/{sid}.json", self._update)
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
        """The fake for convo's ``[providers.NAME]`` section (same account and token)."""
        return cls(
            account_sid=str(section.get("account_sid") or "AC" + "0" * 32),
            auth_token=str(section.get("auth_token") or "test-token"),
            api_key_sid=str(section.get("api_key_sid") or ""),
            api_key_secret=str(section.get("api_key_secret") or ""),
            webhook_base=webhook_base,
            name=provider_name or "twilio_voice",
        )

    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account.account_sid, "auth_token": self.account.auth_token}

    def fail_next(self, status: int, code: int, count: int = 1) -> None:
        """Answer the next ``count`` requests with HTTP ``status`` and Twilio error ``code``."""
        self.account.failures.extend([(status, code)] * count)

    def _new_call(self, from_: str, to: str, direction: str, status: str) -> dict[str, Any]:
        call: dict[str, Any] = {"id": "CA" + uuid.uuid4().hex, "status": status}
        call |= {"direction": direction, "from": from_, "to": to, "duration": 0}
        self.calls[call["id"]] = call
        return call

    def _resource(self, call: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "sid": call["id"],
            "account_sid": self.account.account_sid,
            "from": call["from"],
            "to": call["to"],
            "status": call["status"],
            "direction": "inbound" if call["direction"] == "inbound" else "outbound-api",
            "duration": str(call["duration"]),
            "uri": f"{self.account.prefix()}/Calls/{call['id']}.json",
        }

    async def _create(self, request: web.Request) -> web.Response:
        refused = self.account.refuse(request)
        if refused is not None:
            return refused
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        fields["StatusCallbackEvent"] = " ".join(
            str(v) for v in form.getall("StatusCallbackEvent", [])
        )
        if not fields.get("To", "").startswith(_E164_OR_SIP):
            return twilio_error(400, 21211, "Invalid 'To' Phone Number")
        if not fields.get("From", "").startswith("+"):
            return twilio_error(400, 21212, "Invalid 'From' Phone Number")
        if not fields.get("Url", "").startswith(("http://", "https://")):
            return twilio_error(400, 21205, "Url is not a valid URL")
        self.sent.append(fields)
        call = self._new_call(fields["From"], fields["To"], "outbound", status="queued")
        self._answer_outbound(call, fields["Url"], fields.get("StatusCallback", ""))
        return web.json_response(self._resource(call), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        refused = self.account.refuse(request)
        if refused is not None:
            return refused
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        return web.json_response(self._resource(call))

    async def _update(self, request: web.Request) -> web.Response:
        refused = self.account.refuse(request)
        if refused is not None:
            return refused
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        status = str((await request.post()).get("Status", ""))
        if status not in ("completed", "canceled"):
            return twilio_error(
                400, 21220, "Invalid call state: Status must be completed or canceled"
            )
        call["status"] = "canceled" if call["status"] in ("queued", "ringing") else "completed"
        return web.json_response(self._resource(call))

    async def deliver_status(self, call_id: str, status: str, *, duration: int = 0) -> int:
        """Post a status change of a known call to convo's ``/voice/status``; its HTTP status."""
        call = self.calls[call_id]
        call |= {"status": status, "duration": duration}
        fields = self._caller.fields(call, "status")
        return (await self._caller.post(self._webhook("status"), fields)).status_code
