"""Turns on a store several processes share (``store.shared``): each text is turned once,
and after the older texts of its conversation, whichever process takes its turn.

Two engines over one store play two processes. The store is convo's memory store with its
``shared`` flag set: its lock is one per conversation for both engines, as PostgreSQL's
advisory lock is for two processes, so the race is the real one, minus the network. (The
same holds on PostgreSQL in tests/e2e/test_workers.py.)
"""

from __future__ import annotations

from typing import ClassVar

from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import Direction, InboundMessage, MessageRecord
from convo.store.base import MessageQuery
from convo.store.memory import MemoryStore

LINE, ALICE = "+32470000100", "+32470000001"
FLOW = """
flow: echo
languages: [en]
start: first
steps:
  first:
    ask: {text: {en: "ready"}, expect: text, save_as: said}
    then: again
  again:
    ask: {text: {en: "got {{ slots.said }}"}, expect: text, save_as: said}
    then: again
"""


class SharedMemoryStore(MemoryStore):
    shared: ClassVar[bool] = True


def text(n: int, body: str) -> InboundMessage:
    return InboundMessage(
        line=LINE,
        sender=ALICE,
        text=body,
        provider="vonage",
        provider_message_id=f"m{n}",
        received_at=1000.0 + n,
    )


def engine(store: MemoryStore) -> Engine:
    return Engine({"echo": load_flow_text(FLOW, "echo.yaml")}, store, lines={LINE: "echo"})


async def sent(store: MemoryStore) -> list[str]:
    replies, _ = await store.list_messages(MessageQuery(direction=Direction.OUTBOUND))
    return [r.text for r in reversed(replies)]


async def test_a_later_text_that_wins_the_lock_turns_the_older_one_first() -> None:
    store = SharedMemoryStore()
    first, second = engine(store), engine(store)  # two processes
    one, two = text(1, "hello"), text(2, "m1")
    assert await first.receive(one)  # process 1 took the first webhook ...
    assert await second.receive(two)  # ... process 2 the next one, and turns it first
    replies = await second.process(two)
    assert [r.text for r in replies] == ["ready", "got m1"]
    assert await first.process(one) == []  # already turned, by the other process
    assert await sent(store) == ["ready", "got m1"]
    assert await store.unprocessed_of(one.key) == []


async def test_a_text_turned_elsewhere_is_not_turned_again() -> None:
    store = SharedMemoryStore()
    webhook, recovery = engine(store), engine(store)
    one = text(1, "hello")
    assert await webhook.receive(one)
    assert [r.text for r in await recovery.process(one)] == ["ready"]  # the other's recovery
    assert await webhook.process(one) == []
    assert await sent(store) == ["ready"]


async def test_one_process_on_its_own_store_reads_no_inbox() -> None:
    # MemoryStore is not shared: a turn takes its message as given (the intake orders them).
    store = MemoryStore()
    one = text(1, "hello")
    await store.add_inbound(MessageRecord.inbound(one))
    assert [r.text for r in await engine(store).process(one)] == ["ready"]
