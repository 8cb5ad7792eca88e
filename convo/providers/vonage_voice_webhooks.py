"""Vonage Voice API webhooks, as functions: the signed-JWT check and call-event parsing.

Signatures. With signed webhooks on, Vonage sends ``Authorization: Bearer <JWT>``, a JWT
signed HS256 with the account's signature secret, whose claims carry ``iat`` (when it was
issued), ``jti``, ``api_key``, ``application_id`` and ``payload_hash`` (hex SHA-256 of the
request body). :func:`verify_jwt` checks the signature, that ``iat`` is within ``window``
seconds of our clock (so a captured request cannot be replayed later), the body against
``payload_hash`` and, when given, the application id.

Events are POST JSON bodies (configure the application's answer and event URLs with
``POST``). Every one we read has ``uuid`` (the leg) and ``conversation_uuid``:

* answer: ``from``, ``to`` (and no direction: the answer URL convo hands out for its own
  calls says ``?direction=outbound``, so our line is ``from`` there, ``to`` otherwise);
* input (an ``input`` action's ``eventUrl``): ``from``, ``to``, ``dtmf.digits``,
  ``dtmf.timed_out``, ``speech.results[0].text`` and ``.confidence``;
* record (a ``record`` action's ``eventUrl``): ``recording_url``, ``start_time`` and
  ``end_time`` (the duration), but no numbers;
* event (``event_url`` and a synchronous ``connect``'s ``eventUrl``): ``from``, ``to``,
  ``status``, ``direction``, ``duration``.

A record event, and a connect's leg event (whose ``from``/``to`` are the dialled leg's),
are matched to their call by ``conversation_uuid``, through :class:`CallMemory`, filled by
the events of the call before (the answer at least). It is memory of this process: such an
event for a call answered by another process, or before a restart, is malformed (400).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from convo.exceptions import MalformedWebhook, SignatureError
from convo.models import CallEvent, CallStatus, WebhookRequest
from convo.providers._wire import json_body
from convo.providers.telefoon_voice_webhook import phone_or_sip

#: Vonage call ``status`` -> convo's. Statuses that say nothing of the call's end
#: (machine detection, transfers, a leg leaving a conversation) count as in progress.
STATUSES: dict[str, CallStatus] = {
    "started": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "answered": CallStatus.IN_PROGRESS,
    "machine": CallStatus.IN_PROGRESS,
    "human": CallStatus.IN_PROGRESS,
    "transfer": CallStatus.IN_PROGRESS,
    "disconnected": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "cancelled": CallStatus.CANCELED,
    "failed": CallStatus.FAILED,
    "rejected": CallStatus.FAILED,
    "timeout": CallStatus.NO_ANSWER,
    "unanswered": CallStatus.NO_ANSWER,
}
#: How many calls :class:`CallMemory` keeps (the oldest are forgotten first).
CALL_MEMORY = 100_000


def payload_hash(body: bytes) -> str:
    """Hex SHA-256 of a webhook body: the JWT's ``payload_hash`` claim."""
    return hashlib.sha256(body).hexdigest()


def bearer(request: WebhookRequest) -> str:
    """The token of an ``Authorization: Bearer`` header, or ``""``."""
    scheme, _, token = (request.header("Authorization") or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def verify_jwt(
    token: str,
    body: bytes,
    secret: str,
    *,
    provider: str,
    now: float,
    window: float,
    application_id: str = "",
) -> None:
    """Raise ``SignatureError`` unless ``token`` is a JWT of this webhook (module
    docstring). The secret never appears in the error."""
    try:
        with warnings.catch_warnings():
            # The secret's length is Vonage's choice (the dashboard's), not ours to warn of
            # on every webhook.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"require": ["iat"], "verify_iat": False},
            )
    except jwt.InvalidTokenError as exc:
        raise SignatureError(f"{provider}: webhook JWT is not valid ({exc})") from None
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or not math.isfinite(issued):
        raise SignatureError(f"{provider}: webhook JWT has no usable 'iat'")
    if abs(now - issued) > window:
        when = f"{now - issued:.0f}s ago" if issued < now else f"{issued - now:.0f}s ahead"
        raise SignatureError(
            f"{provider}: webhook JWT was issued {when}; more than {window:g}s either way "
            "is refused (a replay, or clocks apart)"
        )
    claimed = claims.get("payload_hash")
    if body and not (
        isinstance(claimed, str)
        and hmac.compare_digest(claimed.lower().encode(), payload_hash(body).encode())
    ):
        raise SignatureError(f"{provider}: webhook body does not match the JWT's payload_hash")
    app = claims.get("application_id")
    if application_id and app is not None and app != application_id:
        raise SignatureError(f"{provider}: webhook JWT is for another application")


@dataclass(frozen=True, slots=True)
class KnownCall:
    """What a conversation's first events said: our line, the contact, the direction."""

    call_id: str
    line: str
    caller: str
    direction: Literal["inbound", "outbound"]


