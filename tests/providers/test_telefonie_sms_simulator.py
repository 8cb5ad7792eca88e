"""Telefonie SMS adapter against its simulator on loopback: MMS, validity_period, the
from/to list filters, error mapping and signed inbound MMS webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.models import MessageStatus, OutboundMessage, WebhookRequest
from convo.providers.telefonie_sms import TelefonieSms
from convo.simulators.telefonie_sms import TelefonieSmsSimulator

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
PHONE = "+32470123456"
OTHER = "+32471999888"
LINE = "+32470000100"
PHOTO = "https://cdn.example.com/p.jpg"


@pytest.fixture
async def hooks(aiohttp_server: ServerFactory) -> tuple[str, list[WebhookRequest]]:
    got: list[WebhookRequest] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        got.append(
            WebhookRequest(
                method=request.method,
                path=request.path,
                url=str(request.url),
                headers=dict(request.headers),
                query=dict(request.query),
                body=body,
                content_type=request.content_type,
            )
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/webhooks/{tail:.*}", record)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), got


@pytest.fixture
async def setup(
    aiohttp_server: ServerFactory, hooks: tuple[str, list[WebhookRequest]]
) -> AsyncIterator[tuple[TelefonieSmsSimulator, TelefonieSms]]:
    sim = TelefonieSmsSimulator(api_key="key-456", webhook_secret="whsec", webhook_base=hooks[0])
    server = await aiohttp_server(sim.app)
    options = {
        "api_key": "key-456",
        "webhook_secret": "whsec",
        "base_url": str(server.make_url("")),
        "validity_period": 3600,
    }
    # Plain HTTP on loopback: verify=False only skips loading the CA bundle (slow).
    async with httpx.AsyncClient(timeout=5, verify=False) as client:
        yield sim, TelefonieSms.from_config("telefonie_sms", options, client, public_url=hooks[0])
    await sim.aclose()


async def test_mms_send_carries_media_and_validity(setup: Any) -> None:
    sim, adapter = setup
    result = await adapter.send(OutboundMessage(LINE, PHONE, "Kijk", media_urls=(PHOTO,)))
    [sent] = sim.sent
    assert sent["media_url"] == [PHOTO] and sent["body"] == "Kijk"
    assert sent["validity_period"] == 3600
    assert "gdpr_consent_ref" not in sent and "sender_id" not in sent
    assert sim.messages[result.provider_message_id]["num_media"] == 1
    assert result.currency == "EUR"  # the simulator states its price_unit


async def test_media_only_message_and_per_message_validity(setup: Any) -> None:
    sim, adapter = setup
    message = OutboundMessage(
        LINE, PHONE, "", media_urls=(PHOTO,), metadata={"validity_period": "600"}
    )
    await adapter.send(message)
    assert "body" not in sim.sent[0] and sim.sent[0]["validity_period"] == 600


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage("AcmeDental", PHONE, "names are Telefoon's, not ours"),
        OutboundMessage(LINE, PHONE, ""),
        OutboundMessage(LINE, PHONE, "x", metadata={"validity_period": "soon"}),
    ],
)
async def test_local_refusals(setup: Any, message: OutboundMessage) -> None:
    sim, adapter = setup
    with pytest.raises(ProviderRejected):
        await adapter.send(message)
    assert sim.sent == []


async def test_error_mapping(setup: Any) -> None:
    sim, adapter = setup
    sim.http_errors = [429, 503]
    with pytest.raises(RateLimited):
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    with pytest.raises(ProviderUnavailable):
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    sim.api_key = "rotated"
    with pytest.raises(ProviderRejected):
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))


async def test_list_filters_from_and_to(setup: Any) -> None:
    sim, adapter = setup
    await adapter.send(OutboundMessage(LINE, PHONE, "een"))
    await adapter.send(OutboundMessage(LINE, OTHER, "twee"))
    await sim.deliver_inbound(OTHER, LINE, "terug")
    to_other = await adapter.list_messages(recipient=OTHER)
    from_other = await adapter.list_messages(sender=OTHER)
    assert len(to_other) == 1 and to_other[0].status is MessageStatus.SENT
    assert len(from_other) == 1 and from_other[0].status is MessageStatus.RECEIVED
    assert len(await adapter.list_messages(status="receiving")) == 0


async def test_inbound_mms_round_trip(setup: Any, hooks: Any) -> None:
    sim, adapter = setup
    assert await sim.deliver_inbound(PHONE, LINE, "Schade", media_urls=[PHOTO]) == 200
    [request] = hooks[1]
    adapter.verify(request)
    [message] = adapter.parse_inbound(request)
    assert message.media_urls == (PHOTO,) and message.text == "Schade"


async def test_status_round_trip(setup: Any, hooks: Any) -> None:
    sim, adapter = setup
    result = await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    await sim.deliver_status(result.provider_message_id, "failed", error_code=21610)
    [request] = hooks[1]
    adapter.verify(request)
    [report] = adapter.parse_status(request)
    assert report.status is MessageStatus.FAILED and report.error_code == "21610"
