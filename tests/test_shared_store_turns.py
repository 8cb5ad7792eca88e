"""Turns on a store several processes share (``store.shared``): each text is turned once,
and after the older texts of its conversation, whichever process takes its turn.

Two engines over one store play two processes. The store is convo's memory store with its
``shared`` flag set: its lock is one per conversation for both engines, as PostgreSQL's
advisory lock is for two processes, so the race is the real one, minus the network. (The
same holds on PostgreSQL in tests/e2e/test_workers.py.)
"""

from __future__ import annotations

from typing import ClassVar

from convo.models import MessageRecord
from convo.store.memory import MemoryStore
from tests.echo_world import echo_engine, replies, text


class SharedMemoryStore(MemoryStore):
    shared: ClassVar[bool] = True


async def test_a_later_text_that_wins_the_lock_turns_the_older_one_first() -> None:
    store = SharedMemoryStore()
    first, second = echo_engine(store), echo_engine(store)  # two processes
    one, two = text(1, "hello"), text(2, "m1")
    assert await first.receive(one)  # process 1 took the first webhook ...
    assert await second.receive(two)  # ... process 2 the next one, and turns it first
    turned = await second.process(two)
    assert [r.text for r in turned] == ["ready", "got m1"]
    assert await first.process(one) == []  # already turned, by the other process
    assert await replies(store) == ["ready", "got m1"]
    assert await store.unprocessed_of(one.key) == []


async def test_a_text_turned_elsewhere_is_not_turned_again() -> None:
    store = SharedMemoryStore()
    webhook, recovery = echo_engine(store), echo_engine(store)
    one = text(1, "hello")
    assert await webhook.receive(one)
    assert [r.text for r in await recovery.process(one)] == ["ready"]  # the other's recovery
    assert await webhook.process(one) == []
    assert await replies(store) == ["ready"]


async def test_one_process_on_its_own_store_reads_no_inbox() -> None:
    # MemoryStore is not shared: a turn takes its message as given (the intake orders them).
    store = MemoryStore()
    one = text(1, "hello")
    await store.add_inbound(MessageRecord.inbound(one))
    assert [r.text for r in await echo_engine(store).process(one)] == ["ready"]
