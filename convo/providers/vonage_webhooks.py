"""Vonage's signed parameters and webhooks, as pure functions (no I/O).

Signatures (the outbound ``sig`` and signed webhooks) are computed as the official SDKs do
(vonage-python-sdk ``vonage/client.py`` ``Client.signature`` and, in v4,
``vonage_http_client/auth.py`` ``Auth.sign_params``; vonage-php-sdk-core
``src/Client/Signature.php``): sort the parameters (without ``sig``) by name, replace ``&``
and ``=`` inside values by ``_``, and concatenate ``&name=value`` for each. Then
``md5hash`` is the hex MD5 of that string with the signature secret appended, and
``md5``/``sha1``/``sha256``/``sha512`` the hex HMAC of it keyed with the secret. The PHP
SDK upper-cases HMAC digests and the Python SDK does not, and both compare
case-insensitively: we produce upper case for HMAC and accept either case.

Webhook fields arrive as a GET query, a POST form or a POST JSON object;
:func:`webhook_fields` reads all three into one ``dict[str, str]``. Numbers come without
``+`` (:func:`vonage_number`): they are normalised to E.164 by
``convo.sms.phone.normalize_possible``, which keeps a number the metadata does not list as
allocated but that is *possible* (such as the document's own 447700900000) rather than
losing the message, and refuses an impossible one (no such country code, too short or too
long).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from convo.exceptions import InvalidNumber, MalformedWebhook, SignatureError
from convo.models import DeliveryReport, InboundMessage, MessagePart, MessageStatus, WebhookRequest
from convo.providers import form
from convo.providers.payload import MAX_DIGITS, decode_json, whole_number
from convo.providers.payload import price as payload_price
from convo.sms.phone import normalize_possible

#: The most parts of a concatenated SMS (the user data header counts them in one byte).
MAX_PARTS = 255
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
#: The document names no currency for prices; Vonage accounts are billed in EUR.
CURRENCY = "EUR"

#: Delivery-receipt ``status`` -> convo status. ``unknown`` is no verdict from the carrier,
#: so the message stays ``sent`` (the ``err-code`` is kept on the report).
RECEIPT_STATUS: dict[str, MessageStatus] = {
    "delivered": MessageStatus.DELIVERED,
    "expired": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "rejected": MessageStatus.FAILED,
    "accepted": MessageStatus.SENT,
    "buffered": MessageStatus.SENT,
    "unknown": MessageStatus.SENT,
}

_INBOUND = "vonage inbound SMS"
_RECEIPT = "vonage delivery receipt"


def signature(params: Mapping[str, object], secret: str, method: str = "md5hash") -> str:
    """The Vonage ``sig`` of ``params`` (a ``sig`` key is ignored); see module docstring.

    Raises ``ValueError`` for a ``method`` outside :data:`SIGNATURE_METHODS`.
    """
    base = "".join(
        f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
        for key in sorted(params)
        if key != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((base + secret).encode(), usedforsecurity=False).hexdigest()
    if method not in SIGNATURE_METHODS:
        raise ValueError(f"unknown signature method {method!r}")
    # hmac.digest: OpenSSL's one-shot HMAC, half the cost of an hmac.new object
    return hmac.digest(secret.encode(), base.encode(), method).hex().upper()


def signature_matches(params: Mapping[str, object], secret: str, method: str) -> bool:
    """True if ``params["sig"]`` is the right signature (case-insensitive, constant time)."""
    given = str(params.get("sig", "")).lower().encode()
    return hmac.compare_digest(given, signature(params, secret, method).lower().encode())


def check_signature(
    fields: Mapping[str, str], secret: str, method: str, *, window: float, now: float
) -> None:
    """Raise ``SignatureError`` unless ``fields`` carry a right ``sig`` and a ``timestamp``
    (UNIX seconds) within ``window`` seconds of ``now``."""
    if "sig" not in fields:
        raise SignatureError("vonage: webhook is not signed (no 'sig' field)")
    raw = fields.get("timestamp", "")
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_DIGITS:
        raise SignatureError("vonage: signed webhook without a valid 'timestamp'")
    if abs(now - int(raw)) > window:
        raise SignatureError(f"vonage: webhook timestamp is outside the {window:g} s window")
    if not signature_matches(fields, secret, method):
        raise SignatureError("vonage: webhook signature does not match")


def webhook_fields(request: WebhookRequest) -> dict[str, str]:
    """The fields of a Vonage webhook: GET query, POST form or POST JSON, all as strings.

    Raises ``MalformedWebhook`` for another content type, invalid JSON, a JSON body that
    is not an object, or a JSON value that is not a string or a number.
    """
    if request.method.upper() == "GET":
        return dict(request.query)
    ctype = request.content_type.split(";")[0].strip().lower()
    if ctype == "application/json":
        data = decode_json(request.body or b"null", "vonage")
        if not isinstance(data, dict):
            raise MalformedWebhook("JSON body must be an object of Vonage fields")
        fields: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise MalformedWebhook(f"field {key!r} must be a string or a number")
            if isinstance(value, int) and value.bit_length() > 64:
                raise MalformedWebhook(f"field {key!r}: number out of range")
            fields[key] = str(value)
        return fields
    if ctype == "application/x-www-form-urlencoded":
        if request.form:
            return dict(request.form)
        try:
            return form.decode(request.body.decode())
        except UnicodeDecodeError as exc:
            raise MalformedWebhook("form body is not UTF-8") from exc
    if not request.body and request.query:
        return dict(request.query)  # a POST carrying its fields in the query string
    raise MalformedWebhook(
        f"unsupported content type {request.content_type!r}; expected a GET query, "
        "application/x-www-form-urlencoded or application/json"
    )


def inbound_message(fields: Mapping[str, str], provider: str) -> InboundMessage:
    """The inbound SMS in webhook ``fields`` (``part`` set for a piece of a long text).

    Raises ``MalformedWebhook`` naming the missing or invalid field; binary messages
    (``type=binary``) are refused.
    """
    if fields.get("type") == "binary":
        raise MalformedWebhook(f"{_INBOUND}: binary messages (type=binary) are not supported")
    if "text" not in fields:
        raise MalformedWebhook(f"{_INBOUND}: missing field 'text'")
    part = None
    if fields.get("concat", "").lower() == "true":
        # A concatenated SMS has at most 255 parts (its header counts them in one byte).
        total = _integer(fields, "concat-total", MAX_PARTS)
        index = _integer(fields, "concat-part", MAX_PARTS)
        if not 1 <= index <= total:
            raise MalformedWebhook(f"{_INBOUND}: concat-part {index} is outside 1..{total}")
        part = MessagePart(_required(fields, "concat-ref", _INBOUND), index, total)
    return InboundMessage(
        line=_number(fields, "to", _INBOUND),
        sender=_number(fields, "msisdn", _INBOUND),
        text=fields["text"],
        provider=provider,
        provider_message_id=_required(fields, "messageId", _INBOUND),
        received_at=_message_time(fields, _INBOUND),
        part=part,
    )


def delivery_report(fields: Mapping[str, str], provider: str) -> DeliveryReport:
    """The delivery receipt in webhook ``fields`` (Vonage sends one per message part, so
    the report is ``per_part``: its id, status, error and price are that part's).

    Raises ``MalformedWebhook`` for a missing ``messageId``/``status``, an unknown status
    or a price that is not a number.
    """
    raw_status = _required(fields, "status", _RECEIPT)
    status = RECEIPT_STATUS.get(raw_status.lower())
    if status is None:
        raise MalformedWebhook(
            f"{_RECEIPT}: unknown status {raw_status!r}; expected one of "
            f"{', '.join(RECEIPT_STATUS)}"
        )
    try:
        price = payload_price(fields.get("price"))
    except ValueError as exc:
        raise MalformedWebhook(f"{_RECEIPT}: price {fields['price'][:40]!r} {exc}") from None
    err = fields.get("err-code", "0")
    return DeliveryReport(
        provider=provider,
        provider_message_id=_required(fields, "messageId", _RECEIPT),
        status=status,
        client_ref=fields.get("client-ref") or None,
        error_code=None if err in ("", "0") else err,
        price=price,
        currency=CURRENCY if price is not None else None,
        at=_message_time(fields, _RECEIPT),
        per_part=True,  # Vonage sends a receipt for each part of a long text
    )


def _required(fields: Mapping[str, str], name: str, kind: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise MalformedWebhook(f"{kind}: missing field {name!r}")
    return value


def _integer(fields: Mapping[str, str], name: str, high: int) -> int:
    return whole_number(_required(fields, name, _INBOUND), name, _INBOUND, high=high)


def _number(fields: Mapping[str, str], name: str, kind: str) -> str:
    raw = _required(fields, name, kind)
    try:
        return vonage_number(raw)
    except InvalidNumber as exc:
        raise MalformedWebhook(f"{kind}: field {name!r}: {exc}") from None


def vonage_number(raw: str) -> str:
    """``raw`` (Vonage's form: international digits, no ``+``; a ``+`` is tolerated) in
    E.164. A possible number the metadata does not list as allocated is kept as
    ``+digits`` (see the module docstring); raises ``InvalidNumber`` saying why otherwise.
    """
    digits = raw.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidNumber(
            f"{raw!r} is not a phone number (expected international digits, like 32470123456)"
        )
    return _e164("+" + digits)


# Our line numbers (and a conversation's contact) repeat on every webhook: parse each once.
# (Only results are cached; an impossible number is refused again each time.)
# Parsing a number with the phone metadata costs ~30 us; a contact writes and is answered
# many times. Sized for the contacts active at once on a busy line (~10 MB when full).
_e164 = functools.lru_cache(maxsize=65536)(normalize_possible)


def _message_time(fields: Mapping[str, str], kind: str) -> float:
    raw = fields.get("message-timestamp")
    if not raw:
        return time.time()
    return _stamp_seconds(raw, kind)


# Texts arriving in the same second carry the same stamp: each is read once.
@functools.lru_cache(maxsize=256)
def _stamp_seconds(raw: str, kind: str) -> float:
    try:
        if len(raw) != 19 or raw[10] != " ":
            raise ValueError(raw)
        # fromisoformat is several times faster than strptime for this fixed shape
        stamp = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    except ValueError as exc:
        raise MalformedWebhook(
            f"{kind}: field 'message-timestamp' {raw!r} is not 'YYYY-MM-DD HH:MM:SS'"
        ) from exc
    return stamp.timestamp()
