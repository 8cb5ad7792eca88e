"""Twilio Programmable Messaging adapter (``[providers.twilio]``).

Sending: ``POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`` with the form
fields ``To``, ``From`` (the line) or ``MessagingServiceSid`` (when configured: the service
picks the sender from its pool), ``Body``, ``MediaUrl`` (once per media URL, MMS) and
``StatusCallback`` (``{public_url}/webhooks/NAME/status``, when ``public_url`` is set).
Authentication, webhook signatures and the error table are ``convo.providers._twilio_common``:
21610 (the recipient replied STOP to this sender) raises ``ContactOptedOut``, so the outbox
suppresses the contact; 21211 (invalid number) and other 4xx are permanent; 20429/429
``RateLimited`` with ``Retry-After``; 5xx ``ProviderUnavailable``.

Webhooks are form posts signed with ``X-Twilio-Signature``:

* inbound (the number's "A message comes in" URL, ``/webhooks/NAME/inbound``):
  ``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia`` and ``MediaUrl0..N``;
* status (``StatusCallback``): ``MessageSid``, ``MessageStatus`` and ``ErrorCode``.

What Twilio leaves to us, we assume:

- Statuses: ``accepted``, ``scheduled``, ``queued``, ``sending``, ``sent`` -> sent (Twilio
  or the carrier has it; no verdict yet); ``delivered``, ``read`` -> delivered;
  ``undelivered`` -> undelivered; ``failed``, ``canceled`` -> failed. Status reports only
  move a message forward (``convo.delivery``), so an early ``queued`` after ``sent`` is
  harmless. ``ErrorCode`` (30003 unreachable, 30007 filtered, ...) is kept on the report.
- A price Twilio reports is negative (money spent); convo stores its amount.
- Twilio expects TwiML from the inbound webhook: convo answers an empty ``<Response/>``
  (:meth:`TwilioSms.inbound_acknowledgement`); the reply goes out through the Messages
  resource, like every other provider's, not in that answer.
- Numbers are E.164; a field that is not is a malformed webhook.
- ``DELETE .../Messages/{sid}.json`` deletes Twilio's copy (GDPR erasure); an id Twilio
  no longer knows counts as deleted.

Options: ``account_sid`` (required), ``auth_token`` (signs webhooks; sends too unless an API
key is set), ``api_key_sid`` + ``api_key_secret``, ``messaging_service_sid``, ``base_url``,
``allow_unsigned``, ``rate_limit`` (messages per second; default 1, a long code's limit),
and for inbound media (:mod:`convo.media`) ``media_hosts``, ``media_max_bytes`` and
``media_timeout``. Inbound ``MediaUrlN`` are fetched without credentials (Twilio's default;
media behind "HTTP basic authentication for media" cannot be fetched) and Twilio redirects
them to its media CDN: list that host in ``media_hosts`` (the default, ``base_url``'s host
alone, refuses the redirect, so the media is not downloadable).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from convo.exceptions import (
    ConfigError,
    InvalidNumber,
    MalformedWebhook,
    ProviderRejected,
)
from convo.media import MEDIA_OPTIONS, MediaPolicy, base_host
from convo.models import (
    Channel,
    DeliveryReport,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)
from convo.providers._options import ProviderOptions
from convo.providers._twilio_common import (
    ACCOUNT_OPTIONS,
    TwilioAccount,
    form_fields,
    required,
)
from convo.providers._wire import answered_id
from convo.providers.callbacks import SMS_ROUTES, STATUS, callback_url
from convo.providers.http import ProviderAnswer
from convo.providers.payload import storable, whole_number
from convo.sms.phone import normalize

#: Twilio ``MessageStatus`` -> convo status (module docstring).
STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.SENT,
    "scheduled": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_MEDIA = 10  # Twilio's limit per message, inbound and outbound

_INBOUND = "twilio inbound message"
_STATUS = "twilio status callback"


def _number(value: str, field: str, what: str) -> str:
    try:
        return normalize(value)
    except InvalidNumber:
        raise MalformedWebhook(
            f"{what}: field {field!r} is not a phone number: {value[:40]!r}"
        ) from None


class TwilioSms:
    """The Twilio Messaging adapter (``SmsProvider``, ``DeletesMessages``)."""

    kind: ClassVar[str] = "twilio"
    channel: ClassVar[Channel] = "sms"
    config_options: ClassVar[frozenset[str]] = (
        ACCOUNT_OPTIONS | {"messaging_service_sid", "rate_limit"} | MEDIA_OPTIONS
    )
    routes: ClassVar[tuple[str, ...]] = SMS_ROUTES

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        account: TwilioAccount,
        *,
        messaging_service_sid: str = "",
        allow_unsigned: bool = False,
        rate_limit: float = 1.0,
        status_url: str = "",
        media_policy: MediaPolicy | None = None,
    ) -> None:
        self.name = name
        self.media_policy = media_policy or MediaPolicy((base_host(account.base_url),))
        self.account = account
        self.messaging_service_sid = messaging_service_sid
        self.allow_unsigned = allow_unsigned
        self.rate_limit = rate_limit
        self.status_url = status_url
        self._client = client

    def __repr__(self) -> str:  # no credentials, ever
        return f"TwilioSms(name={self.name!r}, account={self.account!r})"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Validate ``[providers.NAME]`` and build the adapter; raises ``ConfigError``."""
        opts = ProviderOptions(name, options, cls.config_options)
        service = opts.string("messaging_service_sid")
        if service and not service.startswith("MG"):
            raise ConfigError(
                f"{opts.where('messaging_service_sid')}: expected a Messaging Service SID (MG...)"
            )
        account = TwilioAccount.from_options(opts)
        return cls(
            name,
            client,
            account,
            messaging_service_sid=service,
            allow_unsigned=opts.boolean("allow_unsigned", False),
            rate_limit=opts.number("rate_limit", 1.0),
            status_url=callback_url(public_url, name, STATUS) if public_url else "",
            media_policy=MediaPolicy.from_options(opts, account.base_url),
        )

    # -- webhooks (pure) -------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """``X-Twilio-Signature`` by the one signature rule; True when signed."""
        return self.account.verify(request, allow_unsigned=self.allow_unsigned, provider=self.name)

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """The text (and media URLs) of an inbound webhook."""
        what = f"{self.name}: {_INBOUND}"
        fields = form_fields(request, what)
        sid = required(fields, "MessageSid", what)
        count = whole_number(fields.get("NumMedia") or "0", "NumMedia", what, high=MAX_MEDIA)
        media = []
        for index in range(count):
            url = required(fields, f"MediaUrl{index}", what)
            if not url.startswith(("http://", "https://")):
                raise MalformedWebhook(f"{what}: field 'MediaUrl{index}' is not an http(s) URL")
            media.append(url)
        return [
            InboundMessage(
                line=_number(required(fields, "To", what), "To", what),
                sender=_number(required(fields, "From", what), "From", what),
                text=storable(fields.get("Body", "")),
                provider=self.name,
                provider_message_id=sid,
                media_urls=tuple(media),
            )
        ]

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """The delivery report of a status callback."""
        what = f"{self.name}: {_STATUS}"
        fields = form_fields(request, what)
        sid = required(fields, "MessageSid", what)
        raw = required(fields, "MessageStatus", what)
        status = STATUSES.get(raw)
        if status is None:
            raise MalformedWebhook(
                f"{what}: field 'MessageStatus' must be one of {', '.join(STATUSES)}, "
                f"got {raw[:40]!r}"
            )
        error = fields.get("ErrorCode", "").strip() or None
        return [
            DeliveryReport(
                provider=self.name,
                provider_message_id=sid,
                status=status,
                error_code=error,
                error_text=fields.get("ErrorMessage", "").strip()[:300] or None,
            )
        ]

    def inbound_acknowledgement(self) -> tuple[bytes, str]:
        """An empty TwiML document: "received, nothing to say in this answer"."""
        return EMPTY_TWIML, "text/xml; charset=utf-8"

    # -- REST API --------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """``POST .../Messages.json``; the ``ProviderError`` tree on failure."""
        form: dict[str, str | list[str]] = {"To": message.to, "Body": message.text}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = message.line
        if message.media_urls:
            form["MediaUrl"] = list(message.media_urls[:MAX_MEDIA])
        if self.status_url:
            form["StatusCallback"] = self.status_url
        response = await self.account.request(
            self._client, "POST", "Messages.json", provider=self.name, data=form
        )
        return self._result(response)

    def _result(self, response: ProviderAnswer) -> SendResult:
        sid, body = answered_id(response, "sid", provider=self.name, what="a send")
        segments = body.get("num_segments")
        price = _amount(body.get("price"))
        return SendResult(
            provider=self.name,
            provider_message_id=sid,
            status=MessageStatus.SENT,
            segments=int(segments) if isinstance(segments, str) and segments.isdigit() else 1,
            price=price,
            currency=str(body.get("price_unit") or "USD") if price is not None else None,
        )

    async def delete_message(self, provider_message_id: str) -> None:
        """``DELETE .../Messages/{sid}.json``; an unknown sid counts as deleted."""
        resource = f"Messages/{quote(provider_message_id, safe='')}.json"
        try:
            await self.account.request(self._client, "DELETE", resource, provider=self.name)
        except ProviderRejected as exc:
            if exc.code not in ("20404", "404"):
                raise

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release: the httpx client belongs to the caller."""


def _amount(value: object) -> float | None:
    """Twilio's price (a negative decimal string: money spent) as a positive amount."""
    if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
        return None
    try:
        amount = abs(float(value))
    except (ValueError, OverflowError):
        return None
    return amount if math.isfinite(amount) else None
