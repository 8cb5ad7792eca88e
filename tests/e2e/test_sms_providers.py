"""SMS end to end over each provider: convo's real server and the provider's simulator.

For each of Vonage, Telefoon SMS, Telefonie SMS and Enco (harness: ``sms_world``): a phone
texts convo's line, the flow's question reaches the simulator, the simulator reports it
delivered, and the admin API shows the message ``delivered`` with the provider's id and its
segments; then two more turns finish the conversation. Enco has no inbound webhook: the
simulator queues the text and convo's poll loop fetches it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from convo.simulators.vonage import VonageSimulator
from tests.e2e.sms_world import (
    LINE,
    PHONE,
    PROVIDERS,
    Provider,
    TelefoonSms,
    Vonage,
    World,
    running_world,
)

MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(tmp_path: Path) -> AsyncIterator[MakeWorld]:
    async with AsyncExitStack() as stack:

        async def make(provider: Provider, **outbox: Any) -> World:
            return await stack.enter_async_context(running_world(tmp_path, provider, **outbox))

        yield make


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_two_way_conversation(make_world: MakeWorld, name: str) -> None:
    world = await make_world(PROVIDERS[name]())
    provider = world.provider
    await provider.text_in("hello")
    assert await world.reply(0) == "Hi! What is your name?"
    await provider.delivered(0)
    first = await world.outbound_with_status(provider.message_id(0), "delivered")
    assert first["segments"] == 1 and first["provider"] == name
    assert first["from"] == provider.line and first["to"] == PHONE

    await provider.text_in("Ann")
    assert await world.reply(1) == "Thanks Ann. What is your favourite colour?"
    await provider.delivered(1)
    await world.outbound_with_status(provider.message_id(1), "delivered")

    await provider.text_in("green")
    assert await world.reply(2) == "Noted: green. Bye!"
    log = await world.messages()
    # Per direction: Vonage stamps inbound texts to the second, so across directions the
    # log's time order may differ from the order of the turns.
    assert [m["text"] for m in log if m["direction"] == "inbound"] == ["hello", "Ann", "green"]
    outbound = [m for m in log if m["direction"] == "outbound"]
    assert [m["text"] for m in outbound] == [provider.text(i) for i in range(3)]
    assert {m["provider"] for m in log} == {name}
    conversation = await world.api(f"/api/conversations/%2B{PHONE[1:]}")
    [session] = conversation["conversations"]
    assert session["status"] == "ended"
    assert session["slots"] == {"name": "Ann", "colour": "green"}
    if name == "telefonie_sms":  # the flow's last step has media: an MMS
        assert world.sim.sent[2]["media_url"] == ["https://cdn.example.com/thanks.png"]
        assert outbound[-1]["media_urls"] == ["https://cdn.example.com/thanks.png"]


async def test_vonage_long_text_in_parts_out_of_order_is_one_turn(
    make_world: MakeWorld,
) -> None:
    world = await make_world(Vonage())
    sim: VonageSimulator = world.sim
    await world.provider.text_in("hi")
    await world.reply(0)
    name = "Ann " + "the very patient person who writes long names " * 8
    name = name.strip()
    assert await sim.deliver_inbound(PHONE, LINE, name, parts=3, order=[3, 1, 2]) == 200
    assert sum(1 for url, fields, _ in sim.webhooks if "concat-ref" in fields) == 3
    reply = await world.reply(1)
    assert reply == f"Thanks {name}. What is your favourite colour?"
    await world.provider.delivered(1)
    second = await world.outbound_with_status(world.provider.message_id(1), "delivered")
    assert second["segments"] == len(sim.sent[1]["message-ids"]) >= 3
    inbound = [m for m in await world.messages() if m["direction"] == "inbound"]
    assert [m["text"] for m in inbound] == ["hi", name]  # one message, so one turn
    assert len(sim.sent) == 2


async def test_webhook_with_a_wrong_signature_changes_nothing(
    make_world: MakeWorld,
) -> None:
    world = await make_world(TelefoonSms())
    world.sim.webhook_secret = "not-the-secret"
    assert await world.sim.deliver_inbound(PHONE, LINE, "hello") == 401
    assert await world.messages() == []
    assert world.sim.sent == []
