"""Send slots are per provider, and a message waiting out a backoff holds none.

Provider A is the real Telefoon SMS adapter pointed at a tiny server that always answers
503; provider B is the real Vonage adapter talking to the Vonage simulator. While more of
A's messages wait in backoff than there are send slots, B's replies go out as fast as when
A was idle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox, RetryPolicy
from convo.providers.http import provider_client
from convo.providers.telefoon_sms import TelefoonSms
from convo.providers.vonage import VonageSms
from convo.simulators.vonage import VonageSimulator
from convo.store.memory import MemoryStore
from tests.conftest import until

LINE_A = "+32460000101"  # sent through provider A (down)
LINE_B = "+32460000202"  # sent through provider B (healthy)
CONCURRENCY = 4
BACKOFF = 5.0  # A's messages wait this long before their next attempt: longer than the test


def contacts(first: int, n: int) -> list[str]:
    return [f"+3247{first + i:07d}" for i in range(n)]


class Down:
    """Provider A's API: every request is answered 503, and counted."""

    def __init__(self) -> None:
        self.requests = 0
        self.app = web.Application()
        self.app.router.add_post("/messages", self.send)

    async def send(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"error": "down for maintenance"}, status=503)


class Arrivals:
    """When each send request reached provider B's simulator (mounted under ``/b``)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @web.middleware
    async def stamp(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.times.append(time.monotonic())
        return await handler(request)


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client() as http:
        yield http


async def reply(store: MemoryStore, outbox: Outbox, line: str, to: list[str]) -> list[str]:
    """Queue one reply to each of ``to`` as a turn does: in the store, then handed over."""
    messages = [OutboundMessage(line, contact, "your appointment is confirmed") for contact in to]
    await store.add_outbound([MessageRecord.outbound(m) for m in messages])
    outbox.submit(messages)
    return [m.id for m in messages]


async def latencies(
    store: MemoryStore, outbox: Outbox, arrivals: Arrivals, to: list[str]
) -> list[float]:
    """Seconds from queueing a reply to each of ``to`` on line B to B's simulator getting it."""
    before = len(arrivals.times)
    queued = time.monotonic()
    await reply(store, outbox, LINE_B, to)
    await until(lambda: len(arrivals.times) == before + len(to))
    return [t - queued for t in arrivals.times[before:]]


async def in_backoff(store: MemoryStore, ids: list[str]) -> int:
    """How many of ``ids`` are queued again, waiting for their next attempt."""
    count = 0
    for message_id in ids:
        record = await store.get_message(message_id)
        assert record is not None
        retrying = record.error is not None and record.error.startswith("retrying: ")
        count += record.status is MessageStatus.QUEUED and retrying
    return count


@dataclass
class World:
    down: Down
    sim: VonageSimulator
    arrivals: Arrivals
    store: MemoryStore
    outbox: Outbox


@pytest.fixture
async def world(client: httpx.AsyncClient) -> AsyncIterator[World]:
    down = Down()
    sim = VonageSimulator()
    arrivals = Arrivals()
    b_api = web.Application(middlewares=[arrivals.stamp])
    b_api.add_subapp("/b", sim.app)
    server_a, server_b = await serve(down.app), await serve(b_api)
    provider_a = TelefoonSms.from_config(
        "telefoon_sms",
        {
            "api_key": "k",
            "allow_unsigned": True,
            "rate_limit": 1000,  # A's first attempts all go out at once
            "base_url": str(server_a.make_url("")),
        },
        client,
    )
    provider_b = VonageSms.from_config(
        "vonage",
        {
            "api_key": sim.api_key,
            "api_secret": sim.api_secret,
            "allow_unsigned": True,
            "base_url": str(server_b.make_url("/b")),
        },
        client,
    )
    store = MemoryStore()
    await store.open()
    outbox = Outbox(
        store,
        {"telefoon_sms": provider_a, "vonage": provider_b},
        {LINE_A: "telefoon_sms", LINE_B: "vonage"},
        policy=RetryPolicy(max_attempts=3, base_delay=BACKOFF, max_delay=BACKOFF),
        sweep_interval=3600,  # only hand-overs: the test decides when what is queued
        concurrency=CONCURRENCY,
        rng=lambda: 1.0,  # no jitter: every backoff is BACKOFF
    )
    outbox.start()
    try:
        yield World(down, sim, arrivals, store, outbox)
    finally:
        await outbox.aclose()
        await server_a.close()
        await server_b.close()
        await store.close()


async def test_a_provider_answering_503_does_not_delay_another_providers_replies(
    world: World,
) -> None:
    store, outbox, arrivals, down = world.store, world.outbox, world.arrivals, world.down
    warm = await latencies(store, outbox, arrivals, contacts(9000, 1))  # connections
    baseline = await latencies(store, outbox, arrivals, contacts(100, 3))

    # A goes down: three times as many of its recipients as it has slots.
    a_ids = await reply(store, outbox, LINE_A, contacts(200, 3 * CONCURRENCY))
    await until(lambda: down.requests == 3 * CONCURRENCY)
    deadline = time.monotonic() + 10
    while await in_backoff(store, a_ids) < 3 * CONCURRENCY:  # all of them, at once
        assert time.monotonic() < deadline, "A's messages never all waited in backoff"
        await asyncio.sleep(0.005)

    loaded = await latencies(store, outbox, arrivals, contacts(300, 3))

    # A's messages were still waiting when B's replies went out. With one semaphore shared
    # by both providers and held through backoff, at most CONCURRENCY of them could be
    # waiting, and B's replies would wait BACKOFF seconds for a slot.
    assert await in_backoff(store, a_ids) == 3 * CONCURRENCY > CONCURRENCY
    assert down.requests == 3 * CONCURRENCY
    assert len(warm) == 1 and len(world.sim.sent) == 1 + 3 + 3
    delay = max(loaded) - max(baseline)
    assert delay < 0.1, f"B's replies took {loaded} with A down, {baseline} with A idle"


async def test_a_message_naming_another_provider_than_its_lines_is_sent_by_that_one(
    world: World,
) -> None:
    message = OutboundMessage(LINE_A, "+32470000042", "sent by the provider it names")
    await world.store.add_outbound([MessageRecord.outbound(message, provider="vonage")])
    world.outbox.submit([message])
    assert await world.outbox.drain(10)
    record = await world.store.get_message(message.id)
    assert record is not None and record.status is MessageStatus.SENT
    assert record.provider == "vonage"
    assert [m["text"] for m in world.sim.sent] == ["sent by the provider it names"]
    assert world.down.requests == 0
