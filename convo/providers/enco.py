"""Proximus Enco SMS (Belgium + 200 countries; the Enco SMS API 1.0.0).

Enco has no inbound webhook, so this is a ``PollingSmsProvider``: the server calls
:meth:`EncoSms.poll_inbound` (and :meth:`EncoSms.poll_status`) every ``poll_interval`` seconds.

* Auth: a bearer token from ``token_url`` (OAuth2 client credentials, ``_oauth``), cached
  until it expires and renewed once when the API answers 401 (the request is then retried).
* Origin: a dedicated ``address`` (``POST /sms/outboundmessages/{address}``, inbound from
  ``GET /sms/inboundmessages/{address}``), or ``shared = true`` for the shared short code
  (``/sms/outboundmessages`` and ``/sms/inboundmessages/shared``); ``shared_address`` names
  that code as our line (default ``8937``, the document's example). The document has no
  keyword for shared codes, so there is no ``keyword`` option. Enco routes a reply on the
  shared code by who texted its sender lately; convo's engine applies the same 7-day rule
  between its own conversations on that line (``shared_code``; ``convo.flow.shared_codes``).
* Inbound: ``new-only=true`` with a window of ``inbound_lookback`` seconds (default 7 days,
  the shared code's ownership period) up to a minute from now (clock skew). Messages carry no
  id, so ``provider_message_id`` is a hash of sender, address, text and ``timeReceived``: a
  poll repeated after a crash yields the same ids and the store drops the duplicates.
  ``new-only`` means Enco hands a message out once: an item we cannot read is logged at
  ERROR with its content (the only place it survives) and skipped.
* Delivery: ``DeliveredToTerminal`` -> delivered, ``DeliveryImpossible`` -> undelivered,
  ``DeliveredToNetwork``/``MessageWaiting``/``DeliveryUncertain`` -> sent (Enco will not know
  more after ``DeliveryUncertain``, so tracking stops there). With ``server.public_url`` set
  (and ``delivery_callbacks`` not false) we hand Enco a ``callbackURL``; otherwise
  ``poll_status`` polls ``/deliveryinfos/{id}`` for messages sent since start (and those given
  to :meth:`EncoSms.track_delivery`).
* Reconciliation (``convo.reconcile``: a receipt that never came, e.g. a lost callback):
  :meth:`EncoSms.get_message` asks ``/deliveryinfos/{id}`` about one message, and
  :meth:`EncoSms.outbound_reports` lists many at once from ``GET /logs`` (``sms-outbound``
  entries of our address or the shared code; ``convo.providers._enco_logs`` says what we
  assume of it).
* Callback authentication (the document defines none): the callback URL is
  ``{public_url}/webhooks/{name}/status?ref={our message id}&token={hex HMAC-SHA256(secret,
  ref)}``; ``verify`` recomputes the token, so a token authenticates one message only, and
  ``ref`` gives the report its ``client_ref`` (a callback may beat ``send``'s return). The
  secret is ``callback_secret``, or derived from ``client_secret`` when not set, so there is
  always one and a callback without its token is refused (``convo.providers.signing``). The callback
  body is assumed to be the document's delivery-info shape (``resourceURL`` + a
  ``deliveryInfo`` list) or OneAPI's ``deliveryInfoNotification``; both are accepted.
* Errors: bodies follow OneAPI (``requestError.serviceException|policyException`` with
  ``messageId``/``text``) where present; 4xx -> ``ProviderRejected`` (code = ``messageId`` or
  the HTTP status), 429 -> ``RateLimited``, 5xx -> ``ProviderUnavailable``.
* ``force_character_limit = true`` sends ``forceCharacterLimit=true``; a text longer than one
  part is then refused locally rather than cut by the network.
* Enco reports no price; ``segments`` is our own GSM-7/UCS-2 count, except for a text our
  count may disagree with Enco's on (``convo.sms.segments.counted_differently``: GSM-7
  extension characters, UCS-2 characters outside the BMP): for that one we ask Enco
  (``POST /sms/outboundmessages/length``) before sending and its ``numberOfParts`` decides
  ``segments`` and ``force_character_limit``. If Enco cannot be asked, our count stands.

Options: ``client_id``, ``client_secret`` (required), ``token_url`` (default
``https://api.enco.io/token``), ``base_url`` (default ``https://api.enco.io/sms/1.0.0``),
``address`` | ``shared`` (+ ``shared_address``), ``poll_interval`` (5 s), ``inbound_lookback``
(604800 s), ``force_character_limit`` (false), ``delivery_callbacks``, ``callback_secret``,
``allow_unsigned`` (accepted, but changes nothing: there is always a key to check callbacks
with), ``rate_limit`` (10/s).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx

from convo.exceptions import (
    ConfigError,
    InvalidNumber,
    MalformedWebhook,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    SignatureError,
)
from convo.models import (
    Channel,
    DeliveryReport,
    InboundMessage,
    OutboundMessage,
    SendResult,
    WebhookRequest,
)
from convo.providers._enco_logs import logged_status, month_windows
from convo.providers._enco_wire import (
    FINAL_ENCO_STATUSES,
    STATUS_MAP,
    delivery_entries,
    delivery_id,
    format_time,
    inbound_message,
    neutral_status,
    oneapi_error,
    window,
)
from convo.providers._oauth import ClientCredentials
from convo.providers._options import ProviderOptions
from convo.providers._wire import e164, json_body, sms_parts
from convo.providers.callbacks import STATUS, callback_url
from convo.providers.http import call
from convo.providers.signing import must_check
from convo.sms.segments import counted_differently

log = logging.getLogger(__name__)

OPTIONS = frozenset(
    {
        "client_id", "client_secret", "token_url", "base_url", "address", "shared",
        "shared_address", "poll_interval", "inbound_lookback", "force_character_limit",
        "delivery_callbacks", "callback_secret", "allow_unsigned", "rate_limit",
    }
)  # fmt: skip
DEFAULT_TOKEN_URL = "https://api.enco.io/token"  # noqa: S105  # a URL, not a password
DEFAULT_BASE_URL = "https://api.enco.io/sms/1.0.0"
MAX_TRACK_AGE = 48 * 3600.0  # stop polling a delivery info after this long (seconds)


class EncoSms:
    """``PollingSmsProvider`` for Proximus Enco. Build with :meth:`from_config`."""

    kind: ClassVar[str] = "enco"
    channel: ClassVar[Channel] = "sms"
    config_options: ClassVar[frozenset[str]] = OPTIONS
    routes: ClassVar[tuple[str, ...]] = (STATUS,)  # no inbound webhook: inbound is polled
    logs_page_size = 100  # entries asked for per ``GET /logs`` page

    def __init__(
        self,
        *,
        name: str,
        client: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        token_url: str = DEFAULT_TOKEN_URL,
        base_url: str = DEFAULT_BASE_URL,
        address: str = "",
        shared_address: str = "8937",
        poll_interval: float = 5.0,
        inbound_lookback: float = 7 * 86400.0,
        force_character_limit: bool = False,
        callback_secret: str = "",
        delivery_callbacks: bool = True,
        allow_unsigned: bool = False,
        rate_limit: float = 10.0,
        public_url: str = "",
        section: str = "",
    ) -> None:
        self.name = name
        self.section = section or f"[providers.{name}]"  # for error messages
        self.rate_limit = rate_limit
        self.poll_interval = poll_interval
        self.base_url = base_url.rstrip("/")
        self.address = address  # "" means the shared short code
        self.line = address or shared_address
        self.allow_unsigned = allow_unsigned
        self.force_character_limit = force_character_limit
        self.inbound_lookback = inbound_lookback
        self.public_url = public_url.rstrip("/")
        self.delivery_callbacks = delivery_callbacks and bool(self.public_url)
        self._client = client
        self._tokens = ClientCredentials(
            client, token_url=token_url, client_id=client_id, client_secret=client_secret,
            provider=name,
        )  # fmt: skip
        # Never the client secret itself: a key derived from it, unless one is configured.
        key = (
            callback_secret
            or hmac.new(client_secret.encode(), b"convo/enco/callback", hashlib.sha256).hexdigest()
        )
        self._callback_key = key.encode()
        # delivery info id -> (client_ref, last Enco status, monotonic time tracked)
        self._pending: dict[str, tuple[str | None, str, float]] = {}

    def __repr__(self) -> str:
        return f"EncoSms(name={self.name!r}, line={self.line!r}, base_url={self.base_url!r})"

    @property
    def shared(self) -> bool:
        return not self.address

    @property
    def shared_code(self) -> str | None:
        """The shared short code we send from, None with a dedicated address: its line
        follows the shared-code rule (``convo.flow.shared_codes``)."""
        return self.line if self.shared else None

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
        shared = opts.boolean("shared", False)
        address = opts.string("address")
        if shared == bool(address):
            raise ConfigError(
                f"{opts.where('address')}: give a dedicated address, or shared = true (not both)"
            )
        callbacks = opts.boolean("delivery_callbacks", bool(public_url))
        if callbacks and not public_url:
            raise ConfigError(
                f"{opts.where('delivery_callbacks')}: needs server.public_url (the callbackURL "
                "we hand to Enco is built from it)"
            )
        return cls(
            name=name,
            client=client,
            client_id=opts.string("client_id", required=True),
            client_secret=opts.string("client_secret", required=True),
            token_url=opts.string("token_url", DEFAULT_TOKEN_URL),
            base_url=opts.base_url(DEFAULT_BASE_URL),
            address=address,
            shared_address=opts.string("shared_address", "8937"),
            poll_interval=opts.number("poll_interval", 5.0),
            inbound_lookback=opts.number("inbound_lookback", 7 * 86400.0),
            force_character_limit=opts.boolean("force_character_limit", False),
            callback_secret=opts.string("callback_secret"),
            delivery_callbacks=callbacks,
            allow_unsigned=opts.boolean("allow_unsigned", False),
            rate_limit=opts.number("rate_limit", 10.0),
            public_url=public_url,
            section=opts.section(),
        )

    async def start(self) -> None:
        """At server start, a dedicated ``address`` must be one of the account's
        (:meth:`check_dedicated_addresses`): ``ConfigError`` naming the section when it is
        not, or when Enco refuses the check (e.g. wrong credentials). When Enco cannot be
        reached now, only a warning: sending retries later. The shared code is not checked
        (the account does not list it)."""
        if self.shared:
            return
        try:
            await self.check_dedicated_addresses()
        except ProviderRejected as exc:
            raise ConfigError(f"{self.section}: {exc}") from exc
        except ProviderError as exc:
            log.warning("%s: dedicated address not checked: %s", self.name, exc)

    # -- the API ------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        """The one place Enco is called: bearer token (renewed once on 401), OneAPI error
        bodies -> ``ProviderRejected``, JSON decoding. 429/5xx/network via ``call``."""
        accepted = (200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422)
        for attempt in (1, 2):
            token = await self._tokens.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            response = await call(
                self._client, method, self.base_url + path, provider=self.name,
                expected=accepted, headers=headers, **kw,
            )  # fmt: skip
            if response.status_code == 401 and attempt == 1:
                self._tokens.invalidate(token)  # expired or revoked: fetch a new one, retry
                continue
            break
        if response.status_code >= 400:
            code, text = oneapi_error(response)
            raise ProviderRejected(
                f"{self.name}: {method} {path}: HTTP {response.status_code}: {text}",
                provider=self.name,
                code=code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.name}: {method} {path} answered non-JSON", provider=self.name
            ) from exc

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send from our address (or the shared code). ``ProviderRejected`` for texts Enco
        cannot take (media, empty, over one part with ``force_character_limit``, bad number)."""
        if message.media_urls:
            raise ProviderRejected(f"{self.name}: Enco cannot send media", provider=self.name)
        if not message.text:
            raise ProviderRejected(f"{self.name}: the message text is empty", provider=self.name)
        parts = await self._parts(message.text)
        if self.force_character_limit and parts > 1:
            raise ProviderRejected(
                f"{self.name}: text needs {parts} parts but force_character_limit is on",
                provider=self.name,
            )
        try:
            destination = e164(message.to)
        except InvalidNumber as exc:
            raise ProviderRejected(f"{self.name}: {exc}", provider=self.name) from exc
        payload: dict[str, Any] = {"message": message.text, "destinations": [destination]}
        if self.delivery_callbacks:
            payload["callbackURL"] = self.callback_url(message.id)
        path = "/sms/outboundmessages" + ("" if self.shared else f"/{quote(self.address)}")
        flag = "true" if self.force_character_limit else "false"
        data = await self._request("POST", path, params={"forceCharacterLimit": flag}, json=payload)
        info_id = delivery_id(data)
        entries = delivery_entries(data)
        if not info_id or not entries:
            raise ProviderRejected(
                f"{self.name}: send answered without resourceURL/deliveryInfo; not retrying",
                provider=self.name,
            )
        status = entries[0][1]
        if status == "DeliveryImpossible":
            raise ProviderRejected(
                f"{self.name}: Enco says delivery to {destination} is impossible",
                provider=self.name,
                code=status,
            )
        if not self.delivery_callbacks:
            self.track_delivery(info_id, message.id, status)
        return SendResult(
            provider=self.name,
            provider_message_id=info_id,
            status=neutral_status(status),
            segments=parts,
        )

    def callback_url(self, ref: str) -> str:
        """The ``callbackURL`` for our message ``ref``, authenticated for that message only."""
        token = hmac.new(self._callback_key, ref.encode(), hashlib.sha256).hexdigest()
        return callback_url(self.public_url, self.name, STATUS, {"ref": ref, "token": token})

    async def _parts(self, text: str) -> int:
        """How many parts Enco bills ``text`` as (module docstring: ours, or Enco's own
        count when ours may disagree)."""
        ours = sms_parts(text)
        if not counted_differently(text):
            return ours
        try:
            length = await self.message_length(text)
        except ProviderError as exc:
            log.warning("%s: cannot ask Enco to count a text (%s); using ours", self.name, exc)
            return ours
        theirs = length.get("numberOfParts")
        if theirs is None or theirs < 1:
            log.warning("%s: Enco's length answer has no numberOfParts; using ours", self.name)
            return ours
        if theirs != ours:
            log.info("%s: Enco counts %d part(s) where convo counts %d", self.name, theirs, ours)
        return theirs

    async def message_length(self, text: str) -> dict[str, int]:
        """``POST /sms/outboundmessages/length``: Enco's own count of ``text``."""
        data = await self._request("POST", "/sms/outboundmessages/length", json={"message": text})
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"{self.name}: length answer is not an object")
        return {k: int(v) for k, v in data.items() if isinstance(v, int)}

    async def check_dedicated_addresses(self) -> list[str]:
        """``GET /sms/dedicatedaddresses``; ``ConfigError`` if our ``address`` is not listed."""
        data = await self._request("GET", "/sms/dedicatedaddresses")
        found = data.get("dedicatedAddresses") if isinstance(data, dict) else None
        if not isinstance(found, list):
            raise ProviderUnavailable(f"{self.name}: dedicatedaddresses answer has no list")
        addresses = [str(a) for a in found]
        if self.address and self.address not in addresses:
            raise ConfigError(
                f"{self.section} address: {self.address!r} is not one of this "
                f"account's dedicated addresses ({', '.join(addresses) or 'none'})"
            )
        return addresses

    # -- polling ------------------------------------------------------------------------

    async def poll_inbound(self) -> list[InboundMessage]:
        """Messages Enco has not handed out before (``new-only=true``), oldest first."""
        path = "/sms/inboundmessages/" + ("shared" if self.shared else quote(self.address))
        start, end = window(datetime.now(UTC), timedelta(seconds=self.inbound_lookback))
        params = {"startdatetime": start, "enddatetime": end, "new-only": "true"}
        data = await self._request("GET", path, params=params)
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderUnavailable(f"{self.name}: inbound answer has no messages list")
        inbound = []
        for item in items:
            try:
                inbound.append(inbound_message(item, line=self.line, provider=self.name))
            except MalformedWebhook as exc:
                log.error("%s: skipped unreadable inbound message %r: %s", self.name, item, exc)
        return sorted(inbound, key=lambda m: m.received_at)

    def track_delivery(
        self, provider_message_id: str, client_ref: str | None = None, status: str = ""
    ) -> None:
        """Have ``poll_status`` follow this delivery info (e.g. pending ones after a restart)."""
        self._pending[provider_message_id] = (client_ref, status, time.monotonic())

    async def poll_status(self) -> list[DeliveryReport]:
        """Delivery infos that changed since last seen; [] when callbacks bring them.

        A throttled or failing Enco ends the round early (what was learned is returned);
        an unknown id (404) is dropped."""
        reports: list[DeliveryReport] = []
        for info_id, (ref, seen, since) in list(self._pending.items()):
            try:
                data = await self._request(
                    "GET", f"/sms/outboundmessages/deliveryinfos/{quote(info_id, safe='')}"
                )
            except ProviderRejected:
                del self._pending[info_id]
                continue
            except ProviderError as exc:
                log.warning("%s: delivery polling paused: %s", self.name, exc)
                break
            entries = delivery_entries(data)
            status = entries[0][1] if entries else seen
            if status != seen and status:
                reports.append(self._report(info_id, status, ref))
            if status in FINAL_ENCO_STATUSES or time.monotonic() - since > MAX_TRACK_AGE:
                del self._pending[info_id]
            else:
                self._pending[info_id] = (ref, status, since)
        return reports

    # -- reconciliation -----------------------------------------------------------------

    async def get_message(self, provider_message_id: str) -> DeliveryReport:
        """Where one message is now (``GET /sms/outboundmessages/deliveryinfos/{id}``).
        ``ProviderRejected`` when Enco does not know the id; ``ProviderUnavailable`` when
        its answer has no status we know."""
        path = f"/sms/outboundmessages/deliveryinfos/{quote(provider_message_id, safe='')}"
        entries = delivery_entries(await self._request("GET", path))
        if not entries or entries[0][1] not in STATUS_MAP:
            raise ProviderUnavailable(
                f"{self.name}: delivery info {provider_message_id} has no known deliveryStatus",
                provider=self.name,
            )
        return self._report(provider_message_id, entries[0][1], None)

    async def outbound_reports(self, since: float, *, max_pages: int) -> list[DeliveryReport]:
        """Reports on our messages sent since ``since`` (a UNIX time), in bulk: ``GET /logs``
        (``type=sms-outbound``, ``function=interval`` up to a minute from now, our dedicated
        address or else the shared code), one query per calendar month, page by page
        (:attr:`logs_page_size` entries), at most ``max_pages`` requests in all (the oldest
        month first: what the pages did not reach is simply not listed). Only entries with
        a final status are reported (``_enco_logs``: the others may be out of date), so the
        reconciler asks about the rest one by one. Raises what ``_request`` raises, and
        ``ProviderUnavailable`` for an answer that is not a list."""
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        now = datetime.now(UTC)
        reports: list[DeliveryReport] = []
        requests = 0
        windows = month_windows(datetime.fromtimestamp(since, UTC), now + timedelta(minutes=1))
        for year, month, start, end in windows:
            params: dict[str, str | int] = {
                "type": "sms-outbound", "year": year, "month": month, "function": "interval",
                "startTime": format_time(start), "endTime": format_time(end),
                "limit": self.logs_page_size, "page": "first",
            }  # fmt: skip
            if not self.shared:
                params["dedicatedaddress"] = self.address
            while requests < max_pages:
                page = await self._request("GET", "/logs", params=params)
                requests += 1
                if not isinstance(page, list):
                    raise ProviderUnavailable(f"{self.name}: /logs answer is not a list")
                for entry in page:
                    found = logged_status(entry)
                    if found is not None:
                        reports.append(self._report(*found, None))
                last = page[-1].get("requestId") if page and isinstance(page[-1], dict) else None
                if len(page) < self.logs_page_size or not isinstance(last, str) or not last:
                    break  # the month's last page (or one we cannot page on from)
                params = {**params, "page": "next", "pageref": last}
        return reports

    def _report(self, info_id: str, status: str, ref: str | None) -> DeliveryReport:
        return DeliveryReport(
            provider=self.name,
            provider_message_id=info_id,
            status=neutral_status(status),
            client_ref=ref,
            error_code=status if status == "DeliveryImpossible" else None,
        )

    # -- callbacks ----------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """Check the callback URL's ``token`` for its ``ref``; ``SignatureError`` if wrong
        or absent. Enco always has a secret to check with (``callback_secret``, else the
        key derived from ``client_secret``), so by the one rule of
        ``convo.providers.signing`` every callback must carry its token: ``allow_unsigned``
        changes nothing here. True when it matched."""
        ref, token = request.query.get("ref", ""), request.query.get("token", "")
        must_check(
            self.name,
            has_secret=True,
            allow_unsigned=self.allow_unsigned,
            signed=bool(ref and token),
            unsigned="callback URL lacks its ref and token",
        )
        expected = hmac.new(self._callback_key, ref.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
            raise SignatureError(f"{self.name}: callback token does not match its ref")
        return True

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Always ``MalformedWebhook``: Enco has no inbound webhook (inbound is polled)."""
        raise MalformedWebhook(f"{self.name}: Enco has no inbound webhook; inbound is polled")

    def parse_status(self, request: WebhookRequest) -> list[DeliveryReport]:
        """A ``callbackURL`` delivery: one report per ``deliveryInfo`` entry."""
        data = json_body(request, self.name)
        entries = delivery_entries(data)
        if not entries:
            raise MalformedWebhook(
                f"{self.name}: field 'deliveryInfo' is missing or has no deliveryStatus"
            )
        info_id, ref = delivery_id(data), request.query.get("ref") or None
        if not info_id and not ref:
            raise MalformedWebhook(f"{self.name}: no resourceURL and no ref: which message?")
        unknown = [s for _, s in entries if s not in STATUS_MAP]
        if unknown:
            raise MalformedWebhook(f"{self.name}: unknown deliveryStatus {unknown[0]!r}")
        if info_id:
            self._pending.pop(info_id, None)
        return [self._report(info_id, status, ref) for _, status in entries]

    async def aclose(self) -> None:
        """Nothing to release: the shared ``httpx.AsyncClient`` belongs to the server."""
