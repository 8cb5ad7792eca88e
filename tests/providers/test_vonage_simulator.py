"""The Vonage adapter talking to the Vonage simulator over loopback HTTP, and the
simulator calling a tiny recording webhook app the way Vonage calls convo."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import (
    ConfigError,
    PartialDelivery,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from convo.models import MessageStatus, OutboundMessage, WebhookRequest
from convo.providers.vonage import VonageSms
from convo.simulators.vonage import VonageSimulator

LINE = "+32470000100"
ALICE = "+32470123456"
PUBLIC = "https://bot.example.com"


@dataclass
class Recorder:
    """A stand-in for convo's webhook routes: keeps each request as a WebhookRequest."""

    requests: list[WebhookRequest] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    answer: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            WebhookRequest(
                method=request.method,
                path=request.path,
                url=PUBLIC + request.path_qs,
                headers=dict(request.headers),
                query=dict(request.query),
                body=body,
                content_type=request.content_type if body else "",
            )
        )
        self.arrived.set()
        return web.json_response({}, status=self.answer)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/webhooks/vonage/{kind}", rec.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield rec, str(server.make_url("")).rstrip("/")


async def start(sim: VonageSimulator) -> TestServer:
    server = TestServer(sim.app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def pair(
    http: httpx.AsyncClient, sim_options: dict[str, Any], adapter_options: dict[str, Any]
) -> AsyncIterator[tuple[VonageSimulator, VonageSms]]:
    sim = VonageSimulator(**sim_options)
    server = await start(sim)
    options = {"api_key": "test-key", "api_secret": "test-secret", "allow_unsigned": True}
    options |= {"base_url": str(server.make_url("")).rstrip("/")} | adapter_options
    options = {k: v for k, v in options.items() if v is not None}
    try:
        yield sim, VonageSms.from_config("vonage", options, http, public_url=PUBLIC)
    finally:
        await server.close()


@pytest.fixture
async def keyed(http: httpx.AsyncClient) -> AsyncIterator[tuple[VonageSimulator, VonageSms]]:
    async for both in pair(http, {}, {}):
        yield both


def text(body: str) -> OutboundMessage:
    return OutboundMessage(line=LINE, to=ALICE, text=body)


async def test_send_gsm_text(keyed: tuple[VonageSimulator, VonageSms]) -> None:
    sim, sms = keyed
    message = text("Hallo, antwoord JA of NEE.")
    result = await sms.send(message)
    assert (result.segments, result.currency) == (1, "EUR")
    assert result.price == pytest.approx(0.0333)
    [sent] = sim.sent
    assert result.provider_message_id == sent["message-ids"][0]
    assert sent["from"] == "32470000100" and sent["to"] == "32470123456"
    assert sent["type"] == "text"
    assert sent["client-ref"] == message.id
    assert sent["status-report-req"] == "1"
    assert sent["callback"] == f"{PUBLIC}/webhooks/vonage/status"
    assert "sig" not in sent


async def test_send_ucs2_and_long_texts(keyed: tuple[VonageSimulator, VonageSms]) -> None:
    sim, sms = keyed
    assert (await sms.send(text("Vous êtes prêt?"))).segments == 1
    assert sim.sent[-1]["type"] == "unicode"
    long = await sms.send(text("a" * 161))
    assert long.segments == 2
    assert long.price == pytest.approx(2 * 0.0333)
    assert sim.sent[-1]["type"] == "text"


async def test_signed_sending(http: httpx.AsyncClient) -> None:
    sim_opts = {"signature_secret": "s1gn", "signature_method": "sha256"}
    adapter_opts = {"api_secret": None, "signature_secret": "s1gn", "signature_method": "sha256"}
    async for sim, sms in pair(http, sim_opts, adapter_opts):
        await sms.send(text("signed"))
        [sent] = sim.sent
        assert "api_secret" not in sent
        assert len(sent["sig"]) == 64 and sent["timestamp"].isdigit()


async def test_wrong_signature_secret_is_rejected(http: httpx.AsyncClient) -> None:
    adapter_opts = {"api_secret": None, "signature_secret": "wrong"}
    async for sim, sms in pair(http, {"signature_secret": "right"}, adapter_opts):
        with pytest.raises(ProviderRejected) as info:
            await sms.send(text("x"))
        assert info.value.code == "14"
        assert sim.sent == []


async def test_bad_key_is_rejected(http: httpx.AsyncClient) -> None:
    async for sim, sms in pair(http, {"api_key": "other-ke"}, {}):
        with pytest.raises(ProviderRejected, match="invalid credentials") as info:
            await sms.send(text("x"))
        assert info.value.code == "4"
        assert "test-secret" not in str(info.value)
        assert sim.sent == []


async def test_invalid_sender_is_rejected(keyed: tuple[VonageSimulator, VonageSms]) -> None:
    _, sms = keyed
    with pytest.raises(ProviderRejected, match="invalid sender") as info:
        await sms.send(OutboundMessage(line="Way Too Long Name", to=ALICE, text="x"))
    assert info.value.code == "15"


async def test_throttled_then_ok(keyed: tuple[VonageSimulator, VonageSms]) -> None:
    sim, sms = keyed
    sim.throttle_next = 1
    with pytest.raises(RateLimited) as info:
        await sms.send(text("x"))
    assert info.value.retryable and info.value.code == "1"
    assert (await sms.send(text("x"))).segments == 1


@pytest.mark.parametrize(("status", "error"), [(429, RateLimited), (500, ProviderUnavailable)])
async def test_http_errors(
    keyed: tuple[VonageSimulator, VonageSms], status: int, error: type[Exception]
) -> None:
    sim, sms = keyed
    sim.http_errors = [status]
    with pytest.raises(error):
        await sms.send(text("x"))
    assert sim.sent == []


async def test_some_parts_failing_is_a_partial_delivery(
    keyed: tuple[VonageSimulator, VonageSms],
) -> None:
    sim, sms = keyed
    sim.part_errors = {2: "9"}
    with pytest.raises(PartialDelivery, match="1 of 2 parts"):
        await sms.send(text("b" * 200))


async def test_unreachable_provider(http: httpx.AsyncClient) -> None:
    options = {"api_key": "k", "api_secret": "s", "allow_unsigned": True,
               "base_url": "http://127.0.0.1:9"}  # fmt: skip
    sms = VonageSms.from_config("vonage", options, http)
    with pytest.raises(ProviderUnavailable):
        await sms.send(text("x"))


@pytest.mark.parametrize("method", ["POST", "GET", "JSON"])
async def test_deliver_inbound_concat_parts_out_of_order(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient, method: Any
) -> None:
    rec, base = recorder
    sim = VonageSimulator(signature_secret="hook-secret", webhook_base=base)
    words = "Dit is een lang bericht dat in drie delen aankomt. " * 8
    status = await sim.deliver_inbound(ALICE, LINE, words, order=[3, 1, 2], method=method)
    assert status == 200
    options = {"api_key": "test-key", "api_secret": "x", "signature_secret": "hook-secret"}
    sms = VonageSms.from_config("vonage", options, http)
    messages = []
    for request in rec.requests:
        sms.verify(request)
        messages += sms.parse_inbound(request)
    parts = [m.part for m in messages if m.part is not None]
    assert [p.index for p in parts] == [3, 1, 2]
    assert len({p.ref for p in parts}) == 1 and {p.total for p in parts} == {3}
    assert {(m.sender, m.line) for m in messages} == {(ALICE, LINE)}
    by_index = {p.index: m.text for p, m in zip(parts, messages, strict=True)}
    assert "".join(by_index[i] for i in (1, 2, 3)) == words


async def test_deliver_inbound_reports_convo_status(recorder: tuple[Recorder, str]) -> None:
    rec, base = recorder
    rec.answer = 401
    sim = VonageSimulator(webhook_base=base)
    assert await sim.deliver_inbound(ALICE, LINE, "JA", parts=2) == 401
    assert len(rec.requests) == 2
    assert "sig" not in rec.requests[0].form and "sig" not in rec.requests[0].body.decode()


async def test_auto_status_receipt_reaches_the_webhook(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient
) -> None:
    rec, base = recorder
    async for sim, sms in pair(http, {"webhook_base": base, "auto_status": True}, {}):
        message = text("ping")
        result = await sms.send(message)
        await asyncio.wait_for(rec.arrived.wait(), timeout=5)
        [report] = sms.parse_status(rec.requests[0])
        assert report.status is MessageStatus.DELIVERED
        assert report.client_ref == message.id
        assert report.provider_message_id == result.provider_message_id
        assert rec.requests[0].path == "/webhooks/vonage/status"
        await sim.aclose()


async def test_deliver_status_failed_and_unknown_id(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient
) -> None:
    rec, base = recorder
    async for sim, sms in pair(http, {"webhook_base": base}, {}):
        result = await sms.send(text("x"))
        assert await sim.deliver_status(result.provider_message_id, "expired") == 200
        [report] = sms.parse_status(rec.requests[0])
        assert (report.status, report.error_code) == (MessageStatus.UNDELIVERED, "1")
        with pytest.raises(KeyError):
            await sim.deliver_status("nope")


async def test_metadata_passthrough_and_media(keyed: tuple[VonageSimulator, VonageSms]) -> None:
    sim, sms = keyed
    message = OutboundMessage(
        line="AcmeDental", to=ALICE, text="x", metadata={"ttl": "900000", "colour": "red"}
    )
    await sms.send(message)
    assert sim.sent[-1]["ttl"] == "900000" and "colour" not in sim.sent[-1]
    assert sim.sent[-1]["from"] == "AcmeDental"
    with pytest.raises(ProviderRejected, match="media"):
        await sms.send(OutboundMessage(line=LINE, to=ALICE, text="x", media_urls=("http://m",)))
    with pytest.raises(ProviderRejected, match=r"E\.164"):
        await sms.send(OutboundMessage(line=LINE, to="0470 12 34 56", text="x"))


async def test_control_route_delivers_inbound(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient
) -> None:
    rec, base = recorder
    sim = VonageSimulator(webhook_base=base)
    server = await start(sim)
    try:
        url = str(server.make_url("/_simulator/inbound"))
        answer = await http.post(url, json={"from": ALICE, "to": LINE, "text": "JA"})
        assert answer.json()["status"] == 200
        assert rec.requests[0].path == "/webhooks/vonage/inbound"
        assert (await http.post(url, json={"from": ALICE})).status_code == 400
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("line", "to", "field"),
    [(LINE, "+99912345678", "to"), (LINE, "+3212345", "to"), (LINE, "3212345", "to"),
     (LINE, "+324701234567890", "to"), ("+99912345678", ALICE, "from")],
)  # fmt: skip
async def test_impossible_number_is_rejected_before_any_request(
    http: httpx.AsyncClient, line: str, to: str, field: str
) -> None:
    # Nothing listens on port 9: a request would be ProviderUnavailable, not a rejection.
    options = {"api_key": "k", "api_secret": "s", "allow_unsigned": True,
               "base_url": "http://127.0.0.1:9"}  # fmt: skip
    sms = VonageSms.from_config("vonage", options, http)
    with pytest.raises(ProviderRejected, match=f"{field} .*cannot be a phone number") as info:
        await sms.send(OutboundMessage(line=line, to=to, text="x"))
    assert not info.value.retryable and info.value.provider == "vonage"


