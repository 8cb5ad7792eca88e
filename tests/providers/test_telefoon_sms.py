"""Telefoon SMS adapter: config checks, X-Signature checks and Message parsing, without I/O.

Payloads follow the document's ``Message`` schema; bodies are signed the way
convo assumes Telefoon signs them: ``X-Signature: hex(HMAC-SHA256(webhook_secret, raw body))``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from convo.exceptions import ConfigError, MalformedWebhook, SignatureError
from convo.models import MessageStatus, WebhookRequest
from convo.providers._telefoon_common import sign
from convo.providers.telefoon_sms import TelefoonSms

SECRET = "whsec-telefoon"
OPTIONS = {"api_key": "key-123", "webhook_secret": SECRET}

INBOUND = {
    "id": "SM0001",
    "status": "received",
    "direction": "inbound",
    "from": "+32470123456",
    "to": "+32470000100",
    "body": "Ja, graag",
    "num_segments": 1,
    "date_created": "2026-11-28T10:00:00Z",
}
STATUS = {
    "id": "SM0002",
    "status": "delivered",
    "direction": "outbound",
    "from": "AcmeDental",
    "to": "+32470123456",
    "body": "Uw afspraak is bevestigd.",
    "num_segments": 1,
    "price": "0.0750",
    "price_unit": "EUR",
    "date_created": "2026-11-28T10:00:00Z",
    "date_sent": "2026-11-28T10:00:01Z",
}


def webhook(
    payload: Any, *, secret: str = SECRET, content_type: str = "application/json", raw: bytes = b""
) -> WebhookRequest:
    body = raw or json.dumps(payload).encode()
    return WebhookRequest(
        method="POST",
        path="/webhooks/telefoon_sms/inbound",
        url="https://bot.example.com/webhooks/telefoon_sms/inbound",
        headers={"X-Signature": sign(secret, body), "Content-Type": content_type},
        query={},
        body=body,
        content_type=content_type,
    )


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook parsing must not call {request.url}")


def offline() -> httpx.AsyncClient:
    """A client that fails the test on any request (and skips loading CA certificates)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(no_network))


@pytest.fixture
async def adapter() -> Any:
    async with offline() as client:
        yield TelefoonSms.from_config("telefoon_sms", OPTIONS, client, public_url="https://b.x")


# -- configuration ------------------------------------------------------------------------


async def test_config_defaults_and_repr_hides_secrets(adapter: TelefoonSms) -> None:
    assert adapter.base_url == "https://api.telefoon.com/v1/sms"
    assert adapter.rate_limit == 10.0
    assert "key-123" not in repr(adapter) and SECRET not in repr(adapter)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"webhook_secret": SECRET}, "[providers.t] api_key: missing"),
        ({**OPTIONS, "colour": "blue"}, "[providers.t] colour: unknown option"),
        ({"api_key": "k"}, "[providers.t] webhook_secret: missing"),
        ({**OPTIONS, "sender_id": "TwelveCharsX"}, "[providers.t] sender_id"),
        ({**OPTIONS, "sender_id": "Acme-Dental"}, "[providers.t] sender_id"),
        ({**OPTIONS, "rate_limit": "fast"}, "[providers.t] rate_limit: expected a number"),
        ({**OPTIONS, "allow_unsigned": "yes"}, "[providers.t] allow_unsigned: expected true"),
        ({**OPTIONS, "base_url": "ftp://x"}, "[providers.t] base_url"),
    ],
)
async def test_config_errors_name_section_and_key(options: dict[str, Any], needle: str) -> None:
    async with offline() as client:
        with pytest.raises(ConfigError) as err:
            TelefoonSms.from_config("t", options, client)
    assert needle in str(err.value)
    assert "key-123" not in str(err.value)


async def test_sender_id_accepted_when_alphanumeric() -> None:
    async with offline() as client:
        adapter = TelefoonSms.from_config("t", {**OPTIONS, "sender_id": "Acme Dental"}, client)
    assert adapter.sender_id == "Acme Dental"


# -- signatures ---------------------------------------------------------------------------


def test_valid_signature_passes(adapter: TelefoonSms) -> None:
    adapter.verify(webhook(INBOUND))


