"""How many sends are in flight to a provider at once: ``[outbox] concurrency``, or by
default what holds the provider's ``rate_limit`` (``convo.outbox.default_concurrency``).

Every send slot is a reply a SIGKILL may leave in doubt and send twice, so the bound is a
guarantee, not only a speed: the real Vonage adapter talks to the Vonage simulator behind a
valve that holds every request until the test opens it, and counts how many wait at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, OutboundMessage
from convo.outbox import MAX_IN_FLIGHT, Outbox, default_concurrency
from convo.providers.http import provider_client
from convo.providers.vonage import VonageSms
from convo.rate_limits import burst
from convo.simulators.vonage import VonageSimulator
from convo.store.memory import MemoryStore
from tests.conftest import until

LINE = "+32460000101"
RECIPIENTS = 30  # more than any bound tested here: each has one reply, sent concurrently


class Valve:
    """Holds every request to the provider until :attr:`open` is set; counts them."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = 0
        self.most = 0

    @web.middleware
    async def hold(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        return await handler(request)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client() as http:
        yield http


async def most_in_flight(
    client: httpx.AsyncClient, rate_limit: float, concurrency: int | None, bound: int
) -> int:
    """Queue one reply to each of RECIPIENTS contacts with the provider holding every
    request; how many reached it at once, once the outbox could send no more. The provider
    holds them long enough for the rate limit to let more than ``bound`` through (its
    bucket starts with a burst of ``burst(rate_limit)``, then refills at the rate)."""
    sim, valve = VonageSimulator(), Valve()
    api = web.Application(middlewares=[valve.hold])
    api.add_subapp("/v", sim.app)
    server = TestServer(api, host="127.0.0.1")
    await server.start_server()
    provider = VonageSms.from_config(
        "vonage",
        {
            "api_key": sim.api_key,
            "api_secret": sim.api_secret,
            "allow_unsigned": True,
            "rate_limit": rate_limit,
            "base_url": str(server.make_url("/v")),
        },
        client,
    )
    store = MemoryStore()
    await store.open()
    outbox = Outbox(store, {"vonage": provider}, {LINE: "vonage"}, concurrency=concurrency)
    outbox.start()
    try:
        messages = [
            OutboundMessage(LINE, f"+3247{i:07d}", "see you at 10") for i in range(RECIPIENTS)
        ]
        await store.add_outbound([MessageRecord.outbound(m) for m in messages])
        outbox.submit(messages)
        await until(lambda: valve.waiting > 0)
        # Time for more sends to start, were any slot free: the bucket's tokens beyond the
        # bound, with room to spare.
        await asyncio.sleep(0.3 + max(0.0, bound + 1 - burst(rate_limit)) / rate_limit)
        most = valve.most
        valve.open.set()
        await until(lambda: len(sim.sent) == RECIPIENTS)  # held, not lost
        return most
    finally:
        valve.open.set()
        await outbox.aclose()
        await store.close()
        await server.close()


async def test_concurrency_bounds_the_sends_in_flight(client: httpx.AsyncClient) -> None:
    assert await most_in_flight(client, rate_limit=1000, concurrency=3, bound=3) == 3


async def test_by_default_a_provider_gets_the_slots_its_rate_limit_needs(
    client: httpx.AsyncClient,
) -> None:
    # 10/s at half a second per send: 5 in flight hold the rate; more would not send faster
    assert default_concurrency(10) == 5
    assert await most_in_flight(client, rate_limit=10, concurrency=None, bound=5) == 5


def test_the_default_is_between_one_and_the_maximum() -> None:
    assert default_concurrency(0.1) == 1
    assert default_concurrency(30) == 15
    assert default_concurrency(10_000) == MAX_IN_FLIGHT
