"""What the Telefoon SMS and Telefonie SMS documents have in common, written once.

Both APIs are the same shape: ``X-API-Key`` auth, ``POST /messages`` answering 201 with a
``Message`` object, ``GET /messages`` (filters + pages of at most 100),
``GET|DELETE /messages/{message_id}``, and a ``Message`` schema whose required fields are
``id, status, direction, from, to``. :class:`TelefoonFamilySms` implements that shape;
``telefoon_sms.TelefoonSms`` and ``telefonie_sms.TelefonieSms`` fill in what really differs
(status enums, send fields, list filters, MMS, default currency) through class attributes and
two hooks, ``_send_fields`` and ``_inbound_media``.

Assumptions neither provider document settles:

* webhooks (inbound messages and status callbacks) are ``POST`` with a JSON body shaped like
  ``Message``, signed with ``X-Signature: hex(HMAC-SHA256(webhook_secret, raw body))``;
* with a ``webhook_secret`` configured every webhook must be signed; ``allow_unsigned = true``
  only lets webhooks in unsigned when no secret is configured (no secret and no
  ``allow_unsigned`` is a ``ConfigError`` at start: webhooks are authenticated by default);
* error bodies are undocumented, so HTTP status alone decides (``convo.providers.http.call``);
  a 201 whose ``Message`` says ``failed``/``undelivered`` is a ``ProviderRejected`` carrying
  ``error_code``/``error_message``; a 201 without a message id is also ``ProviderRejected``
  (never retried: the provider may have sent it, and a retry could text the person twice);
* ``DELETE`` of an unknown id (404) counts as erased: erasure is idempotent;
* with no ``server.public_url`` we send no ``status_callback``; statuses are then only known
  through ``get_message``/``list_messages`` (reconciliation);
* the provider's ``queued``/``sending`` are reported as our ``sent`` (the provider has the
  message; our own ``queued``/``sending`` describe the outbox);
* default ``rate_limit`` 10 messages/second (neither document gives a limit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from convo.exceptions import (
    ConfigError,
    InvalidNumber,
    MalformedWebhook,
    ProviderRejected,
    ProviderUnavailable,
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
from convo.providers._wire import e164, json_body, parse_price, sms_parts
from convo.providers.callbacks import SMS_ROUTES, STATUS, callback_url
from convo.providers.http import call
from convo.providers.signing import body_signature, check_body_hmac

log = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT = 10.0
LIST_PAGE_SIZE = 100  # the documents' maximum page_size
DIRECTIONS = frozenset({"inbound", "outbound"})
REQUIRED_FIELDS = ("id", "status", "direction", "from", "to")
# The provider's 'queued'/'sending' mean it has the message: to us that is 'sent' (our
# 'queued'/'sending' are about our own outbox). 'receiving' (Telefonie) has no neutral twin;
# in a report about an inbound message it reads 'received'.
PROVIDER_TO_NEUTRAL = {"queued": "sent", "sending": "sent", "receiving": "received"}


def sign(secret: str, body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, body))``: the ``X-Signature`` a genuine webhook carries."""
    return body_signature(secret, body)


