"""Telefoon SMS adapter against its simulator on loopback: sending, error mapping,
records (get/list/delete) and signed webhooks delivered to a tiny recording app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.models import MessageStatus, OutboundMessage, WebhookRequest
from convo.providers.telefoon_sms import TelefoonSms
from convo.simulators.telefoon_sms import TelefoonSmsSimulator

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
PHONE = "+32470123456"
LINE = "+32470000100"


class Hooks:
    """A stand-in for convo's webhook routes: records each request as adapters see it."""

    def __init__(self) -> None:
        self.got: list[WebhookRequest] = []
        self.arrived = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/webhooks/{tail:.*}", self._record)
        self.base = ""

    async def _record(self, request: web.Request) -> web.Response:
        self.got.append(
            WebhookRequest(
                method=request.method,
                path=request.path,
                url=str(request.url),
                headers=dict(request.headers),
                query=dict(request.query),
                body=await request.read(),
                content_type=request.content_type,
            )
        )
        self.arrived.set()
        return web.json_response({"ok": True})


@pytest.fixture
async def hooks(aiohttp_server: ServerFactory) -> Hooks:
    recorder = Hooks()
    server = await aiohttp_server(recorder.app)
    recorder.base = str(server.make_url("")).rstrip("/")
    return recorder


@pytest.fixture
async def sim(aiohttp_server: ServerFactory, hooks: Hooks) -> AsyncIterator[Any]:
    simulator = TelefoonSmsSimulator(api_key="key-123", webhook_secret="whsec")
    server = await aiohttp_server(simulator.app)
    simulator.base_url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]  # the test pins its URL
    yield simulator
    await simulator.aclose()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Plain HTTP on loopback: verify=False only skips loading the CA bundle (slow).
    async with httpx.AsyncClient(timeout=5, verify=False) as http:
        yield http


def make(sim: Any, client: httpx.AsyncClient, hooks: Hooks, **extra: Any) -> TelefoonSms:
    options = {"api_key": "key-123", "webhook_secret": "whsec", "base_url": sim.base_url, **extra}
    return TelefoonSms.from_config("telefoon_sms", options, client, public_url=hooks.base)


async def test_send_posts_the_document_fields(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks, sender_id="AcmeDental")
    message = OutboundMessage(
        line=LINE, to="0470 12 34 56", text="Hallo", metadata={"gdpr_consent_ref": "C-42"}
    )
    result = await adapter.send(message)
    [sent] = sim.sent
    assert sent == {
        "to": PHONE,
        "from": LINE,
        "body": "Hallo",
        "sender_id": "AcmeDental",
        "gdpr_consent_ref": "C-42",
        "status_callback": f"{hooks.base}/webhooks/telefoon_sms/status",
    }
    assert result.provider_message_id in sim.messages
    assert (result.status, result.segments) == (MessageStatus.SENT, 1)
    assert (result.price, result.currency) == (0.075, "EUR")


async def test_long_text_counts_segments_and_price(sim: Any, client: Any, hooks: Hooks) -> None:
    result = await make(sim, client, hooks).send(OutboundMessage(LINE, PHONE, "x" * 161))
    assert (result.segments, result.price) == (2, 0.15)


async def test_alphanumeric_line_is_sent_as_from(sim: Any, client: Any, hooks: Hooks) -> None:
    await make(sim, client, hooks).send(OutboundMessage("Acme", PHONE, "Hoi"))
    assert sim.sent[0]["from"] == "Acme"


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage("Acme Dental Clinic", PHONE, "too long a sender name"),
        OutboundMessage(LINE, "12", "bad recipient"),
        OutboundMessage(LINE, PHONE, "mms", media_urls=("https://x/y.jpg",)),
    ],
)
async def test_local_refusals_send_nothing(
    sim: Any, client: Any, hooks: Hooks, message: OutboundMessage
) -> None:
    with pytest.raises(ProviderRejected):
        await make(sim, client, hooks).send(message)
    assert sim.sent == []


async def test_bad_api_key_is_rejected(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks, api_key="wrong")
    with pytest.raises(ProviderRejected) as err:
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    assert err.value.code == "401"
    assert "wrong" not in str(err.value)


async def test_throttle_and_outage_are_retryable(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks)
    sim.http_errors = [429, 500]
    with pytest.raises(RateLimited) as throttled:
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    assert throttled.value.retry_after == 1.0
    with pytest.raises(ProviderUnavailable):
        await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    assert (await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))).provider_message_id


async def test_simulator_validates_like_the_document(sim: Any, client: Any) -> None:
    headers = {"X-API-Key": "key-123"}
    answer = await client.post(f"{sim.base_url}/messages", json={"to": PHONE}, headers=headers)
    assert answer.status_code == 400 and "'from' is required" in answer.text
    answer = await client.post(
        f"{sim.base_url}/messages",
        json={"to": PHONE, "from": "A!cme", "body": "x"},
        headers=headers,
    )
    assert answer.status_code == 400
    answer = await client.get(f"{sim.base_url}/messages?page_size=101", headers=headers)
    assert answer.status_code == 400


