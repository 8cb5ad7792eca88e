"""Enco adapter against its simulator on loopback: OAuth token caching and renewal on 401,
sending (dedicated and shared), error mapping, polled inbound with new-only, polled and
called-back delivery infos, dedicated-address check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ConfigError, ProviderRejected, ProviderUnavailable, RateLimited
from convo.models import MessageStatus, OutboundMessage, WebhookRequest
from convo.providers.enco import EncoSms
from convo.simulators.enco import EncoSimulator

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
PHONE = "+32470123456"


class Env:
    """One simulator on loopback, a recorder standing in for convo's webhook routes, and a
    factory for adapters pointed at them."""

    def __init__(self, sim: EncoSimulator, api: str, hooks: str, client: httpx.AsyncClient):
        self.sim, self.client = sim, client
        self.api, self.hooks = api.rstrip("/"), hooks.rstrip("/")
        self.got: list[WebhookRequest] = []

    def adapter(self, *, public_url: str | None = None, **extra: Any) -> EncoSms:
        options = {
            "client_id": "test-client",
            "client_secret": "test-secret",
            "base_url": self.api,
            "token_url": f"{self.api}/token",
            "address": "8888",
            **extra,
        }
        url = self.hooks if public_url is None else public_url
        return EncoSms.from_config("enco", options, self.client, public_url=url)


@pytest.fixture
async def env(aiohttp_server: ServerFactory) -> AsyncIterator[Env]:
    sim = EncoSimulator(dedicated_addresses=("8888", "666"))
    api = await aiohttp_server(sim.app)
    got: list[WebhookRequest] = []

    async def record(request: web.Request) -> web.Response:
        got.append(
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
        return web.json_response({})

    recorder = web.Application()
    recorder.router.add_post("/webhooks/{tail:.*}", record)
    hooks = await aiohttp_server(recorder)
    # Plain HTTP on loopback: verify=False only skips loading the CA bundle (slow).
    async with httpx.AsyncClient(timeout=5, verify=False) as client:
        state = Env(sim, str(api.make_url("")), str(hooks.make_url("")), client)
        state.got = got
        yield state
    await sim.aclose()


async def test_send_from_dedicated_address(env: Env) -> None:
    adapter = env.adapter()
    message = OutboundMessage("8888", "0470 12 34 56", "Hallo\nwereld")
    result = await adapter.send(message)
    [sent] = env.sim.sent
    assert sent["origin"] == "8888" and sent["destinations"] == [PHONE]
    assert sent["message"] == "Hallo\nwereld"
    callback = urlsplit(sent["callbackURL"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == (
        f"{env.hooks}/webhooks/enco/status"
    )
    assert dict(parse_qsl(callback.query))["ref"] == message.id
    assert result.provider_message_id == sent["id"]
    assert (result.status, result.segments, result.price) == (MessageStatus.SENT, 1, None)


async def test_send_from_shared_code(env: Env) -> None:
    adapter = env.adapter(address="", shared=True)
    await adapter.send(OutboundMessage("8937", PHONE, "Hoi"))
    assert env.sim.sent[0]["origin"] == "8937"


async def test_token_is_cached_then_renewed_once_on_401(env: Env) -> None:
    adapter = env.adapter()
    await adapter.send(OutboundMessage("8888", PHONE, "een"))
    await adapter.send(OutboundMessage("8888", PHONE, "twee"))
    assert env.sim.tokens_issued == 1
    env.sim.expire_tokens()
    await adapter.send(OutboundMessage("8888", PHONE, "drie"))
    assert env.sim.tokens_issued == 2 and len(env.sim.sent) == 3


async def test_bad_client_secret_is_rejected_without_leaking_it(env: Env) -> None:
    adapter = env.adapter(client_secret="not-it")
    with pytest.raises(ProviderRejected) as err:
        await adapter.send(OutboundMessage("8888", PHONE, "Hoi"))
    assert "client_id and client_secret" in str(err.value) and "not-it" not in str(err.value)
    assert env.sim.sent == []


async def test_error_mapping(env: Env) -> None:
    adapter = env.adapter()
    env.sim.http_errors = [429, 500]
    with pytest.raises(RateLimited) as throttled:
        await adapter.send(OutboundMessage("8888", PHONE, "Hoi"))
    assert throttled.value.retry_after == 1.0
    with pytest.raises(ProviderUnavailable):
        await adapter.send(OutboundMessage("8888", PHONE, "Hoi"))
    wrong = env.adapter(address="9999")
    with pytest.raises(ProviderRejected) as refused:
        await wrong.send(OutboundMessage("9999", PHONE, "Hoi"))
    assert refused.value.code == "SVC0004" and "9999" in str(refused.value)


async def test_force_character_limit(env: Env) -> None:
    adapter = env.adapter(force_character_limit=True)
    await adapter.send(OutboundMessage("8888", PHONE, "kort"))
    with pytest.raises(ProviderRejected, match="2 parts"):
        await adapter.send(OutboundMessage("8888", PHONE, "x" * 161))
    assert len(env.sim.sent) == 1
    # The simulator enforces the flag too, the way the document describes it.
    grant = {"grant_type": "client_credentials"}
    issued = await env.client.post(
        f"{env.api}/token", data=grant, auth=("test-client", "test-secret")
    )
    token = issued.json()["access_token"]
    answer = await env.client.post(
        f"{env.api}/sms/outboundmessages/8888?forceCharacterLimit=true",
        json={"message": "x" * 161, "destinations": [PHONE]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400 and "SVC0280" in answer.text


async def test_poll_inbound_new_only_and_stable_ids(env: Env) -> None:
    adapter = env.adapter()
    env.sim.queue_inbound(PHONE, "8888", "Ja")
    env.sim.queue_inbound("+32471999888", "8888", "Nee")
    env.sim.queue_inbound(PHONE, "666", "for another address")
    first = await adapter.poll_inbound()
    assert [(m.sender, m.line, m.text) for m in first] == [
        (PHONE, "8888", "Ja"),
        ("+32471999888", "8888", "Nee"),
    ]
    assert await adapter.poll_inbound() == []  # new-only: handed out once
    env.sim.inbound[0]["retrieved"] = False  # as if our poll's answer had been lost
    [again] = await adapter.poll_inbound()
    assert again.provider_message_id == first[0].provider_message_id


async def test_poll_inbound_shared(env: Env) -> None:
    adapter = env.adapter(address="", shared=True)
    env.sim.queue_inbound(PHONE, "8937", "STOP")
    [message] = await adapter.poll_inbound()
    assert (message.line, message.text) == ("8937", "STOP")


async def test_poll_status_when_no_callbacks(env: Env) -> None:
    adapter = env.adapter(public_url="")
    message = OutboundMessage("8888", PHONE, "Hoi")
    result = await adapter.send(message)
    assert "callbackURL" not in env.sim.sent[0]
    assert await adapter.poll_status() == []  # nothing changed yet
    assert await env.sim.deliver_status(result.provider_message_id) is None
    [report] = await adapter.poll_status()
    assert (report.provider_message_id, report.client_ref) == (
        result.provider_message_id,
        message.id,
    )
    assert report.status is MessageStatus.DELIVERED
    assert await adapter.poll_status() == []  # final: no longer tracked


async def test_callback_round_trip(env: Env) -> None:
    adapter = env.adapter()
    message = OutboundMessage("8888", PHONE, "Hoi")
    result = await adapter.send(message)
    assert await env.sim.deliver_status(result.provider_message_id, "DeliveryImpossible") == 200
    [request] = env.got
    adapter.verify(request)
    [report] = adapter.parse_status(request)
    assert (report.client_ref, report.provider_message_id) == (
        message.id,
        result.provider_message_id,
    )
    assert report.status is MessageStatus.UNDELIVERED
    assert await adapter.poll_status() == []  # callbacks bring statuses: nothing polled


async def test_dedicated_addresses_checked(env: Env) -> None:
    assert await env.adapter().check_dedicated_addresses() == ["8888", "666"]
    with pytest.raises(ConfigError, match=r"\[providers.enco\] address: '9999'"):
        await env.adapter(address="9999").check_dedicated_addresses()


async def test_message_length(env: Env) -> None:
    length = await env.adapter().message_length("Hello world test message")
    assert length == {
        "numberOfChars": 24,
        "charLimitPerPart": 160,
        "numberOfParts": 1,
        "numberOfRemainingCharsInPart": 136,
    }


EURO_TEXT = "x" * 155 + "€€€"  # 161 septets for convo (2 parts), 158 characters for some


async def test_enco_counts_a_text_convo_may_count_differently(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.sim.single_septet_extensions = True  # this network counts € as one character
    adapter = env.adapter(force_character_limit=True)
    caplog.set_level("INFO", logger="convo.providers.enco")
    result = await adapter.send(OutboundMessage("8888", PHONE, EURO_TEXT))
    assert env.sim.length_requests == [EURO_TEXT]
    assert result.segments == 1 and env.sim.sent[-1]["message"] == EURO_TEXT
    assert "Enco counts 1 part(s) where convo counts 2" in caplog.text

    plain = await adapter.send(OutboundMessage("8888", PHONE, "x" * 160))
    assert plain.segments == 1 and env.sim.length_requests == [EURO_TEXT]  # not asked
    with pytest.raises(ProviderRejected, match="2 parts"):  # Enco would agree: not asked
        await adapter.send(OutboundMessage("8888", PHONE, "x" * 161))
    assert env.sim.length_requests == [EURO_TEXT]


async def test_enco_that_cannot_count_leaves_convos_count(env: Env) -> None:
    env.sim.single_septet_extensions = True
    adapter = env.adapter()
    env.sim.http_errors = [503]  # the /length request fails; the send goes through
    result = await adapter.send(OutboundMessage("8888", PHONE, EURO_TEXT))
    assert result.segments == 2 and env.sim.sent[-1]["message"] == EURO_TEXT
    assert env.sim.length_requests == []
