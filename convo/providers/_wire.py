"""Small wire-format helpers the provider adapters share.

Each turns one foreign value into a neutral one, or raises the error the caller's seam
expects: ``InvalidNumber`` for numbers, ``MalformedWebhook`` for webhook bodies (naming the
provider and the field), ``ValueError`` for prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convo.exceptions import MalformedWebhook, ProviderError
from convo.models import WebhookRequest
from convo.providers.http import ProviderAnswer
from convo.providers.payload import decode_json, price
from convo.sms.phone import normalize
from convo.sms.segments import analyze


def e164(number: str) -> str:
    """``number`` in E.164; raises ``InvalidNumber`` when it cannot be a phone number."""
    return normalize(number)


def sms_parts(text: str) -> int:
    """How many SMS parts ``text`` takes (GSM-7 or UCS-2, whichever it needs); at least 1."""
    return max(1, analyze(text).parts)


def parse_price(value: object) -> float | None:
    """A ``price`` string ("0.0750") as float; None when absent; ``ValueError`` if junk
    (not a number, or not a finite one of 0 or more: :func:`convo.providers.payload.price`)."""
    return price(value)


def json_body(request: WebhookRequest, name: str) -> object:
    """The webhook's JSON body (:func:`convo.providers.payload.decode_json`);
    ``MalformedWebhook`` on another content type or bad JSON."""
    ctype = (request.content_type or request.header("Content-Type") or "").split(";")[0]
    ctype = ctype.strip().lower()
    if ctype != "application/json":
        raise MalformedWebhook(
            f"{name}: expected Content-Type application/json, got {ctype or 'none'}"
        )
    return decode_json(request.body, name)  # strings storable; too deep is malformed


def media_urls(value: object, field: str, name: str) -> tuple[str, ...]:
    """A list of http(s) URL strings, or ``MalformedWebhook`` naming ``field``."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise MalformedWebhook(f"{name}: field {field!r} must be an array of URLs")
    urls = tuple(value)
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise MalformedWebhook(f"{name}: field {field!r} holds a non-http(s) URL")
    return urls


def answered_id(
    response: ProviderAnswer, field: str, *, provider: str, what: str
) -> tuple[str, dict[str, Any]]:
    """The non-empty string ``field`` of a 2xx answer's JSON object (the id the provider
    gave the message or call), with the object. An answer we cannot read is a
    ``ProviderError`` naming ``what`` was asked, never retried: the request may have taken
    effect (a message on its way, a call ringing)."""
    try:
        body = response.json()
        if not isinstance(body, dict):
            raise TypeError("the answer is not an object")
        value = body[field]
        if not isinstance(value, str) or not value:
            raise TypeError(f"{field} is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(
            f"{provider}: unreadable answer to {what} ({exc}): {response.text[:200]!r}",
            provider=provider,
            code=str(response.status_code),
        ) from None
    return value, body