class TelefoonFamilySms:
    """An ``SmsProvider`` for the Telefoon-shaped ``/messages`` API (see module docstring)."""

    kind: ClassVar[str]
    channel: ClassVar[Channel] = "sms"
    config_options: ClassVar[frozenset[str]] = frozenset(
        {"api_key", "webhook_secret", "base_url", "allow_unsigned", "rate_limit"}
    )  # subclasses add their own
    routes: ClassVar[tuple[str, ...]] = SMS_ROUTES
    title: ClassVar[str]  # the provider as people call it, for error messages
    default_base_url: ClassVar[str]
    statuses: ClassVar[frozenset[str]]  # the document's Message.status enum
    default_currency: ClassVar[str | None]
    list_filters: ClassVar[frozenset[str]] = frozenset()  # GET /messages filters beyond the two

    def __init__(
        self,
        *,
        name: str,
        client: httpx.AsyncClient,
        api_key: str,
        webhook_secret: str = "",
        base_url: str = "",
        allow_unsigned: bool = False,
        rate_limit: float = DEFAULT_RATE_LIMIT,
        public_url: str = "",
    ) -> None:
        self.name = name
        self.rate_limit = rate_limit
        self.allow_unsigned = allow_unsigned
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.public_url = public_url.rstrip("/")
        self._client = client
        self._api_key = api_key
        self._webhook_secret = webhook_secret

    def __repr__(self) -> str:  # never shows the api key or the webhook secret
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    @classmethod
    def from_config(
        cls,
        name: str,
        options: Mapping[str, Any],
        client: httpx.AsyncClient,
        *,
        public_url: str = "",
    ) -> Self:
        """Build from ``[providers.NAME]``; ``ConfigError`` names the offending key."""
        opts = ProviderOptions(name, options, cls.config_options)
        allow_unsigned = opts.boolean("allow_unsigned", False)
        secret = opts.string("webhook_secret")
        if not secret and not allow_unsigned:
            raise ConfigError(
                f"{opts.where('webhook_secret')}: missing; {cls.title} webhooks are checked "
                "with it (set allow_unsigned = true to accept unsigned webhooks instead)"
            )
        adapter = cls(
            name=name,
            client=client,
            api_key=opts.string("api_key", required=True),
            webhook_secret=secret,
            base_url=opts.base_url(cls.default_base_url),
            allow_unsigned=allow_unsigned,
            rate_limit=opts.number("rate_limit", DEFAULT_RATE_LIMIT),
            public_url=public_url,
        )
        adapter._configure(opts)
        return adapter

    def _configure(self, opts: ProviderOptions) -> None:
        """Read the provider's own options (beyond the family's); override in subclasses."""

    # -- sending ------------------------------------------------------------------------

    def _send_fields(self, message: OutboundMessage) -> dict[str, Any]:
        """Provider-specific send fields (``from`` included); raise ``ProviderRejected``."""
        raise NotImplementedError

    def _rejected(self, message: str) -> ProviderRejected:
        return ProviderRejected(f"{self.name}: {message}", provider=self.name)

    def _recipient(self, message: OutboundMessage) -> str:
        try:
            return e164(message.to)
        except InvalidNumber as exc:
            raise self._rejected(f"cannot send to {message.to!r}: {exc}") from exc

    async def send(self, message: OutboundMessage) -> SendResult:
        """``POST /messages``. Raises ``ProviderRejected`` (bad input, refusal, failed at
        once), ``RateLimited`` (429) or ``ProviderUnavailable`` (5xx, network)."""
        payload: dict[str, Any] = {"to": self._recipient(message)}
        payload.update(self._send_fields(message))
        if self.public_url:
            payload["status_callback"] = callback_url(self.public_url, self.name, STATUS)
        data = await self._request("POST", "/messages", json=payload)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise self._rejected("send answered without a message id; not retrying")
        status = data.get("status")
        if status in ("failed", "undelivered"):
            code, text = data.get("error_code"), data.get("error_message")
            raise ProviderRejected(
                f"{self.name}: message {status}: {text or 'no reason given'}",
                provider=self.name,
                code="" if code is None else str(code),
            )
        segments = data.get("num_segments")
        if not isinstance(segments, int) or isinstance(segments, bool) or segments < 1:
            segments = sms_parts(message.text) if message.text else 1
        try:
            price = parse_price(data.get("price"))
        except ValueError:
            log.warning("%s: unreadable price in send answer for %s", self.name, data["id"])
            price = None
        currency = data.get("price_unit") or self.default_currency
        return SendResult(
            provider=self.name,
            provider_message_id=data["id"],
            status=MessageStatus.DELIVERED if status == "delivered" else MessageStatus.SENT,
            segments=segments,
            price=price,
            currency=currency if isinstance(currency, str) and price is not None else None,
        )

    # -- message records (reconciliation, erasure) --------------------------------------

    async def get_message(self, provider_message_id: str) -> DeliveryReport:
        """``GET /messages/{id}`` as a report; 404 -> ``ProviderRejected``."""
        data = await self._request("GET", f"/messages/{quote(provider_message_id, safe='')}")
        return self._report(data, where="get_message")

    async def list_messages(
        self,
        direction: str | None = None,
        status: str | None = None,
        page: int = 1,
        page_size: int = 100,
        **filters: str,
    ) -> list[DeliveryReport]:
        """``GET /messages`` with the document's filters; ``ValueError`` on a filter or page
        the document does not allow (checked before any request)."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        if status is not None and status not in self.statuses:
            raise ValueError(f"{self.title} has no status {status!r}: {sorted(self.statuses)}")
        if page < 1 or not 1 <= page_size <= 100:
            raise ValueError("page must be >= 1 and page_size between 1 and 100")
        unknown = set(filters) - self.list_filters
        if unknown:
            raise ValueError(f"{self.title} cannot filter on {', '.join(sorted(unknown))}")
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        params.update({k: v for k, v in (("direction", direction), ("status", status)) if v})
        params.update(filters)
        return [self._report(item, where="list_messages") for item in await self._page(params)]

    async def outbound_reports(self, since: float, *, max_pages: int) -> list[DeliveryReport]:
        """Reports on our outbound messages created since ``since`` (a UNIX time), in bulk:
        ``GET /messages?direction=outbound`` page by page (100 a page), stopping after a
        short page, after a page whose every message was created before ``since``, or after
        ``max_pages`` pages. The listing has no time filter, so the window is found by
        ``date_created``; a message without a readable one counts as inside the window
        (listed, never a reason to stop). The documents do not say the order: stopping only
        on a page wholly before ``since`` is right for newest-first and for any order where
        old messages come last. Raises what ``list_messages`` raises."""
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        reports: list[DeliveryReport] = []
        for page in range(1, max_pages + 1):
            params: dict[str, str | int] = {"direction": "outbound", "page": page}
            params["page_size"] = LIST_PAGE_SIZE
            items = await self._page(params)
            reports.extend(self._report(item, where="list_messages") for item in items)
            created = [_created_at(item) for item in items]
            if len(items) < LIST_PAGE_SIZE or all(t is not None and t < since for t in created):
                break
        return reports

    async def _page(self, params: Mapping[str, str | int]) -> list[object]:
        """One ``GET /messages`` page: its ``messages`` array, unchecked."""
        data = await self._request("GET", "/messages", params=dict(params))
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderUnavailable(f"{self.name}: list answer has no messages array")
        return items

    async def delete_message(self, provider_message_id: str) -> None:
        """``DELETE /messages/{id}`` (GDPR erasure); an id already gone counts as erased."""
        path = f"/messages/{quote(provider_message_id, safe='')}"
        await self._request("DELETE", path, expected=(200, 204, 404))

    def _report(self, data: object, *, where: str) -> DeliveryReport:
        try:
            return self._report_from(self._checked_message(data))
        except MalformedWebhook as exc:
            raise ProviderUnavailable(f"{self.name}: {where}: {exc}") from exc

    async def _request(
        self, method: str, path: str, *, expected: tuple[int, ...] = (200, 201, 204), **kw: Any
    ) -> Any:
        """The one place this API is called: auth header, error mapping, JSON decoding."""
        response = await call(
            self._client,
            method,
            self.base_url + path,
            provider=self.name,
            expected=expected,
            headers={"X-API-Key": self._api_key, "Accept": "application/json"},
            **kw,
        )
        if response.status_code in (204, 404) or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.name}: {method} {path} answered {response.status_code} with non-JSON",
                provider=self.name,
            ) from exc

    # -- webhooks -----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """Check ``X-Signature`` against the raw body (``convo.providers.signing``): with a
        ``webhook_secret`` it is required; True when signed."""
        return check_body_hmac(
            request, self._webhook_secret, allow_unsigned=self.allow_unsigned, provider=self.name
        )

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """An inbound ``Message``; [] while Telefonie still reports it ``receiving``."""
        data = self._checked_message(json_body(request, self.name))
        if data["direction"] != "inbound":
            raise MalformedWebhook(
                f"{self.name}: field 'direction' is {data['direction']!r} on the inbound "
                "webhook; status callbacks go to /status"
            )
        if data["status"] == "receiving":
            return []  # the complete message follows with status 'received'
        if data["status"] != "received":
            raise MalformedWebhook(
                f"{self.name}: field 'status' is {data['status']!r}; inbound messages are "
                "'received'"
            )
        body = data.get("body", "")
        if body is None:
            body = ""
        if not isinstance(body, str):
            raise MalformedWebhook(f"{self.name}: field 'body' must be a string")
        return [
            InboundMessage(
                line=_number(data, "to", self.name),
                sender=_number(data, "from", self.name),
                text=body,
                provider=self.name,
                provider_message_id=data["id"],
                media_urls=self._inbound_media(data),
            )
        ]

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """A status callback (an outbound ``Message``) as one ``DeliveryReport``."""
        data = self._checked_message(json_body(request, self.name))
        if data["direction"] != "outbound":
            raise MalformedWebhook(
                f"{self.name}: field 'direction' is {data['direction']!r} on the status "
                "webhook; status callbacks are about outbound messages"
            )
        if data["status"] in ("received", "receiving"):
            raise MalformedWebhook(
                f"{self.name}: field 'status' {data['status']!r} is not an outbound status"
            )
        return [self._report_from(data)]

    def _inbound_media(self, data: Mapping[str, Any]) -> tuple[str, ...]:
        """Media URLs of an inbound message; plain SMS providers have none."""
        return ()

    def _checked_message(self, data: object) -> dict[str, Any]:
        """``data`` if it is a ``Message`` with its required fields; else ``MalformedWebhook``."""
        if not isinstance(data, dict):
            raise MalformedWebhook(f"{self.name}: expected a JSON object shaped like Message")
        for field in REQUIRED_FIELDS:
            value = data.get(field)
            if not isinstance(value, str) or not value:
                problem = "missing" if value is None else "not a non-empty string"
                raise MalformedWebhook(f"{self.name}: field {field!r} is {problem}")
        if data["status"] not in self.statuses:
            raise MalformedWebhook(
                f"{self.name}: field 'status' is {data['status']!r}; expected one of "
                f"{', '.join(sorted(self.statuses))}"
            )
        if data["direction"] not in DIRECTIONS:
            raise MalformedWebhook(f"{self.name}: field 'direction' must be inbound or outbound")
        return data

    def _report_from(self, data: Mapping[str, Any]) -> DeliveryReport:
        status = PROVIDER_TO_NEUTRAL.get(data["status"], data["status"])
        try:
            price = parse_price(data.get("price"))
        except ValueError as exc:
            raise MalformedWebhook(f"{self.name}: field 'price' {exc}") from None
        code, text = data.get("error_code"), data.get("error_message")
        currency = data.get("price_unit") or self.default_currency
        return DeliveryReport(
            provider=self.name,
            provider_message_id=data["id"],
            status=MessageStatus(status),
            error_code=None if code is None else str(code),
            error_text=text if isinstance(text, str) else None,
            price=price,
            currency=currency if isinstance(currency, str) and price is not None else None,
        )

    async def start(self) -> None:
        """Nothing to check at start."""

    async def aclose(self) -> None:
        """Nothing to release: the shared ``httpx.AsyncClient`` belongs to the server."""


def _created_at(item: object) -> float | None:
    """A listed ``Message``'s ``date_created`` as a UNIX time; None when absent or unreadable
    (an ISO 8601 time without a zone is read as UTC)."""
    raw = item.get("date_created") if isinstance(item, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _number(data: Mapping[str, Any], field: str, name: str) -> str:
    try:
        return e164(data[field])
    except InvalidNumber as exc:
        raise MalformedWebhook(f"{name}: field {field!r}: {exc}") from exc