class CallMemory:
    """``conversation_uuid`` -> :class:`KnownCall`, the last :data:`CALL_MEMORY` calls."""

    def __init__(self, size: int = CALL_MEMORY) -> None:
        self.size = size
        self._calls: dict[str, KnownCall] = {}

    def get(self, conversation: str) -> KnownCall | None:
        return self._calls.get(conversation)

    def remember(self, conversation: str, call: KnownCall) -> None:
        self._calls.setdefault(conversation, call)
        while len(self._calls) > self.size:
            del self._calls[next(iter(self._calls))]


def parse_event(
    request: WebhookRequest, provider: str, memory: CallMemory, *, answer: bool
) -> CallEvent:
    """The :class:`CallEvent` of an answer (``answer``) or any later webhook."""
    what = f"{provider}: call webhook"
    data = json_body(request, what)
    if not isinstance(data, dict):
        raise MalformedWebhook(f"{what}: body must be a JSON object")
    conversation = _text(data, "conversation_uuid", what)
    known = memory.get(conversation)
    if known is None:
        known = _call_of(data, request, what, answer=answer)
        memory.remember(conversation, known)
    raw_status = data.get("status")
    status = CallStatus.IN_PROGRESS
    if raw_status is not None:
        if not isinstance(raw_status, str) or raw_status not in STATUSES:
            raise MalformedWebhook(
                f"{what}: field 'status' must be one of {', '.join(STATUSES)}, "
                f"got {str(raw_status)[:40]!r}"
            )
        status = STATUSES[raw_status]
    dial = request.query.get("after") == "dial"
    # Only the call's own leg says how the call goes: a connect's leg (its events, the
    # dialled party busy or gone) says how the dial went, and must not end the call.
    own = data.get("uuid") == known.call_id
    digits, speech, confidence = _input(data, what)
    return CallEvent(
        provider=provider,
        call_id=known.call_id,
        line=known.line,
        caller=known.caller,
        direction=known.direction,
        status=status if own and not dial else CallStatus.IN_PROGRESS,
        dial_status=status if dial else None,
        digits=digits,
        speech=speech,
        confidence=confidence,
        recording_url=_recording_url(data, what),
        recording_duration=_recording_duration(data, what),
        duration=_number(data, "duration", what) if own and not dial else None,
    )


def _call_of(
    data: Mapping[str, Any], request: WebhookRequest, what: str, *, answer: bool
) -> KnownCall:
    if "recording_url" in data:
        raise MalformedWebhook(
            f"{what}: recording of a call this process does not know "
            "(answered by another process, or before a restart)"
        )
    if request.query.get("after") == "dial":
        raise MalformedWebhook(f"{what}: dial event of a call this process does not know")
    from_number = phone_or_sip(_plus(_text(data, "from", what)), "from", what)
    to_number = phone_or_sip(_plus(_text(data, "to", what)), "to", what)
    if answer:
        outbound = request.query.get("direction") == "outbound"
    else:
        direction = data.get("direction")
        if direction not in ("inbound", "outbound"):
            raise MalformedWebhook(f"{what}: field 'direction' must be inbound or outbound")
        outbound = direction == "outbound"
    return KnownCall(
        call_id=_text(data, "uuid", what),
        line=from_number if outbound else to_number,
        caller=to_number if outbound else from_number,
        direction="outbound" if outbound else "inbound",
    )


def _plus(number: str) -> str:
    """Vonage spells numbers without ``+``; SIP URIs are left alone."""
    return number if number.startswith(("+", "sip:", "sips:")) else "+" + number


def _text(data: Mapping[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedWebhook(f"{what}: field {key!r} is missing or not a string")
    return value.strip()


def _input(data: Mapping[str, Any], what: str) -> tuple[str | None, str | None, float | None]:
    digits: str | None = None
    dtmf = data.get("dtmf")
    if isinstance(dtmf, dict):
        raw = dtmf.get("digits")
        if isinstance(raw, str) and raw:
            if not set(raw) <= set("0123456789*#"):
                raise MalformedWebhook(f"{what}: field 'dtmf.digits' has keys other than 0-9 * #")
            digits = raw
    speech = data.get("speech")
    if isinstance(speech, dict):
        results = speech.get("results")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            best = results[0]
            text = best.get("text")
            if isinstance(text, str) and text.strip():
                return digits, text.strip(), _confidence(best.get("confidence"), what)
    return digits, None, None


def _confidence(value: object, what: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # Vonage sends a string or a number
    except (TypeError, ValueError):
        raise MalformedWebhook(f"{what}: speech confidence is not a number") from None
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise MalformedWebhook(f"{what}: speech confidence must be 0..1")
    return number


def _recording_url(data: Mapping[str, Any], what: str) -> str | None:
    url = data.get("recording_url")
    if url is None:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise MalformedWebhook(f"{what}: field 'recording_url' is not an http(s) URL")
    return url


def _recording_duration(data: Mapping[str, Any], what: str) -> float | None:
    start, end = data.get("start_time"), data.get("end_time")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        seconds = (_when(end) - _when(start)).total_seconds()
    except ValueError:
        raise MalformedWebhook(f"{what}: start_time/end_time are not ISO 8601 times") from None
    return max(0.0, seconds)


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _number(data: Mapping[str, Any], key: str, what: str) -> float | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedWebhook(f"{what}: field {key!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise MalformedWebhook(f"{what}: field {key!r} must be a number >= 0")
    return number