async def test_possible_numbers_and_sender_ids_are_sent(
    keyed: tuple[VonageSimulator, VonageSms],
) -> None:
    sim, sms = keyed
    await sms.send(OutboundMessage(line="AcmeDental", to="+447700900123", text="x"))
    await sms.send(OutboundMessage(line="+447700900000", to="32470123456", text="x"))
    assert [(s["from"], s["to"]) for s in sim.sent] == [
        ("AcmeDental", "447700900123"),
        ("447700900000", "32470123456"),
    ]


async def test_every_part_receipt_names_the_message(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient
) -> None:
    """One receipt per part, each a ``per_part`` report; one without ``client-ref`` (for a
    part this adapter sent) still names our message."""
    rec, base = recorder
    async for sim, sms in pair(http, {"webhook_base": base}, {}):
        message = text("c" * 400)
        result = await sms.send(message)
        parts = sim.sent[0]["message-ids"]
        assert result.segments == len(parts) == 3
        assert result.provider_message_id == parts[0]
        assert result.price == pytest.approx(3 * 0.0333)
        for part in parts:
            assert await sim.deliver_status(part) == 200
        reports = [r for request in rec.requests for r in sms.parse_status(request)]
        assert [r.provider_message_id for r in reports] == parts
        assert {r.client_ref for r in reports} == {message.id}
        assert all(r.per_part for r in reports)
        body = json.loads(rec.requests[1].body)
        del body["client-ref"]
        bare = dataclasses.replace(rec.requests[1], body=json.dumps(body).encode())
        [report] = sms.parse_status(bare)
        assert (report.client_ref, report.provider_message_id) == (message.id, parts[1])
        unknown = dataclasses.replace(
            rec.requests[1], body=json.dumps(body | {"messageId": "NOT-OURS"}).encode()
        )
        assert sms.parse_status(unknown)[0].client_ref is None


