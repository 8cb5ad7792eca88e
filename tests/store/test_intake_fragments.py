"""Long texts in parts, from the webhook's intake into the store, and erased from there.

The intake names each group as it likes; the store knows a group's contact only because
the intake says whose it is. These run the real intake, engine and store (both backends).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from convo.exceptions import StoreError
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.intake import Intake
from convo.models import Direction, InboundMessage, MessagePart
from convo.store.base import MessageQuery, Store
from convo.store.sqlite import SqliteStore

LINE = "+32470000100"
ALICE = "+32470000001"
BOB = "+32470000002"
FLOW = """
flow: echo
languages: [en]
start: hello
steps:
  hello:
    say: {en: "Hello."}
    end: true
"""


def part(sender: str, index: int, text: str) -> InboundMessage:
    return InboundMessage(
        line=LINE,
        sender=sender,
        text=text,
        provider="sandbox",
        provider_message_id=f"{sender}-{index}",
        part=MessagePart("ref-1", index, 3),
    )


def intake_on(store: Store) -> Intake:
    engine = Engine({"echo": load_flow_text(FLOW, "echo.yaml")}, store, lines={LINE: "echo"})
    return Intake(engine, clock=lambda: 1000.0)


async def test_erasing_a_contact_drops_its_pending_long_texts_only(any_store: Store) -> None:
    intake = intake_on(any_store)
    for message in (part(ALICE, 1, "Hel"), part(ALICE, 3, "lo"), part(BOB, 2, "b")):
        assert await intake.accept(message) is None  # waiting for the other parts

    erased = await any_store.erase_contact(ALICE)

    assert erased.fragments == 2
    assert erased.messages == 0  # nothing was logged: the text is not whole yet
    intake.clock = lambda: 10**10
    assert await intake.expire_fragments() == 1  # Bob's part is still there
    assert await intake.wait(5)
    inbound = MessageQuery(direction=Direction.INBOUND)
    [delivered], total = await any_store.list_messages(inbound)
    assert total == 1 and (delivered.contact, delivered.text) == (BOB, "b")


async def test_a_retried_part_is_kept_once(any_store: Store) -> None:
    intake = intake_on(any_store)
    for message in (part(ALICE, 1, "Hel"), part(ALICE, 1, "Hel")):
        assert await intake.accept(message) is None
    assert (await any_store.erase_contact(ALICE)).fragments == 1


async def test_a_late_retry_of_a_part_of_a_stored_text_is_ignored(any_store: Store) -> None:
    intake = intake_on(any_store)
    await intake.recover()  # as at start: from now on texts are turned as they come
    for index, text in ((1, "Hel"), (2, "lo "), (3, "you")):
        task = await intake.accept(part(ALICE, index, text))
    assert task is not None and await intake.wait(5)
    assert await intake.accept(part(ALICE, 2, "lo ")) is None  # long after: a provider retry
    intake.clock = lambda: 10**10
    assert await intake.expire_fragments() == 0  # it started no group of its own
    inbound = MessageQuery(direction=Direction.INBOUND)
    [joined], _ = await any_store.list_messages(inbound)
    assert joined.text == "Hello you"


# The store fails for real: a trigger in the SQLite file makes every insert into the message
# log abort, as a full disk would, until it is dropped. What was acknowledged must survive.
BREAK_LOG = (
    "CREATE TRIGGER broken BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk full'); END"
)


def sqlite_file(store: SqliteStore) -> sqlite3.Connection:
    return sqlite3.connect(store.path, isolation_level=None)


async def test_a_long_text_whose_storing_failed_is_joined_again_by_the_retry(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        intake = intake_on(store)
        await intake.recover()
        assert await intake.accept(part(ALICE, 1, "Hel")) is None
        assert await intake.accept(part(ALICE, 2, "lo ")) is None
        with sqlite_file(store) as cx:
            cx.execute(BREAK_LOG)
        with pytest.raises(StoreError):  # the webhook answers 503: the provider retries
            await intake.accept(part(ALICE, 3, "you"))
        with sqlite_file(store) as cx:
            cx.execute("DROP TRIGGER broken")
        task = await intake.accept(part(ALICE, 3, "you"))  # the retry
        assert task is not None and await intake.wait(5)
        [joined], _ = await store.list_messages(MessageQuery(direction=Direction.INBOUND))
        assert joined.text == "Hello you"
    finally:
        await store.close()


async def test_an_expired_long_text_is_kept_until_it_is_stored(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        intake = intake_on(store)
        await intake.recover()
        assert await intake.accept(part(ALICE, 1, "Hel")) is None
        intake.clock = lambda: 10**10
        with sqlite_file(store) as cx:
            cx.execute(BREAK_LOG)
        with pytest.raises(StoreError):
            await intake.expire_fragments()
        with sqlite_file(store) as cx:
            cx.execute("DROP TRIGGER broken")
        assert await intake.expire_fragments() == 1  # the next run of the loop
        assert await intake.wait(5)
        [joined], _ = await store.list_messages(MessageQuery(direction=Direction.INBOUND))
        assert joined.text == "Hel"
        assert await intake.expire_fragments() == 0  # finished
    finally:
        await store.close()
