"""The one rule for webhook signatures, for every webhook of every provider.

* With a secret configured, every webhook must be signed and the signature must match:
  a missing or wrong one is a :class:`~convo.exceptions.SignatureError` (401, nothing
  changed). ``allow_unsigned`` does not weaken this: once there is a secret to check
  with, an unsigned request is as suspect as a badly signed one.
* Without a secret, ``allow_unsigned = true`` lets webhooks in unchecked (there is nothing
  to check them with); without it every webhook is refused. Adapters refuse that last
  configuration at start already, except the sandbox, which is unsigned by design.

Adapters differ only in where the signature travels and what it covers (a header over the
raw body, a ``sig`` field over the other fields, a token in the callback URL); each asks
:func:`must_check` first and compares only when told to. :func:`check_body_hmac` is the
whole check for the common ``X-Signature: hex(HMAC-SHA256(secret, raw body))`` shape.

Both return whether the request was *signed* (True) or let in unsigned (False): the web
layer keeps a malformed signed body whole, an unsigned one only in part.
"""

from __future__ import annotations

import hashlib
import hmac

from convo.exceptions import SignatureError
from convo.models import WebhookRequest

#: The header the Telefoon-shaped APIs and the sandbox sign the raw body in.
SIGNATURE_HEADER = "X-Signature"


def must_check(
    provider: str,
    *,
    has_secret: bool,
    allow_unsigned: bool,
    signed: bool,
    unsigned: str = "webhook is not signed",
) -> bool:
    """True when the caller must now compare the signature the request carries (a secret
    is configured and the request is signed); False when it is let in unsigned (no secret,
    ``allow_unsigned``). ``SignatureError`` when it must be refused: unsigned although a
    secret is configured (the message is ``unsigned``, saying what was missing), or no
    secret and no ``allow_unsigned``."""
    if has_secret:
        if not signed:
            raise SignatureError(f"{provider}: {unsigned}")
        return True
    if allow_unsigned:
        return False
    raise SignatureError(f"{provider}: no webhook secret is configured and allow_unsigned is off")


def body_signature(secret: str | bytes, body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, body))``: what a genuine ``X-Signature`` carries."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def check_body_hmac(
    request: WebhookRequest,
    secret: str | bytes,
    *,
    allow_unsigned: bool,
    provider: str,
    header: str = SIGNATURE_HEADER,
) -> bool:
    """Apply the rule to a body signed in ``header`` (hex, any case, compared in constant
    time); True when it was signed and matched. The secret never appears in an error."""
    given = request.header(header) or ""  # an empty header signs nothing
    if not must_check(
        provider,
        has_secret=bool(secret),
        allow_unsigned=allow_unsigned,
        signed=bool(given),
        unsigned=f"webhook has no {header} header",
    ):
        return False
    expected = body_signature(secret, request.body).encode("ascii")
    if not hmac.compare_digest(given.strip().lower().encode("utf-8", "replace"), expected):
        raise SignatureError(f"{provider}: {header} does not match the body")
    return True