async def test_get_list_and_delete_records(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks)
    first = await adapter.send(OutboundMessage(LINE, PHONE, "een"))
    await adapter.send(OutboundMessage(LINE, PHONE, "twee"))
    assert await sim.deliver_status(first.provider_message_id, "delivered") == 200

    report = await adapter.get_message(first.provider_message_id)
    assert report.status is MessageStatus.DELIVERED
    delivered = await adapter.list_messages(direction="outbound", status="delivered")
    assert [r.provider_message_id for r in delivered] == [first.provider_message_id]
    assert len(await adapter.list_messages(page=1, page_size=1)) == 1
    assert await adapter.list_messages(page=3, page_size=1) == []

    await adapter.delete_message(first.provider_message_id)
    await adapter.delete_message(first.provider_message_id)  # already erased: still fine
    with pytest.raises(ProviderRejected) as err:
        await adapter.get_message(first.provider_message_id)
    assert err.value.code == "404"


async def test_list_filters_are_checked_before_any_request(
    sim: Any, client: Any, hooks: Hooks
) -> None:
    adapter = make(sim, client, hooks)
    with pytest.raises(ValueError, match="no status 'receiving'"):
        await adapter.list_messages(status="receiving")
    with pytest.raises(ValueError, match="page_size"):
        await adapter.list_messages(page_size=101)
    with pytest.raises(ValueError, match="cannot filter on from"):
        await adapter.list_messages(**{"from": PHONE})


async def test_inbound_webhook_is_signed_and_parses(sim: Any, client: Any, hooks: Hooks) -> None:
    sim.webhook_base = hooks.base
    adapter = make(sim, client, hooks)
    assert await sim.deliver_inbound(PHONE, LINE, "Ja") == 200
    [request] = hooks.got
    assert request.path == "/webhooks/telefoon_sms/inbound"
    adapter.verify(request)
    [message] = adapter.parse_inbound(request)
    assert (message.sender, message.line, message.text) == (PHONE, LINE, "Ja")
    assert message.provider_message_id in sim.messages


async def test_status_callback_goes_to_the_url_we_gave(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks)
    result = await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    await sim.deliver_status(result.provider_message_id, "undelivered", error_code=30005)
    [request] = hooks.got
    assert request.path == "/webhooks/telefoon_sms/status"
    adapter.verify(request)
    [report] = adapter.parse_status(request)
    assert (report.provider_message_id, report.status) == (
        result.provider_message_id,
        MessageStatus.UNDELIVERED,
    )
    assert report.error_code == "30005"


async def test_auto_status_delivers_and_aclose_cancels(sim: Any, client: Any, hooks: Hooks) -> None:
    adapter = make(sim, client, hooks)
    sim.auto_status = True
    await adapter.send(OutboundMessage(LINE, PHONE, "Hoi"))
    await asyncio.wait_for(hooks.arrived.wait(), timeout=5)
    assert adapter.parse_status(hooks.got[0])[0].status is MessageStatus.DELIVERED

    sim.status_delay = 60.0
    await adapter.send(OutboundMessage(LINE, PHONE, "Nog eens"))
    await sim.aclose()
    assert len(hooks.got) == 1 and not sim._tasks


async def test_control_api_needs_no_api_key_and_signs_only_with_a_secret(
    sim: Any, client: Any, hooks: Hooks
) -> None:
    sim.webhook_base = hooks.base
    assert (await client.get(f"{sim.base_url}/messages")).status_code == 401
    listed = await client.get(f"{sim.base_url}/_simulator/sent")
    assert listed.status_code == 200 and listed.json() == {"messages": []}
    answer = await client.post(
        f"{sim.base_url}/_simulator/inbound", json={"from": PHONE, "to": LINE, "text": "JA"}
    )
    assert answer.json() == {"status": 200, "url": f"{hooks.base}/webhooks/telefoon_sms/inbound"}
    assert hooks.got[-1].header("X-Signature")
    sim.webhook_secret = ""  # convo configured with allow_unsigned: nothing to sign with
    await client.post(
        f"{sim.base_url}/_simulator/inbound", json={"from": PHONE, "to": LINE, "text": "NEE"}
    )
    assert hooks.got[-1].header("X-Signature") is None
    sim.webhook_base = None
    nowhere = await client.post(
        f"{sim.base_url}/_simulator/inbound", json={"from": PHONE, "to": LINE, "text": "x"}
    )
    assert nowhere.status_code == 409 and "webhook_base" in nowhere.json()["error"]
