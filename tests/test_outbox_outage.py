"""A provider outage loses nothing: transient failures are retried until the message's
maximum age, then dead-lettered, never dropped; the backoff survives a restart; messages in
backoff never hide the others from the sweep.

Everything is real but the outage: a SQLite file, the Telefoon SMS adapter, and the
Telefoon SMS simulator behind a gate on loopback that answers 503 while it is "down".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox, RetryPolicy
from convo.providers.http import provider_client
from convo.providers.telefoon_sms import TelefoonSms
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.store.sqlite import SqliteStore
from tests.conftest import until

LINE = "+32460000101"  # sent through the gated Telefoon simulator
OTHER_LINE = "+32460000202"  # sent through a second, healthy one


OPTIONS = {"api_key": "test-key", "allow_unsigned": True, "rate_limit": 1000}


def contacts(first: int, n: int) -> list[str]:
    return [f"+3247{first + i:07d}" for i in range(n)]


@dataclass
class Gate:
    """In front of a simulator: 503 (and counted) while ``down``, else the simulator."""

    down: bool = False
    refused: int = 0
    sim: TelefoonSmsSimulator = field(default_factory=TelefoonSmsSimulator)

    @web.middleware
    async def guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.down:
            self.refused += 1
            return web.json_response({"error": "down for maintenance"}, status=503)
        return await handler(request)

    def texts_to(self, contact: str) -> list[str]:
        return [m["text"] for m in self.sim.sent_messages() if m["to"] == contact]


@dataclass
class World:
    store: SqliteStore
    gate: Gate
    other: Gate
    client: httpx.AsyncClient
    urls: dict[str, str]

    def outbox(self, policy: RetryPolicy, **options: Any) -> Outbox:
        providers = {
            name: TelefoonSms.from_config(
                name,
                {
                    "api_key": "test-key",
                    "allow_unsigned": True,
                    "rate_limit": 1000,
                    "base_url": url,
                },
                self.client,
            )
            for name, url in self.urls.items()
        }
        lines = {LINE: "gated", OTHER_LINE: "healthy"}
        return Outbox(self.store, providers, lines, policy=policy, **options)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    gate, other = Gate(), Gate()
    servers = []
    for g in (gate, other):
        app = web.Application(middlewares=[g.guard])
        app.add_subapp("/api", g.sim.app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
    urls = {
        name: str(s.make_url("/api")) for name, s in zip(("gated", "healthy"), servers, strict=True)
    }
    async with provider_client() as client:
        yield World(store, gate, other, client, urls)
    for server in servers:
        await server.close()
    await store.close()


async def queue(
    store: SqliteStore, to: list[str], per_contact: int, *, line: str = LINE, at: float = 0
) -> list[OutboundMessage]:
    """``per_contact`` replies to each of ``to``, created in a known order: reply ``k`` of
    every contact before reply ``k + 1`` of any."""
    start = at or time.time() - 1000
    messages = [
        OutboundMessage(line, contact, f"reply {k}", created_at=start + k * len(to) + i)
        for k in range(per_contact)
        for i, contact in enumerate(to)
    ]
    await store.add_outbound([MessageRecord.outbound(m) for m in messages])
    return messages


async def test_an_outage_loses_no_reply_and_keeps_each_contacts_order(world: World) -> None:
    people = contacts(100, 20)
    world.gate.down = True
    outbox = world.outbox(RetryPolicy(base_delay=0.02, max_delay=0.1))
    outbox.start()
    try:
        messages = await queue(world.store, people, 5)
        outbox.submit(messages)
        # Down long enough for every contact's first reply to fail more than five times:
        # as many attempts as the outbox used to allow before it dropped a reply.
        await until(lambda: world.gate.refused >= 7 * len(people))
        world.gate.down = False
        assert await outbox.drain(30)
    finally:
        await outbox.aclose()
    for person in people:
        assert world.gate.texts_to(person) == [f"reply {k}" for k in range(5)]  # once, in order
    assert len(world.gate.sim.sent) == len(messages)
    for message in messages:
        record = await world.store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT, record


async def test_a_restart_keeps_the_backoff_of_a_provider_that_is_down(world: World) -> None:
    people = contacts(200, 10)
    world.gate.down = True
    policy = RetryPolicy(base_delay=30.0, max_delay=30.0)
    first = world.outbox(policy, rng=lambda: 1.0)  # no jitter: every backoff is 30 s
    first.start()
    try:
        messages = await queue(world.store, people, 1)
        first.notify()
        await until(lambda: world.gate.refused == len(people))
        deadline = time.monotonic() + 20
        while not all(
            r.status is MessageStatus.QUEUED and (r.error or "").startswith("retrying: ")
            for r in await world.store.pending_outbound(limit=100)
        ):  # every failed attempt recorded: all wait for their next one
            assert time.monotonic() < deadline, "the failed attempts were never recorded"
            await asyncio.sleep(0.01)
    finally:
        await first.aclose()

    second = world.outbox(policy, rng=lambda: 1.0)  # a restart
    second.start()
    try:
        await asyncio.sleep(1.0)  # a restart that forgot the backoff resends at once
        assert world.gate.refused == len(people)
    finally:
        await second.aclose()
    now = time.time()
    for message in messages:
        record = await world.store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.QUEUED
        assert record.attempts == 1 and now + 20 < record.next_attempt_at < now + 31


async def test_messages_in_backoff_do_not_hide_others_from_the_sweep(world: World) -> None:
    # Another process queues replies in the store (no hand-over): only the sweep finds
    # them. Far more of the down provider's recipients than the sweep reads at once.
    world.gate.down = True
    policy = RetryPolicy(base_delay=30.0, max_delay=30.0)
    outbox = world.outbox(policy, concurrency=2, sweep_interval=0.05)  # sweeps read 8
    outbox.start()
    try:
        await queue(world.store, contacts(300, 60), 2)
        outbox.notify()
        await until(lambda: world.gate.refused >= 8)
        others = await queue(world.store, contacts(400, 5), 1, line=OTHER_LINE, at=time.time())
        outbox.notify()
        await until(lambda: len(world.other.sim.sent) == len(others))
    finally:
        await outbox.aclose()
    for message in others:
        record = await world.store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT


async def test_past_its_maximum_age_a_reply_is_a_dead_letter_until_retried(world: World) -> None:
    clock = [1_000_000.0]  # the outbox's wall clock: it stands still unless moved here
    alice, bob = contacts(500, 2)
    world.gate.down = True
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_age=3600)
    outbox = world.outbox(policy, clock=lambda: clock[0])
    outbox.start()
    try:
        first, second = await queue(world.store, [alice], 2, at=clock[0])
        [to_bob] = await queue(world.store, [bob], 1, at=clock[0] + 10)
        outbox.submit([first, second, to_bob])
        await until(lambda: world.gate.refused >= 10)  # retried, within its age
        assert await outbox.dead_letters() == ([], 0)

        # All three are past their maximum age: each becomes a dead letter at its next
        # failed attempt, or at the one in flight now (so no count of further refusals).
        clock[0] += 3600 + 10
        for _ in range(2000):
            dead, total = await outbox.dead_letters()
            if total == 3:
                break
            await asyncio.sleep(0.01)
        assert [m.id for m in dead] == [to_bob.id, second.id, first.id]  # newest first
        assert all(m.status is MessageStatus.DEAD and "503" in (m.error or "") for m in dead)
        assert await world.store.pending_outbound() == []  # nothing is tried any more
        assert world.gate.sim.sent == []

        world.gate.down = False
        assert await outbox.retry_dead([to_bob.id, "no-such-id"]) == [to_bob.id]
        await until(lambda: world.gate.texts_to(bob) == ["reply 0"])
        assert await outbox.retry_dead() == [first.id, second.id]
        assert await outbox.drain(10)
    finally:
        await outbox.aclose()
    assert world.gate.texts_to(alice) == ["reply 0", "reply 1"]  # in order, once
    assert await outbox.dead_letters() == ([], 0)
    for message in (first, second, to_bob):
        record = await world.store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT
        assert record.requeued_at == clock[0]  # its age counts from the retry