def test_signature_in_upper_case_hex_passes(adapter: TelefoonSms) -> None:
    request = webhook(INBOUND)
    upper = WebhookRequest(
        method="POST",
        path=request.path,
        url=request.url,
        headers={"x-signature": request.headers["X-Signature"].upper()},
        query={},
        body=request.body,
    )
    adapter.verify(upper)


def test_tampered_body_is_refused(adapter: TelefoonSms) -> None:
    request = webhook(INBOUND)
    forged = WebhookRequest(
        method="POST",
        path=request.path,
        url=request.url,
        headers=request.headers,
        query={},
        body=request.body.replace(b"Ja, graag", b"Nee"),
        content_type="application/json",
    )
    with pytest.raises(SignatureError, match="does not match"):
        adapter.verify(forged)


def test_wrong_secret_is_refused(adapter: TelefoonSms) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(webhook(INBOUND, secret="not-the-secret"))


def test_missing_signature_is_refused(adapter: TelefoonSms) -> None:
    request = WebhookRequest(method="POST", path="/", url="/", headers={}, query={}, body=b"{}")
    with pytest.raises(SignatureError, match="no X-Signature"):
        adapter.verify(request)


async def test_unsigned_allowed_only_when_configured_without_secret() -> None:
    async with offline() as client:
        adapter = TelefoonSms.from_config("t", {"api_key": "k", "allow_unsigned": True}, client)
    adapter.verify(WebhookRequest(method="POST", path="/", url="/", headers={}, query={}))


# -- parsing ------------------------------------------------------------------------------


def test_parse_inbound_message(adapter: TelefoonSms) -> None:
    [msg] = adapter.parse_inbound(webhook({**INBOUND, "from": "+32 470 12 34 56"}))
    assert (msg.sender, msg.line, msg.text) == ("+32470123456", "+32470000100", "Ja, graag")
    assert (msg.provider, msg.provider_message_id) == ("telefoon_sms", "SM0001")
    assert msg.media_urls == ()


def test_parse_inbound_without_body_is_empty_text(adapter: TelefoonSms) -> None:
    payload = {k: v for k, v in INBOUND.items() if k != "body"}
    assert adapter.parse_inbound(webhook(payload))[0].text == ""


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (webhook(INBOUND, content_type="application/x-www-form-urlencoded"), "Content-Type"),
        (webhook(None, raw=b'{"id": "SM1",'), "not valid JSON"),
        (webhook([INBOUND]), "JSON object"),
        (webhook({k: v for k, v in INBOUND.items() if k != "from"}), "'from' is missing"),
        (webhook({**INBOUND, "id": 7}), "'id' is not a non-empty string"),
        (webhook({**INBOUND, "status": "receiving"}), "'status' is 'receiving'"),
        (webhook({**INBOUND, "direction": "sideways"}), "'direction'"),
        (webhook({**INBOUND, "direction": "outbound", "status": "sent"}), "/status"),
        (webhook({**INBOUND, "from": "not a number"}), "field 'from'"),
        (webhook({**INBOUND, "body": 12}), "'body' must be a string"),
    ],
)
def test_malformed_inbound_says_what(
    adapter: TelefoonSms, request_: WebhookRequest, needle: str
) -> None:
    with pytest.raises(MalformedWebhook) as err:
        adapter.parse_inbound(request_)
    assert needle in str(err.value)


def test_parse_status_delivered_with_price(adapter: TelefoonSms) -> None:
    [report] = adapter.parse_status(webhook(STATUS))
    assert report.status is MessageStatus.DELIVERED
    assert report.provider_message_id == "SM0002"
    assert (report.price, report.currency) == (0.075, "EUR")
    assert report.error_code is None


def test_parse_status_failed_keeps_error(adapter: TelefoonSms) -> None:
    payload = {**STATUS, "status": "failed", "error_code": 30003, "error_message": "Unreachable"}
    payload.pop("price_unit")
    [report] = adapter.parse_status(webhook(payload))
    assert report.status is MessageStatus.FAILED
    assert (report.error_code, report.error_text) == ("30003", "Unreachable")
    assert report.currency == "EUR"  # the document's default price unit


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({**STATUS, "direction": "inbound"}, "'direction'"),
        ({**STATUS, "status": "received"}, "not an outbound status"),
        ({**STATUS, "price": "cheap"}, "'price'"),
    ],
)
def test_malformed_status(adapter: TelefoonSms, payload: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedWebhook) as err:
        adapter.parse_status(webhook(payload))
    assert needle in str(err.value)
