"""LocalLocks: turns of one conversation in order, others in parallel, nothing left behind."""

from __future__ import annotations

import asyncio

import pytest

from convo.models import ConversationKey
from convo.store import LocalLocks

ALICE = ConversationKey("+32470000100", "sms", "+32470000001")
BOB = ConversationKey("+32470000100", "sms", "+32470000002")


async def test_turns_of_one_conversation_run_in_order() -> None:
    locks = LocalLocks()
    log: list[str] = []

    async def turn(name: str) -> None:
        async with locks.lock(ALICE):
            log.append(f"{name} start")
            await asyncio.sleep(0)  # give the others every chance to barge in
            await asyncio.sleep(0)
            log.append(f"{name} end")

    tasks = [asyncio.create_task(turn(n)) for n in ("first", "second", "third")]
    await asyncio.sleep(0)
    assert locks.locked(ALICE) and len(locks) == 1
    await asyncio.gather(*tasks)
    assert log == [
        "first start",
        "first end",
        "second start",
        "second end",
        "third start",
        "third end",
    ]
    assert len(locks) == 0 and not locks.locked(ALICE)


async def test_different_conversations_run_concurrently() -> None:
    locks = LocalLocks()
    alice_in = asyncio.Event()
    bob_in = asyncio.Event()

    async def alice() -> None:
        async with locks.lock(ALICE):
            alice_in.set()
            await bob_in.wait()  # would deadlock if BOB had to wait for ALICE

    async def bob() -> None:
        async with locks.lock(BOB):
            bob_in.set()
            await alice_in.wait()

    await asyncio.wait_for(asyncio.gather(alice(), bob()), timeout=5)
    assert len(locks) == 0


async def test_no_entry_left_after_many_keys_errors_and_cancellations() -> None:
    locks = LocalLocks()

    async def turn(n: int) -> None:
        async with locks.lock(ConversationKey("+1", "sms", f"+{n % 50}")):
            await asyncio.sleep(0)
            if n % 7 == 0:
                raise RuntimeError("turn failed")

    results = await asyncio.gather(*(turn(n) for n in range(2000)), return_exceptions=True)
    assert sum(isinstance(r, RuntimeError) for r in results) == 286
    assert len(locks) == 0

    # A waiter cancelled while queued must not leave its entry behind either.
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.lock(ALICE):
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(turn_on(locks, ALICE))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(locks) == 1  # the holder's
    release.set()
    await held
    assert len(locks) == 0


async def turn_on(locks: LocalLocks, key: ConversationKey) -> None:
    async with locks.lock(key):
        pass
