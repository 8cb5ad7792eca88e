"""The sandbox: a simulated phone network inside the server, for trying bots without an account.

``send`` does not leave the process: the text lands in an in-memory inbox of the recipient
(what ``GET /sandbox/messages?number=...`` shows) and is ``delivered`` at once, so the
message log shows the whole lifecycle. ``POST /sandbox/messages`` (``convo.web.sandbox``)
is the other direction: a simulated phone texting one of our lines.

The sandbox also speaks a tiny webhook dialect so the ``/webhooks/sandbox/...`` routes work
like any provider's (tests use them): inbound is a JSON body ``{"id", "from", "to",
"text"}``, status is ``{"id", "status", "client_ref"}``. Webhooks are unsigned unless the
``webhook_secret`` option is set; then ``X-Signature: hex(HMAC-SHA256(secret, raw body))``
is required, as for Telefoon.

Options (``[providers.sandbox]``, all optional): ``webhook_secret``, ``rate_limit``
(messages/second, default 1000), ``allow_unsigned`` (accepted for symmetry; without a
secret the sandbox is unsigned anyway). Inboxes live in memory and vanish on restart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx

from convo.exceptions import MalformedWebhook
from convo.models import (
    Channel,
    DeliveryReport,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    SendResult,
    WebhookRequest,
    new_id,
)
from convo.providers._options import ProviderOptions
from convo.providers.callbacks import SMS_ROUTES
from convo.providers.payload import decode_json
from convo.providers.signing import body_signature, check_body_hmac


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature`` a sandbox webhook carries when a ``webhook_secret`` is set."""
    return body_signature(secret, body)


class SandboxSms:
    """``SmsProvider`` whose network is a dict of inboxes (see module docstring)."""

    kind: ClassVar[str] = "sandbox"
    channel: ClassVar[Channel] = "sms"
    config_options: ClassVar[frozenset[str]] = frozenset(
        {"webhook_secret", "rate_limit", "allow_unsigned"}
    )
    routes: ClassVar[tuple[str, ...]] = SMS_ROUTES

    def __init__(
        self, name: str = "sandbox", *, webhook_secret: str = "", rate_limit: float = 1000.0
    ) -> None:
        self.name = name
        self.rate_limit = rate_limit
        self._secret = webhook_secret
        self._inboxes: dict[str, list[dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"<SandboxSms {self.name!r} phones={len(self._inboxes)}>"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Raises ConfigError on unknown or ill-typed options; ``client`` is unused."""
        opts = ProviderOptions(name, options, cls.config_options)
        opts.boolean("allow_unsigned", False)
        return cls(
            name,
            webhook_secret=opts.string("webhook_secret"),
            rate_limit=opts.number("rate_limit", 1000.0),
        )

    # -- the simulated phones --------------------------------------------------------------

    def messages_for(self, number: str) -> list[dict[str, Any]]:
        """What our lines sent to the simulated phone ``number``, oldest first."""
        return [dict(m) for m in self._inboxes.get(number, [])]

    def inbound(self, sender: str, line: str, text: str) -> InboundMessage:
        """A text from simulated phone ``sender`` to our ``line`` (not yet stored)."""
        return InboundMessage(
            line=line, sender=sender, text=text, provider=self.name, provider_message_id=new_id()
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        from convo.sms.segments import analyze

        segments = max(1, analyze(message.text).parts)
        provider_id = new_id()
        self._inboxes.setdefault(message.to, []).append(
            {
                "id": provider_id,
                "message_id": message.id,
                "from": message.line,
                "to": message.to,
                "text": message.text,
                "segments": segments,
                "media_urls": list(message.media_urls),
                "at": time.time(),
            }
        )
        return SendResult(
            provider=self.name,
            provider_message_id=provider_id,
            status=MessageStatus.DELIVERED,  # the simulated phone has it now
            segments=segments,
            price=0.0,
        )

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- webhooks ----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """Unsigned is fine without a ``webhook_secret`` (the sandbox is unsigned by
        design); with one the ``X-Signature`` is required (``convo.providers.signing``)."""
        return check_body_hmac(request, self._secret, allow_unsigned=True, provider=self.name)

    def _json(self, request: WebhookRequest, required: tuple[str, ...]) -> dict[str, str]:
        if "json" not in request.content_type:
            raise MalformedWebhook(
                f"{self.name}: expected an application/json body, got "
                f"{request.content_type or 'no content type'}"
            )
        data = decode_json(request.body, self.name)  # strings storable, depth bounded
        if not isinstance(data, dict):
            raise MalformedWebhook(f"{self.name}: expected a JSON object")
        for key in required:
            if not isinstance(data.get(key), str) or not data[key]:
                raise MalformedWebhook(f"{self.name}: field {key!r} is missing or not a string")
        return data

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """``{"id", "from", "to", "text"}``; numbers must be E.164-normalisable."""
        from convo.exceptions import InvalidNumber
        from convo.sms.phone import normalize

        data = self._json(request, ("id", "from", "to", "text"))
        try:
            sender, line = normalize(data["from"]), normalize(data["to"])
        except InvalidNumber as exc:
            raise MalformedWebhook(f"{self.name}: {exc}") from None
        return [
            InboundMessage(
                line=line,
                sender=sender,
                text=data["text"],
                provider=self.name,
                provider_message_id=data["id"],
            )
        ]

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """``{"id", "status", "client_ref"?}`` with one of convo's message statuses."""
        data = self._json(request, ("id", "status"))
        try:
            status = MessageStatus(data["status"])
        except ValueError:
            raise MalformedWebhook(f"{self.name}: unknown status {data['status']!r}") from None
        ref = data.get("client_ref")
        return [
            DeliveryReport(
                provider=self.name,
                provider_message_id=data["id"],
                status=status,
                client_ref=ref if isinstance(ref, str) and ref else None,
            )
        ]
