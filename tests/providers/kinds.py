"""Every provider kind as the provider tests need it: its smallest valid section, a section
with a webhook secret and one without, and a webhook request signed as that provider signs.

A kind added to the registry without an entry here fails the contract suite
(``tests/providers/test_contract.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from twilio.request_validator import RequestValidator

from convo.providers.callbacks import webhook_path
from convo.providers.vonage_webhooks import signature
from tests.providers.keys import RSA_PEM

#: The smallest valid section of every kind.
MINIMAL: dict[str, dict[str, Any]] = {
    "sandbox": {},
    "vonage": {"api_key": "k", "api_secret": "s", "signature_secret": "x"},
    "telefoon_sms": {"api_key": "k", "webhook_secret": "w"},
    "telefonie_sms": {"api_key": "k", "webhook_secret": "w"},
    "enco": {"client_id": "c", "client_secret": "s", "address": "8888"},
    "telefoon_voice": {"api_key": "k", "webhook_secret": "w"},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "t"},
    "twilio_voice": {"account_sid": "AC" + "0" * 32, "auth_token": "t"},
    "vonage_voice": {"application_id": "app", "private_key": RSA_PEM, "signature_secret": "x"},
    "sandbox_voice": {},
}

SECRET = "the-secret-of-at-least-32-bytes-long"  # HS256 keys: 32 bytes or more
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CLOSED = "http://127.0.0.1:9"  # nothing listens: no request leaves the machine


@dataclass(frozen=True)
class Kind:
    """How to configure one kind with a secret, and without one (None: it always has one)."""

    with_secret: dict[str, Any]
    without_secret: dict[str, Any] | None
    signing: str  # "body" (X-Signature), "vonage" (sig field), "enco" (URL token),
    # "twilio" (X-Twilio-Signature over URL and form) or "jwt" (Authorization: Bearer)


TELEFOON = {"api_key": "k", "base_url": CLOSED}
TWILIO = {"account_sid": "AC" + "0" * 32, "base_url": CLOSED}
TWILIO_KEY = {**TWILIO, "api_key_sid": "SK1", "api_key_secret": "ks"}  # sends, cannot verify
VONAGE_VOICE = {"application_id": "app", "private_key": RSA_PEM, "base_url": CLOSED}
#: How to configure each kind with a secret, and without one.
KINDS: dict[str, Kind] = {
    "sandbox": Kind({"webhook_secret": SECRET}, {}, "body"),
    "vonage": Kind(
        {
            "api_key": "k",
            "api_secret": "s",
            "signature_secret": SECRET,
            "sign_requests": False,
            "base_url": CLOSED,
        },
        {"api_key": "k", "api_secret": "s", "base_url": CLOSED},
        "vonage",
    ),
    "telefoon_sms": Kind({**TELEFOON, "webhook_secret": SECRET}, TELEFOON, "body"),
    "telefonie_sms": Kind({**TELEFOON, "webhook_secret": SECRET}, TELEFOON, "body"),
    # The key of Enco's callback tokens is callback_secret, else derived from client_secret:
    # there is always one.
    "enco": Kind(
        {
            "client_id": "c",
            "client_secret": "cs",
            "shared": True,
            "callback_secret": SECRET,
            "base_url": CLOSED,
            "token_url": CLOSED,
            "poll_interval": 3600,
        },
        None,
        "enco",
    ),
    "telefoon_voice": Kind({**TELEFOON, "webhook_secret": SECRET}, TELEFOON, "body"),
    "twilio": Kind({**TWILIO, "auth_token": SECRET}, TWILIO_KEY, "twilio"),
    "twilio_voice": Kind({**TWILIO, "auth_token": SECRET}, TWILIO_KEY, "twilio"),
    "vonage_voice": Kind({**VONAGE_VOICE, "signature_secret": SECRET}, VONAGE_VOICE, "jwt"),
    "sandbox_voice": Kind({"webhook_secret": SECRET}, {}, "body"),
}


def request_for(kind: str, route: str, *, signed: bool) -> tuple[str, dict[str, Any]]:
    """The path (with query) and the aiohttp request arguments of one webhook."""
    path = webhook_path(kind, route)
    how = KINDS[kind].signing
    if how == "vonage":
        fields = {"msisdn": "32470000001", "to": "32460000101", "text": "hi",
                  "messageId": "v1", "timestamp": str(int(time.time()))}  # fmt: skip
        if signed:
            fields["sig"] = signature(fields, SECRET, "md5hash")
        return f"{path}?{urlencode(fields)}", {}
    if how == "enco":
        query = {"ref": "msg-1"}
        if signed:
            query["token"] = hmac.new(SECRET.encode(), b"msg-1", hashlib.sha256).hexdigest()
        return f"{path}?{urlencode(query)}", {"json": {"deliveryInfo": []}}
    if how == "twilio":
        fields = {"MessageSid": "SM1", "CallSid": "CA1", "From": "+32470000001"}
        headers = {"Content-Type": FORM}
        if signed:  # over the URL as Twilio calls it: the default public_url + path
            headers["X-Twilio-Signature"] = RequestValidator(SECRET).compute_signature(
                "http://127.0.0.1:8080" + path, fields
            )
        return path, {"data": urlencode(fields).encode(), "headers": headers}
    if how == "jwt":
        body = json.dumps({"uuid": "u1", "conversation_uuid": "c1"}).encode()
        headers = {"Content-Type": JSON}
        if signed:
            claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}
            headers["Authorization"] = "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")
        return path, {"data": body, "headers": headers}
    body, ctype = (b"call_id=c1&from=%2B32470000001", FORM) if "voice" in route else (b"{}", JSON)
    headers = {"Content-Type": ctype}
    if signed:
        headers["X-Signature"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return path, {"data": body, "headers": headers}