async def test_basic_auth_sends_no_credentials_in_the_form(http: httpx.AsyncClient) -> None:
    async for sim, sms in pair(http, {}, {"basic_auth": True}):
        await sms.send(text("over basic auth"))
        # The fake refuses credentials given both ways: the form carried none.
        assert sim.auth_used == ["basic"]
        assert sim.sent[-1]["api_key"] == "test-key"  # read from the Authorization header
    async for sim, sms in pair(http, {"api_secret": "other-secret"}, {"basic_auth": True}):
        with pytest.raises(ProviderRejected, match="invalid credentials"):
            await sms.send(text("x"))
        assert sim.sent == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"basic_auth": True, "api_secret": None, "signature_secret": "s"}, "needs api_secret"),
        ({"basic_auth": True, "sign_requests": True, "signature_secret": "s"}, "sign_requests"),
        ({"validity_period": 19}, "validity_period"),
        ({"validity_period": 604_801}, "at most 604800 seconds"),
    ],
)
async def test_bad_vonage_options_are_refused_at_start(
    http: httpx.AsyncClient, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        async for _ in pair(http, {}, options):
            pass


async def test_validity_period_dlt_ids_and_account_ref(http: httpx.AsyncClient) -> None:
    options = {
        "validity_period": 1800,
        "entity_id": "1101456324675322134",
        "content_id": "1107457532145798767",
        "account_ref": "customer1234",
    }
    async for sim, sms in pair(http, {}, options):
        await sms.send(text("x"))
        sent = sim.sent[-1]
        assert sent["ttl"] == "1800000"
        assert (sent["entity-id"], sent["content-id"]) == (
            options["entity_id"],
            options["content_id"],
        )
        assert sent["account-ref"] == "customer1234"
        # A conversation's params win: its own validity period and DLT template.
        meta = {"validity_period": "60", "content_id": "1107000000000000001"}
        await sms.send(OutboundMessage(line=LINE, to=ALICE, text="y", metadata=meta))
        sent = sim.sent[-1]
        assert (sent["ttl"], sent["content-id"]) == ("60000", "1107000000000000001")
        assert sent["entity-id"] == options["entity_id"]
        for bad in ("19", "604801", "soon"):
            with pytest.raises(ProviderRejected, match="validity_period"):
                await sms.send(OutboundMessage(LINE, ALICE, "z", metadata={"validity_period": bad}))
        assert len(sim.sent) == 2


async def test_simulator_checks_ttl_as_the_document_bounds_it(
    keyed: tuple[VonageSimulator, VonageSms],
) -> None:
    sim, sms = keyed
    for ttl in ("19999", "604800001", "soon"):
        with pytest.raises(ProviderRejected, match="ttl") as info:
            await sms.send(OutboundMessage(LINE, ALICE, "x", metadata={"ttl": ttl}))
        assert info.value.code == "3"
    await sms.send(OutboundMessage(LINE, ALICE, "x", metadata={"ttl": "20000"}))
    assert sim.sent[-1]["ttl"] == "20000"
