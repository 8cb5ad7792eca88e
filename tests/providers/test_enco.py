"""Enco adapter without I/O: config, callback-token checks, delivery-info parsing, wire
helpers (Enco's shapes: the deliveryinfos answer, OneAPI errors, datetimes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from convo.exceptions import ConfigError, MalformedWebhook, SignatureError
from convo.models import MessageStatus, WebhookRequest
from convo.providers._enco_wire import (
    delivery_entries,
    delivery_id,
    inbound_message,
    oneapi_error,
    window,
)
from convo.providers.enco import EncoSms

OPTIONS = {"client_id": "app-1", "client_secret": "s3cret", "address": "8888"}
PUBLIC = "https://bot.example.com"
# The document's deliveryinfos example answer.
DELIVERY_INFO = {
    "resourceURL": "https://api.enco.io/sms/1.0.0/sms/outboundmessages/deliveryinfos/"
    "ff595443-0000-0000-9b83-d9acd74fa67c",
    "deliveryInfo": [{"address": "tel:+32000000000", "deliveryStatus": "DeliveredToTerminal"}],
}


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"callback parsing must not call {request.url}")


def offline() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(no_network))


def callback(adapter: EncoSms, for_ref: str, payload: Any, **query: str) -> WebhookRequest:
    """A callback request as Enco would make it to our ``callbackURL`` for ``for_ref``;
    ``query`` overrides its parameters (to forge or strip them)."""
    url = adapter.callback_url(for_ref)
    params = dict(parse_qsl(urlsplit(url).query)) | query
    return WebhookRequest(
        method="POST",
        path="/webhooks/enco/status",
        url=url,
        headers={"Content-Type": "application/json"},
        query=params,
        body=json.dumps(payload).encode(),
        content_type="application/json",
    )


@pytest.fixture
async def adapter() -> Any:
    async with offline() as client:
        yield EncoSms.from_config("enco", OPTIONS, client, public_url=PUBLIC)


def test_defaults(adapter: EncoSms) -> None:
    assert adapter.base_url == "https://api.enco.io/sms/1.0.0"
    assert (adapter.poll_interval, adapter.line, adapter.shared) == (5.0, "8888", False)
    assert adapter.delivery_callbacks is True
    assert "s3cret" not in repr(adapter)


@pytest.mark.parametrize(
    ("options", "public_url", "needle"),
    [
        ({**OPTIONS, "shared": True}, PUBLIC, "address: give a dedicated address"),
        ({"client_id": "a", "client_secret": "b"}, PUBLIC, "address: give a dedicated"),
        ({"client_id": "a", "address": "8888"}, PUBLIC, "client_secret: missing"),
        ({**OPTIONS, "delivery_callbacks": True}, "", "delivery_callbacks: needs server"),
        ({**OPTIONS, "poll_interval": 0}, PUBLIC, "poll_interval: must be greater than 0"),
        ({**OPTIONS, "keyword": "DENT"}, PUBLIC, "keyword: unknown option"),
    ],
)
async def test_config_errors(options: dict[str, Any], public_url: str, needle: str) -> None:
    async with offline() as client:
        with pytest.raises(ConfigError) as err:
            EncoSms.from_config("enco", options, client, public_url=public_url)
    assert needle in str(err.value) and "s3cret" not in str(err.value)


async def test_shared_mode_and_polled_deliveries_without_public_url() -> None:
    options = {"client_id": "a", "client_secret": "b", "shared": True}
    async with offline() as client:
        adapter = EncoSms.from_config("enco", options, client)
    assert (adapter.shared, adapter.line, adapter.delivery_callbacks) == (True, "8937", False)


def test_callback_url_is_built_from_public_url(adapter: EncoSms) -> None:
    url = urlsplit(adapter.callback_url("msg-1"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PUBLIC}/webhooks/enco/status"
    query = dict(parse_qsl(url.query))
    assert query["ref"] == "msg-1" and len(query["token"]) == 64
    assert "s3cret" not in adapter.callback_url("msg-1")


def test_verify_accepts_the_token_of_its_ref(adapter: EncoSms) -> None:
    adapter.verify(callback(adapter, "msg-1", DELIVERY_INFO))


@pytest.mark.parametrize(
    "query",
    [{"token": "0" * 64}, {"ref": "msg-2"}, {"token": ""}],
    ids=["forged token", "token of another message", "no token"],
)
def test_verify_refuses(adapter: EncoSms, query: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        adapter.verify(callback(adapter, "msg-1", DELIVERY_INFO, **query))


async def test_token_depends_on_the_secret() -> None:
    async with offline() as client:
        other = EncoSms.from_config(
            "enco", {**OPTIONS, "callback_secret": "another"}, client, public_url=PUBLIC
        )
        mine = EncoSms.from_config("enco", OPTIONS, client, public_url=PUBLIC)
    with pytest.raises(SignatureError):
        mine.verify(callback(other, "msg-1", DELIVERY_INFO))


async def test_unsigned_callbacks_are_refused_even_with_allow_unsigned() -> None:
    # Enco always has a key to check callbacks with (callback_secret, or one derived from
    # client_secret), so by the one rule allow_unsigned changes nothing.
    bare = WebhookRequest(method="POST", path="/", url="/", headers={}, query={})
    async with offline() as client:
        lenient = EncoSms.from_config("enco", {**OPTIONS, "allow_unsigned": True}, client)
        strict = EncoSms.from_config("enco", OPTIONS, client, public_url=PUBLIC)
    for adapter in (lenient, strict):
        with pytest.raises(SignatureError, match="lacks its ref and token"):
            adapter.verify(bare)


def test_parse_status_document_shape(adapter: EncoSms) -> None:
    [report] = adapter.parse_status(callback(adapter, "msg-1", DELIVERY_INFO))
    assert report.provider_message_id == "ff595443-0000-0000-9b83-d9acd74fa67c"
    assert (report.status, report.client_ref) == (MessageStatus.DELIVERED, "msg-1")


def test_parse_status_oneapi_notification(adapter: EncoSms) -> None:
    note = {
        "deliveryInfoNotification": {
            "callbackData": "x",
            "deliveryInfo": {"address": "tel:+32470123456", "deliveryStatus": "DeliveryImpossible"},
        }
    }
    [report] = adapter.parse_status(callback(adapter, "msg-9", note))
    assert (report.provider_message_id, report.client_ref) == ("", "msg-9")
    assert report.status is MessageStatus.UNDELIVERED


@pytest.mark.parametrize(
    ("payload", "query", "needle"),
    [
        ({"resourceURL": "x"}, {}, "'deliveryInfo'"),
        ({"deliveryInfo": [{"address": "x", "deliveryStatus": "Lost"}],
          "resourceURL": DELIVERY_INFO["resourceURL"]}, {}, "unknown deliveryStatus 'Lost'"),
        ({"deliveryInfo": DELIVERY_INFO["deliveryInfo"]}, {"ref": ""}, "which message"),
    ],
)  # fmt: skip
def test_malformed_status(
    adapter: EncoSms, payload: dict[str, Any], query: dict[str, str], needle: str
) -> None:
    with pytest.raises(MalformedWebhook) as err:
        adapter.parse_status(callback(adapter, "msg-1", payload, **query))
    assert needle in str(err.value)


def test_status_needs_json(adapter: EncoSms) -> None:
    request = WebhookRequest(
        method="POST", path="/", url="/", headers={}, query={}, body=b"a=b",
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    with pytest.raises(MalformedWebhook, match="Content-Type"):
        adapter.parse_status(request)


def test_there_is_no_inbound_webhook(adapter: EncoSms) -> None:
    with pytest.raises(MalformedWebhook, match="polled"):
        adapter.parse_inbound(callback(adapter, "x", {}))


def test_inbound_ids_are_stable_and_distinct(adapter: EncoSms) -> None:
    item = {
        "senderAddress": "tel:+32470123456",
        "message": "Ja",
        "numberOfParts": 1,
        "timeReceived": "2016-12-28T16:51:40.727+01:00",
    }

    def read(entry: dict[str, Any]) -> Any:
        return inbound_message(entry, line=adapter.line, provider=adapter.name)

    first, again = read(item), read(dict(item))
    later = read({**item, "timeReceived": "2016-12-28T16:51:41.000+01:00"})
    assert first.provider_message_id == again.provider_message_id != later.provider_message_id
    assert (first.sender, first.line, first.text) == ("+32470123456", "8888", "Ja")
    assert first.received_at == datetime(2016, 12, 28, 15, 51, 40, 727000, UTC).timestamp()


def test_wire_helpers() -> None:
    assert delivery_id(DELIVERY_INFO) == "ff595443-0000-0000-9b83-d9acd74fa67c"
    assert delivery_id({"resourceURL": "https://x/elsewhere"}) == ""
    assert delivery_entries(DELIVERY_INFO) == [("+32000000000", "DeliveredToTerminal")]
    start, end = window(datetime(2016, 12, 28, 23, 0, tzinfo=UTC), timedelta(days=1))
    assert (start, end) == ("2016-12-27T23:00:00.000Z", "2016-12-28T23:01:00.000Z")
    body = {
        "requestError": {
            "serviceException": {
                "messageId": "SVC0002",
                "text": "Invalid input value for message part %1",
                "variables": ["destinations"],
            }
        }
    }
    answer = httpx.Response(400, json=body)
    assert oneapi_error(answer) == ("SVC0002", "Invalid input value for message part destinations")
    assert oneapi_error(httpx.Response(403, text="nope")) == ("403", "nope")
    # A provider's odd error body is still an error code, never a crash of the send.
    odd = {"requestError": {"policyException": {"messageId": "POL3003", "text": "max %1",
                                                "variables": 5}}}  # fmt: skip
    assert oneapi_error(httpx.Response(400, json=odd)) == ("POL3003", "max 5")
