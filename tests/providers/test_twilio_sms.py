"""Twilio Messaging: signatures checked against Twilio's own ``RequestValidator``, webhook
parsing, and sending through the simulator's Messages resource (errors mapped by code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp.test_utils import TestServer
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from convo.exceptions import (
    ConfigError,
    ContactOptedOut,
    MalformedWebhook,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    SignatureError,
)
from convo.models import MessageStatus, OutboundMessage, WebhookRequest
from convo.providers.twilio_sms import TwilioSms
from convo.simulators.twilio_sms import TwilioSmsSimulator
from convo.web.state import RUNTIME
from tests.e2e.sms_world import PHONE, Twilio, eventually, running_world

ACCOUNT = "AC" + "a" * 32
TOKEN = "twilio-auth-token"
URL = "https://bot.example.com/webhooks/twilio/inbound"
LINE = "+3225550120"


def adapter(client: httpx.AsyncClient | None = None, **options: Any) -> TwilioSms:
    base = {"account_sid": ACCOUNT, "auth_token": TOKEN}
    return TwilioSms.from_config(
        "twilio",
        base | options,
        client or httpx.AsyncClient(),
        public_url="https://bot.example.com",
    )


def form_request(
    fields: dict[str, str] | list[tuple[str, str]], *, url: str = URL, signature: str | None
) -> WebhookRequest:
    body = urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return WebhookRequest(
        method="POST",
        path="/webhooks/twilio/inbound",
        url=url,
        headers=headers,
        query={},
        body=body,
        content_type="application/x-www-form-urlencoded",
        form=dict(fields),
    )


INBOUND = {
    "MessageSid": "SM" + "1" * 32,
    "AccountSid": ACCOUNT,
    "From": PHONE,
    "To": LINE,
    "Body": "Hallo <b>&amp;",
    "NumMedia": "1",
    "MediaUrl0": "https://api.twilio.com/media/ME1",
}


def test_a_signature_made_by_twilios_validator_is_accepted() -> None:
    signed = RequestValidator(TOKEN).compute_signature(URL, INBOUND)
    assert adapter().verify(form_request(INBOUND, signature=signed)) is True


def test_repeated_form_fields_are_all_signed() -> None:
    pairs = [("To", LINE), ("MediaUrl", "https://b.example/2"), ("MediaUrl", "https://a.example/1")]
    validator = RequestValidator(TOKEN)
    signed = validator.compute_signature(URL, MultiDict(pairs))
    assert adapter().verify(form_request(pairs, signature=signed)) is True


def test_twilio_may_sign_the_url_with_or_without_the_default_port() -> None:
    with_port = URL.replace("bot.example.com", "bot.example.com:443")
    signed = RequestValidator(TOKEN).compute_signature(with_port, INBOUND)
    assert adapter().verify(form_request(INBOUND, signature=signed)) is True
    signed = RequestValidator(TOKEN).compute_signature(URL, INBOUND)
    assert adapter().verify(form_request(INBOUND, url=with_port, signature=signed)) is True


@pytest.mark.parametrize(
    "change",
    ["token", "url", "field", "missing"],
)
def test_a_wrong_or_missing_signature_is_refused(change: str) -> None:
    token = "another-token" if change == "token" else TOKEN
    url = URL + "?x=1" if change == "url" else URL
    signed = RequestValidator(token).compute_signature(url, INBOUND)
    fields = INBOUND | ({"Body": "forged"} if change == "field" else {})
    request = form_request(fields, signature=None if change == "missing" else signed)
    with pytest.raises(SignatureError, match=r"twilio: .*X-Twilio-Signature"):
        adapter().verify(request)


def test_without_an_auth_token_webhooks_need_allow_unsigned() -> None:
    keyed = {"auth_token": "", "api_key_sid": "SK1", "api_key_secret": "s"}
    with pytest.raises(ConfigError, match=r"\[providers.twilio\] auth_token"):
        adapter(**keyed)
    assert (
        adapter(**keyed, allow_unsigned=True).verify(form_request(INBOUND, signature=None)) is False
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"account_sid": "XX1"}, "account_sid: expected an account SID"),
        ({"api_key_sid": "SK1"}, "api_key_secret: missing"),
        ({"messaging_service_sid": "AC1"}, "messaging_service_sid: expected a Messaging"),
        ({"colour": "red"}, "colour: unknown option"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        adapter(**options)


def test_inbound_text_and_media() -> None:
    [message] = adapter().parse_inbound(form_request(INBOUND, signature=None))
    assert (message.line, message.sender) == (LINE, PHONE)
    assert message.text == "Hallo <b>&amp;"
    assert message.provider_message_id == INBOUND["MessageSid"]
    assert message.media_urls == ("https://api.twilio.com/media/ME1",)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"MessageSid": ""}, "MessageSid"), ({"From": "hello"}, "From"),
     ({"NumMedia": "2"}, "MediaUrl1"), ({"NumMedia": "99"}, "NumMedia"),
     ({"MediaUrl0": "file:///etc/passwd"}, "MediaUrl0")],
)  # fmt: skip
def test_malformed_inbound_names_the_field(change: dict[str, str], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=f"'{field}'"):
        adapter().parse_inbound(form_request(INBOUND | change, signature=None))


@pytest.mark.parametrize(
    ("twilio", "convo"),
    [("queued", MessageStatus.SENT), ("sent", MessageStatus.SENT),
     ("delivered", MessageStatus.DELIVERED), ("read", MessageStatus.DELIVERED),
     ("undelivered", MessageStatus.UNDELIVERED), ("failed", MessageStatus.FAILED)],
)  # fmt: skip
def test_status_callbacks(twilio: str, convo: MessageStatus) -> None:
    fields = {"MessageSid": "SM9", "MessageStatus": twilio, "ErrorCode": "30003"}
    [report] = adapter().parse_status(form_request(fields, signature=None))
    assert (report.provider_message_id, report.status, report.error_code) == ("SM9", convo, "30003")
    with pytest.raises(MalformedWebhook, match="'MessageStatus' must be one of"):
        adapter().parse_status(form_request(fields | {"MessageStatus": "lost"}, signature=None))


@pytest.fixture
async def sim() -> AsyncIterator[tuple[TwilioSmsSimulator, str]]:
    simulator = TwilioSmsSimulator(
        account_sid=ACCOUNT, auth_token=TOKEN, api_key_sid="SK" + "k" * 32, api_key_secret="ks"
    )
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield simulator, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def message(text: str = "Hi", to: str = PHONE) -> OutboundMessage:
    return OutboundMessage(line=LINE, to=to, text=text, media_urls=("https://cdn.example/a.png",))


async def test_send_with_an_api_key_and_a_status_callback(
    sim: tuple[TwilioSmsSimulator, str],
) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        twilio = adapter(
            client,
            base_url=url,
            api_key_sid="SK" + "k" * 32,
            api_key_secret="ks",
            auth_token="",
            allow_unsigned=True,
        )
        result = await twilio.send(message("ж" * 80))
    [sent] = simulator.sent
    assert result.provider_message_id == sent["sid"] and result.segments == 2
    assert result.status is MessageStatus.SENT
    assert (sent["from"], sent["to"], sent["body"]) == (LINE, PHONE, "ж" * 80)
    assert sent["media_url"] == ["https://cdn.example/a.png"]
    assert sent["status_callback"] == "https://bot.example.com/webhooks/twilio/status"


async def test_send_through_a_messaging_service(sim: tuple[TwilioSmsSimulator, str]) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        await adapter(client, base_url=url, messaging_service_sid="MG" + "1" * 32).send(message())
    [sent] = simulator.sent
    assert sent["messaging_service_sid"] == "MG" + "1" * 32 and sent["status"] == "accepted"


async def test_errors_are_mapped_by_twilio_code(sim: tuple[TwilioSmsSimulator, str]) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        twilio = adapter(client, base_url=url)
        with pytest.raises(ProviderRejected, match="21211") as bad:
            await twilio.send(message(to="+1"))
        assert bad.value.code == "21211" and not bad.value.retryable
        simulator.opted_out.add(PHONE)
        with pytest.raises(ContactOptedOut) as stop:
            await twilio.send(message())
        assert stop.value.code == "21610"
        simulator.fail_next(429, 20429)
        with pytest.raises(RateLimited) as slow:
            await twilio.send(message(to="+32470000002"))
        assert (slow.value.code, slow.value.retry_after) == ("20429", 1.0)
        simulator.fail_next(503, 20503)
        with pytest.raises(ProviderUnavailable):
            await twilio.send(message(to="+32470000002"))
        with pytest.raises(ProviderRejected, match="20003"):
            await adapter(client, base_url=url, auth_token="wrong").send(message())
    assert simulator.sent == []


async def test_delete_message(sim: tuple[TwilioSmsSimulator, str]) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        twilio = adapter(client, base_url=url)
        result = await twilio.send(message())
        await twilio.delete_message(result.provider_message_id)
        assert simulator.sent == []
        await twilio.delete_message(result.provider_message_id)  # gone already: fine


async def test_a_contact_opted_out_at_twilio_is_suppressed(tmp_path: Path) -> None:
    provider = Twilio()
    provider.sim.opted_out.add(PHONE)
    async with running_world(tmp_path, provider) as world:
        await provider.text_in("hello")

        async def failed() -> dict[str, Any] | None:
            out = [m for m in await world.messages() if m["direction"] == "outbound"]
            return out[0] if out and out[0]["status"] == "failed" else None

        reply = await eventually(failed, "the reply failed with 21610")
        assert "21610" in reply["error"]
        assert world.runner is not None
        store = world.runner.app[RUNTIME].store
        assert await store.is_suppressed(provider.line, PHONE)
        assert provider.sim.sent == []


async def test_the_inbound_webhook_is_answered_with_empty_twiml(tmp_path: Path) -> None:
    provider = Twilio()
    async with running_world(tmp_path, provider) as world:
        fields = {"MessageSid": "SM" + "2" * 32, "From": PHONE, "To": provider.line, "Body": "hi"}
        url = f"{world.url}/webhooks/twilio/inbound"
        headers = {"X-Twilio-Signature": RequestValidator("twt").compute_signature(url, fields)}
        async with httpx.AsyncClient() as client:
            response = await client.post(url, data=fields, headers=headers)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/xml")
        assert response.content.endswith(b"<Response/>")
