"""Telefonie SMS adapter: what differs from Telefoon: the ``receiving`` status,
inbound MMS media, no sender names, validity_period; parsing and signatures without I/O."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from convo.exceptions import ConfigError, MalformedWebhook, SignatureError
from convo.models import MessageStatus, WebhookRequest
from convo.providers._telefoon_common import sign
from convo.providers.telefonie_sms import TelefonieSms

SECRET = "whsec-telefonie"
OPTIONS = {"api_key": "key-456", "webhook_secret": SECRET}
INBOUND_MMS = {
    "id": "MM0001",
    "status": "received",
    "direction": "inbound",
    "from": "+447911123456",
    "to": "+32470000100",
    "body": "Foto van de schade",
    "num_segments": 1,
    "num_media": 2,
    "media_url": ["https://media.telefonie.com/a.jpg", "https://media.telefonie.com/b.jpg"],
    "date_created": "2026-11-28T10:00:00Z",
    "date_updated": "2026-11-28T10:00:00Z",
}


def webhook(payload: Any, *, secret: str = SECRET) -> WebhookRequest:
    body = json.dumps(payload).encode()
    return WebhookRequest(
        method="POST",
        path="/webhooks/telefonie_sms/inbound",
        url="https://bot.example.com/webhooks/telefonie_sms/inbound",
        headers={"X-Signature": sign(secret, body)},
        query={},
        body=body,
        content_type="application/json",
    )


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook parsing must not call {request.url}")


def offline() -> httpx.AsyncClient:
    """A client that fails the test on any request (and skips loading CA certificates)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(no_network))


@pytest.fixture
async def adapter() -> Any:
    async with offline() as client:
        yield TelefonieSms.from_config("telefonie_sms", OPTIONS, client)


def test_defaults(adapter: TelefonieSms) -> None:
    assert adapter.base_url == "https://api.telefonie.com/v1/sms"
    assert adapter.validity_period is None


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({**OPTIONS, "sender_id": "Acme"}, "sender_id: unknown option"),
        ({**OPTIONS, "validity_period": 0}, "validity_period: must be at least 1"),
        ({**OPTIONS, "validity_period": 3.5}, "validity_period: expected a whole number"),
    ],
)
async def test_config_errors(options: dict[str, Any], needle: str) -> None:
    async with offline() as client:
        with pytest.raises(ConfigError, match=needle):
            TelefonieSms.from_config("telefonie_sms", options, client)


def test_signature_checked(adapter: TelefonieSms) -> None:
    adapter.verify(webhook(INBOUND_MMS))
    with pytest.raises(SignatureError):
        adapter.verify(webhook(INBOUND_MMS, secret="telefoon's secret"))


def test_inbound_mms_carries_media(adapter: TelefonieSms) -> None:
    [message] = adapter.parse_inbound(webhook(INBOUND_MMS))
    assert message.media_urls == tuple(INBOUND_MMS["media_url"])
    assert (message.sender, message.text) == ("+447911123456", "Foto van de schade")


def test_inbound_mms_without_body(adapter: TelefonieSms) -> None:
    payload = {k: v for k, v in INBOUND_MMS.items() if k != "body"}
    [message] = adapter.parse_inbound(webhook(payload))
    assert message.text == "" and len(message.media_urls) == 2


def test_receiving_is_not_yet_a_message(adapter: TelefonieSms) -> None:
    assert adapter.parse_inbound(webhook({**INBOUND_MMS, "status": "receiving"})) == []


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({k: v for k, v in INBOUND_MMS.items() if k != "media_url"}, "'media_url' is missing"),
        ({**INBOUND_MMS, "media_url": "https://x/a.jpg"}, "array of URLs"),
        ({**INBOUND_MMS, "media_url": ["file:///etc/passwd"]}, "non-http(s) URL"),
        ({**INBOUND_MMS, "num_media": "two"}, "'num_media'"),
        ({**INBOUND_MMS, "status": "queued"}, "inbound messages are 'received'"),
    ],
)
def test_malformed_mms(adapter: TelefonieSms, payload: dict[str, Any], needle: str) -> None:
    with pytest.raises(MalformedWebhook) as err:
        adapter.parse_inbound(webhook(payload))
    assert needle in str(err.value)


def test_status_without_price_unit_has_no_currency(adapter: TelefonieSms) -> None:
    payload = {
        "id": "MM0002",
        "status": "sent",
        "direction": "outbound",
        "from": "+32470000100",
        "to": "+447911123456",
        "price": "0.0400",
    }
    [report] = adapter.parse_status(webhook(payload))
    assert report.status is MessageStatus.SENT
    assert (report.price, report.currency) == (0.04, None)


def test_receiving_is_no_outbound_status(adapter: TelefonieSms) -> None:
    payload = {**INBOUND_MMS, "direction": "outbound", "status": "receiving"}
    with pytest.raises(MalformedWebhook, match="not an outbound status"):
        adapter.parse_status(webhook(payload))
