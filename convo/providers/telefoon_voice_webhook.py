"""Telefoon Voice webhooks, as pure functions: signature check and call-event parsing.

The document defines no webhook format; we assume form posts
(``application/x-www-form-urlencoded``) with ``call_id, from, to, direction, status``, all
required, plus on ``/voice/input`` one of ``digits``, ``speech_result`` (+ ``confidence``,
0..1) or ``recording_url`` (+ ``recording_duration`` in seconds), and optionally
``duration``; a Dial's action webhook carries ``dial_status`` (a call status value).
None of the input fields means silence. ``status`` takes the values of the document's
Call ``status`` enum, which are exactly :class:`~convo.models.CallStatus`.
The body is signed with ``X-Signature: hex(HMAC-SHA256(webhook_secret, raw body))``.

Nothing here does I/O; the adapter (``convo.providers.telefoon_voice``) delegates to it and
the simulator signs with :func:`sign`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from urllib.parse import parse_qsl

import phonenumbers

from convo.exceptions import MalformedWebhook
from convo.models import CallEvent, CallStatus, WebhookRequest
from convo.providers.signing import SIGNATURE_HEADER as SIGNATURE_HEADER  # re-exported
from convo.providers.signing import body_signature, check_body_hmac

_STATUSES = {status.value: status for status in CallStatus}
_DIRECTIONS = ("inbound", "outbound")
_DTMF = frozenset("0123456789*#")


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Signature`` value for ``body``: hex HMAC-SHA256 with ``secret``."""
    return body_signature(secret, body)


def verify_signature(
    request: WebhookRequest, secret: bytes, *, allow_unsigned: bool, provider: str
) -> bool:
    """Raise ``SignatureError`` unless ``request`` is authentic by the one rule of
    :mod:`convo.providers.signing`: with a ``secret`` a valid ``X-Signature`` is required,
    without one ``allow_unsigned`` lets it in. True when it was signed. The secret never
    appears in the error."""
    return check_body_hmac(request, secret, allow_unsigned=allow_unsigned, provider=provider)


def parse_call_event(request: WebhookRequest, provider: str) -> CallEvent:
    """The :class:`CallEvent` in a voice webhook.

    ``line`` is our number (``to`` on inbound calls, ``from`` on outbound ones) and
    ``caller`` the contact's, both E.164 (a ``sip:`` URI is kept as it is). Raises
    ``MalformedWebhook`` naming the field that is missing or wrong.
    """
    form = _form_fields(request, provider)

    def required(key: str) -> str:
        value = form.get(key, "").strip()
        if not value:
            raise MalformedWebhook(f"{provider}: form field {key!r} is missing or empty")
        return value

    call_id = required("call_id")
    direction = required("direction")
    if direction not in _DIRECTIONS:
        raise MalformedWebhook(
            f"{provider}: form field 'direction' must be inbound or outbound, got {direction!r}"
        )
    raw_status = required("status")
    status = _STATUSES.get(raw_status)
    if status is None:
        raise MalformedWebhook(
            f"{provider}: form field 'status' must be one of {', '.join(_STATUSES)}, "
            f"got {raw_status!r}"
        )
    from_number = phone_or_sip(required("from"), "from", provider)
    to_number = phone_or_sip(required("to"), "to", provider)
    inbound = direction == "inbound"
    digits = form.get("digits", "").strip() or None
    if digits is not None and not set(digits) <= _DTMF:
        raise MalformedWebhook(f"{provider}: form field 'digits' has keys other than 0-9 * #")
    return CallEvent(
        provider=provider,
        call_id=call_id,
        line=to_number if inbound else from_number,
        caller=from_number if inbound else to_number,
        direction="inbound" if inbound else "outbound",
        status=status,
        digits=digits,
        speech=form.get("speech_result", "").strip() or None,
        confidence=_float(form, "confidence", provider, upper=1.0),
        recording_url=form.get("recording_url", "").strip() or None,
        recording_duration=_float(form, "recording_duration", provider),
        duration=_float(form, "duration", provider),
        dial_status=_dial_status(form, provider),
    )


def _dial_status(form: Mapping[str, str], provider: str) -> CallStatus | None:
    """``dial_status`` (assumed, like the other fields): the outcome of a Dial, posted to
    its action URL with the call status values (completed, busy, no-answer, failed)."""
    raw = form.get("dial_status", "").strip()
    if not raw:
        return None
    status = _STATUSES.get(raw)
    if status is None:
        raise MalformedWebhook(
            f"{provider}: form field 'dial_status' must be one of {', '.join(_STATUSES)}, "
            f"got {raw!r}"
        )
    return status


def _form_fields(request: WebhookRequest, name: str) -> Mapping[str, str]:
    if request.form:
        return request.form
    ctype = (request.content_type or request.header("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" not in ctype:
        raise MalformedWebhook(
            f"{name}: expected a form body (application/x-www-form-urlencoded), "
            f"got content type {ctype or 'none'!r}"
        )
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise MalformedWebhook(f"{name}: form body is not UTF-8") from None


# Every webhook of a call carries the same two numbers: parsing them once per process saves
# most of the parse cost (phonenumbers is the slowest part of reading a call event).
@functools.lru_cache(maxsize=4096)
def phone_or_sip(value: str, key: str, name: str) -> str:
    """E.164 for a phone number; a SIP URI (SIP trunking) is kept as it is."""
    if value.lower().startswith(("sip:", "sips:")):
        return value
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise MalformedWebhook(f"{name}: form field {key!r} is not an E.164 number: {value!r}")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _float(
    form: Mapping[str, str], key: str, name: str, upper: float | None = None
) -> float | None:
    raw = form.get(key, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise MalformedWebhook(f"{name}: form field {key!r} is not a number: {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (upper is not None and value > upper):
        bound = f"0..{upper}" if upper is not None else ">= 0"
        raise MalformedWebhook(f"{name}: form field {key!r} must be {bound}, got {raw!r}")
    return value
