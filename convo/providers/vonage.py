"""Vonage SMS API adapter (``[providers.vonage]``; the Vonage SMS API document).

Sending is a form POST to ``{base_url}/sms/json``. Vonage reports errors inside a 200 body,
one ``messages[]`` entry per part, each with a ``status``; :data:`SEND_STATUS` maps every
status code of the document's ``x-errors`` onto convo's ``ProviderError`` tree, in one
place. Some parts accepted and others not raises ``PartialDelivery``.

Signatures and webhook parsing are pure functions in :mod:`convo.providers.vonage_webhooks`
(where the SDK sources the signing follows are cited).

What the document leaves open, and what we assume:

- Authentication: with ``api_secret`` we send ``api_key`` + ``api_secret`` in the form; with
  only ``signature_secret`` (or ``sign_requests = true``) we sign (``api_key``, ``timestamp``,
  ``sig``) and never send the secret too (status 32). ``signature_method`` defaults to
  ``md5hash``, the dashboard's and SDKs' default; it must match the dashboard setting.
  ``basic_auth = true`` sends ``api_key``/``api_secret`` as HTTP basic auth (the document's
  security scheme) instead of in the form; it needs ``api_secret`` and cannot go with
  signed requests.
- Validity: ``ttl`` (milliseconds) comes from the message's validity period in seconds:
  ``OutboundMessage.metadata["validity_period"]`` (a flow's ``validity_period`` param), else
  the ``validity_period`` option, else none sent (Vonage's default, 72 hours). The document
  allows 20 000 to 604 800 000 ms: a period outside 20 s - 7 days is refused before any
  request (``ConfigError`` at start, ``ProviderRejected`` for a message).
- India DLT and billing: ``entity_id``, ``content_id`` and ``account_ref`` options are sent
  as ``entity-id``, ``content-id`` and ``account-ref`` with every message; a message's
  metadata of the same names (flow params, see ``MESSAGE_METADATA_KEYS``) wins (a DLT
  content id names one registered template, so it is usually per flow).
- Webhooks are authenticated with the same signature and ``timestamp`` within
  ``timestamp_window`` seconds. Without ``signature_secret`` every webhook would be
  unsigned, so ``from_config`` requires it unless ``allow_unsigned = true``.
- Inbound comes as GET query, POST form or POST JSON. Numbers arrive without
  ``+``; they are normalised to E.164, and a number the phone metadata does not know is kept
  as ``+digits`` rather than losing the message. Binary (``type=binary``) inbound is refused.
- Receipt statuses: delivered -> delivered; expired -> undelivered; failed, rejected ->
  failed; accepted, buffered -> sent; unknown -> sent (no final verdict: the carrier gave
  none), with its ``err-code`` kept. Prices are in EUR (the document names no currency).
- A multi-part text's ``provider_message_id`` is the first part's ``message-id`` and its
  price the sum of its parts'. Vonage sends a receipt for *each* part, so receipts are
  ``per_part`` reports: the outbox never lets one overwrite the message's id or price, and
  makes the message ``delivered`` only when every part is, ``failed``/``undelivered`` as
  soon as one part is (``Outbox.apply_report``). Every part's receipt carries our
  ``client-ref`` (our message id), which is how it is matched; for a receipt without it,
  the adapter remembers (in memory, the last :data:`PART_MEMORY` parts it sent) which
  message each part id belongs to and fills ``client_ref`` in.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

import httpx

from convo.exceptions import (
    ConfigError,
    InvalidNumber,
    MalformedWebhook,
    PartialDelivery,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
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
from convo.providers.callbacks import SMS_ROUTES, STATUS, callback_url
from convo.providers.http import ProviderAnswer, call
from convo.providers.signing import must_check
from convo.providers.vonage_webhooks import (
    CURRENCY,
    SIGNATURE_METHODS,
    check_signature,
    delivery_report,
    inbound_message,
    signature,
    vonage_number,
    webhook_fields,
)
from convo.sms.segments import encoding_of

#: Send ``status`` codes (document ``x-errors``) -> (error class, meaning). 0 is success.
SEND_STATUS: dict[str, tuple[type[ProviderError], str]] = {
    "1": (RateLimited, "throttled: sending faster than the account limit"),
    "2": (ProviderRejected, "missing parameters"),
    "3": (ProviderRejected, "invalid parameters"),
    "4": (ProviderRejected, "invalid credentials"),
    "5": (ProviderUnavailable, "internal error in the platform"),
    "6": (ProviderRejected, "invalid message (e.g. unrecognised number prefix)"),
    "7": (ProviderRejected, "number barred"),
    "8": (ProviderRejected, "partner account barred"),
    "9": (ProviderRejected, "partner quota violation: insufficient credit"),
    "10": (RateLimited, "too many existing binds"),
    "11": (ProviderRejected, "account not enabled for HTTP"),
    "12": (ProviderRejected, "message too long"),
    "14": (ProviderRejected, "invalid signature"),
    "15": (ProviderRejected, "invalid sender address"),
    "17": (ProviderRejected, "message blocked by provider"),
    "22": (ProviderRejected, "invalid network code"),
    "23": (ProviderRejected, "invalid callback URL"),
    "29": (ProviderRejected, "non-whitelisted destination (demo account)"),
    "32": (ProviderRejected, "signature and API secret disallowed together"),
    "33": (ProviderRejected, "number de-activated"),
}

#: How many sent part ids the adapter remembers, to match a receipt without ``client-ref``.
PART_MEMORY = 100_000

# Optional send fields a message may carry in ``OutboundMessage.metadata`` as Vonage spells
# them (for callers building messages themselves; flows use the names of SENT_AS).
_PASSTHROUGH = frozenset(
    {"ttl", "entity-id", "content-id", "account-ref", "pool-id", "message-class"}
)
#: Options (and message metadata keys) sent with every message -> Vonage's field name.
SENT_AS = {"entity_id": "entity-id", "content_id": "content-id", "account_ref": "account-ref"}
#: The document's ``ttl`` range, in seconds of validity period.
VALIDITY_RANGE = (20, 604_800)


def _whole(raw: str) -> int:
    """``raw`` as a whole number, or -1 (out of any range) when it is not one."""
    try:
        return int(raw)
    except ValueError:
        return -1


def _sent_number(value: str, field: str, provider: str) -> str:
    """A number as Vonage wants it (digits, no ``+``); raises ``ProviderRejected`` for one
    that cannot be a phone number (:func:`vonage_number`), before any request. A ``from``
    without ``+`` is passed unchanged: an alphanumeric sender ID or a short code, which
    Vonage itself checks (status 15)."""
    if field == "from" and not value.startswith("+"):
        return value
    try:
        return vonage_number(value).removeprefix("+")
    except InvalidNumber as exc:
        raise ProviderRejected(
            f"{provider}: {field} {value!r} is not an E.164 number: {exc}", provider=provider
        ) from None


class VonageSms:
    """The Vonage SMS adapter (``SmsProvider``). Build it with :meth:`from_config`."""

    kind: ClassVar[str] = "vonage"
    channel: ClassVar[Channel] = "sms"
    config_options: ClassVar[frozenset[str]] = frozenset(
        {
            "api_key", "api_secret", "signature_secret", "signature_method",
            "sign_requests", "base_url", "allow_unsigned", "rate_limit", "timestamp_window",
            "basic_auth", "validity_period", "entity_id", "content_id", "account_ref",
        }
    )  # fmt: skip
    routes: ClassVar[tuple[str, ...]] = SMS_ROUTES

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        api_secret: str = "",
        signature_secret: str = "",
        signature_method: str = "md5hash",
        sign_requests: bool = False,
        base_url: str = "https://rest.nexmo.com",
        allow_unsigned: bool = False,
        rate_limit: float = 30.0,
        timestamp_window: float = 300.0,
        status_url: str = "",
        basic_auth: bool = False,
        validity_period: int | None = None,
        send_fields: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.rate_limit = rate_limit
        self.base_url = base_url.rstrip("/")
        self.status_url = status_url
        self.allow_unsigned = allow_unsigned
        self.timestamp_window = timestamp_window
        self.signature_method = signature_method
        self.sign_requests = sign_requests
        self.clock = clock  # injectable for timestamp-window tests
        self.basic_auth = basic_auth
        self.validity_period = validity_period
        self.send_fields = dict(send_fields or {})  # Vonage field -> value, every message
        self._client = client
        self._api_key = api_key
        self._api_secret = api_secret
        self._signature_secret = signature_secret
        # Part message-id -> our message id, oldest first (see the module docstring).
        self._part_owner: dict[str, str] = {}

    def __repr__(self) -> str:  # secrets stay out on purpose
        return f"VonageSms(name={self.name!r}, base_url={self.base_url!r})"

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
        method = opts.string("signature_method", "md5hash")
        if method not in SIGNATURE_METHODS:
            raise ConfigError(
                f"{opts.where('signature_method')}: expected one of {', '.join(SIGNATURE_METHODS)}"
            )
        api_secret = opts.string("api_secret")
        sig_secret = opts.string("signature_secret")
        sign = opts.boolean("sign_requests", not api_secret)
        if sign and not sig_secret:
            raise ConfigError(
                f"{opts.where('signature_secret')}: missing; needed to sign requests "
                "(or set api_secret)"
            )
        basic_auth = opts.boolean("basic_auth", False)
        if basic_auth and (sign or not api_secret):
            raise ConfigError(
                f"{opts.where('basic_auth')}: basic auth sends api_key and api_secret, so it "
                "needs api_secret and cannot go with sign_requests"
            )
        validity = opts.integer("validity_period", None, minimum=VALIDITY_RANGE[0])
        if validity is not None and validity > VALIDITY_RANGE[1]:
            raise ConfigError(
                f"{opts.where('validity_period')}: at most {VALIDITY_RANGE[1]} seconds "
                "(7 days, Vonage's longest ttl)"
            )
        allow_unsigned = opts.boolean("allow_unsigned", False)
        if not sig_secret and not allow_unsigned:
            raise ConfigError(
                f"{opts.where('signature_secret')}: missing; webhooks are authenticated by "
                "default (set allow_unsigned = true to accept unsigned webhooks)"
            )
        status_url = callback_url(public_url, name, STATUS) if public_url else ""
        if len(status_url) > 100:  # the document's limit for `callback` (status 23)
            raise ConfigError(
                f"[server] public_url: the status callback {status_url!r} is longer than "
                "the 100 characters Vonage accepts"
            )
        return cls(
            name,
            client,
            api_key=opts.string("api_key", required=True),
            api_secret=api_secret,
            signature_secret=sig_secret,
            signature_method=method,
            sign_requests=sign,
            base_url=opts.base_url("https://rest.nexmo.com"),
            allow_unsigned=allow_unsigned,
            rate_limit=opts.number("rate_limit", 30.0),
            timestamp_window=opts.number("timestamp_window", 300.0),
            status_url=status_url,
            basic_auth=basic_auth,
            validity_period=validity,
            send_fields={
                field: opts.string(key) for key, field in SENT_AS.items() if opts.has(key)
            },
        )

    # -- webhooks (pure) -------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """Raise ``SignatureError`` unless the webhook's ``sig`` is right and its
        ``timestamp`` fresh. By the one rule (``convo.providers.signing``) a webhook must be
        signed when a ``signature_secret`` is configured; without one, ``allow_unsigned``
        lets it in unchecked. True when it was signed.

        Vonage signs the webhook's *fields*, not its raw body, so a request whose fields
        cannot be read at all (another content type, invalid JSON, a JSON body that is not
        an object of strings and numbers) has no signature to check: that is a malformed
        webhook (400, and the request is kept), not a wrong signature (401). ``verify`` lets it
        through, and ``parse_inbound``/``parse_status``, which read the fields the same way,
        raise the ``MalformedWebhook`` saying what is wrong, which the web layer answers
        with 400 and keeps the request (``convo.web.webhooks`` calls ``verify`` outside its
        ``MalformedWebhook`` handling, so raising it here would answer 400 but lose the
        request). Nothing is accepted this way: no fields, nothing to process (and it counts
        as unsigned: it is kept only in part).
        """
        try:
            fields = webhook_fields(request)
        except MalformedWebhook:
            return False  # parse_* raises the same MalformedWebhook: 400, the request kept
        if not must_check(
            self.name,
            has_secret=bool(self._signature_secret),
            allow_unsigned=self.allow_unsigned,
            signed="sig" in fields,
            unsigned="webhook is not signed (no 'sig' field)",
        ):
            return False
        check_signature(
            fields,
            self._signature_secret,
            self.signature_method,
            window=self.timestamp_window,
            now=self.clock(),
        )
        return True

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """The inbound SMS in a webhook (``part`` set for one piece of a long text)."""
        return [inbound_message(webhook_fields(request), self.name)]

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """The delivery receipt in a status webhook (Vonage sends one per part: the
        report is ``per_part``). A receipt without ``client-ref`` for a part this adapter
        sent gets its message's id as ``client_ref``."""
        report = delivery_report(webhook_fields(request), self.name)
        if report.client_ref is None:
            owner = self._part_owner.get(report.provider_message_id)
            if owner is not None:
                report = dataclasses.replace(report, client_ref=owner)
        return [report]

    # -- sending ---------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one text; raises ``RateLimited``, ``ProviderUnavailable``,
        ``ProviderRejected`` or ``PartialDelivery`` (see :data:`SEND_STATUS`)."""
        if message.media_urls:
            raise ProviderRejected("vonage: the SMS API cannot send media", provider=self.name)
        params: dict[str, str] = {
            "from": _sent_number(message.line, "from", self.name),
            "to": _sent_number(message.to, "to", self.name),
            "text": message.text,
            "type": "unicode" if encoding_of(message.text) == "UCS-2" else "text",
            "client-ref": message.id,
            "status-report-req": "1",
        }
        if self.status_url:
            params["callback"] = self.status_url
        params.update(self._optional_fields(message))
        extra: dict[str, Any] = {}  # httpx request options
        if self.basic_auth:
            extra["auth"] = httpx.BasicAuth(self._api_key, self._api_secret)
        else:
            params["api_key"] = self._api_key
        if self.sign_requests:
            params["timestamp"] = str(int(self.clock()))
            params["sig"] = signature(params, self._signature_secret, self.signature_method)
        elif not self.basic_auth:
            params["api_secret"] = self._api_secret
        response = await call(
            self._client,
            "POST",
            f"{self.base_url}/sms/json",
            provider=self.name,
            data=params,
            **extra,
        )
        result, part_ids = self._result(response)
        self._remember(part_ids, message.id)
        return result

    def _optional_fields(self, message: OutboundMessage) -> dict[str, str]:
        """``ttl``, DLT and billing fields for ``message`` (see the module docstring);
        raises ``ProviderRejected`` for a validity period Vonage would not take."""
        fields = {k: v for k, v in message.metadata.items() if k in _PASSTHROUGH}
        fields.update(self.send_fields)
        fields.update({SENT_AS[k]: v for k, v in message.metadata.items() if k in SENT_AS and v})
        raw = message.metadata.get("validity_period")
        if raw is None:  # a message's own ttl (in Vonage's ms) beats the option
            seconds = None if "ttl" in fields else self.validity_period
        else:
            seconds = _whole(raw)
        if seconds is not None:
            low, high = VALIDITY_RANGE
            if not low <= seconds <= high:
                raise ProviderRejected(
                    f"{self.name}: validity_period must be whole seconds from {low} to {high}, "
                    f"not {raw!r}",
                    provider=self.name,
                )
            fields["ttl"] = str(seconds * 1000)
        return fields

    def _remember(self, part_ids: list[str], message_id: str) -> None:
        for part_id in part_ids:
            if part_id:
                self._part_owner[part_id] = message_id
        while len(self._part_owner) > PART_MEMORY:
            del self._part_owner[next(iter(self._part_owner))]

    def _result(self, response: ProviderAnswer) -> tuple[SendResult, list[str]]:
        """Map the 200 body: every part ok -> SendResult (and every part's message-id),
        else the status table."""
        try:
            body = response.json()
            parts = body["messages"]
            statuses = [str(p["status"]) for p in parts]
            count = int(body.get("message-count") or len(parts))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable(
                f"vonage: unreadable send response: {response.text[:200]!r}", provider=self.name
            ) from exc
        if not parts:
            raise ProviderUnavailable("vonage: send response lists no messages", provider=self.name)
        failed = [(s, p) for s, p in zip(statuses, parts, strict=True) if s != "0"]
        if failed and len(failed) < len(parts):
            detail = "; ".join(self._describe(s, p) for s, p in failed)
            raise PartialDelivery(
                f"vonage: {len(failed)} of {len(parts)} parts rejected: {detail}",
                provider=self.name,
                code=failed[0][0],
            )
        if failed:
            status, part = failed[0]
            error_class = SEND_STATUS.get(status, (ProviderRejected, ""))[0]
            raise error_class(
                f"vonage: {self._describe(status, part)}", provider=self.name, code=status
            )
        prices = [p.get("message-price") for p in parts]
        try:
            price = sum(float(p) for p in prices) if all(prices) else None
        except (TypeError, ValueError):
            price = None  # a price we cannot read must not fail a message already sent
        part_ids = [str(p.get("message-id", "")) for p in parts]
        result = SendResult(
            provider=self.name,
            provider_message_id=part_ids[0],
            status=MessageStatus.SENT,
            segments=count,
            price=price,
            currency=CURRENCY if price is not None else None,
        )
        return result, part_ids

    @staticmethod
    def _describe(status: str, part: Mapping[str, Any]) -> str:
        meaning = SEND_STATUS.get(status, (ProviderRejected, "unknown status"))[1]
        text = part.get("error-text")
        return f"status {status} ({meaning})" + (f": {text}" if text else "")

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release: the httpx client belongs to the caller."""
