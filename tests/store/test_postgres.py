"""What the PostgreSQL store adds to the contract suite: several store instances (each with
its own pool, as several processes have) on one database, racing for the same work.

Every test runs on a fresh schema of the test server (``postgres_url``, tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import pytest

from convo.exceptions import StoreError
from convo.models import ConversationKey, Direction, MessageRecord, MessageStatus, Session
from convo.store.postgres import MIGRATIONS, PostgresStore

LINE = "+32470000100"
ALICE = "+32470000001"
KEY = ConversationKey(LINE, "sms", ALICE)


def outbound(n: int, contact: str = ALICE) -> MessageRecord:
    return MessageRecord(
        id=f"out-{n}",
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=contact,
        text=f"reply {n}",
        status=MessageStatus.QUEUED,
        created_at=3000.0 + n,
        updated_at=3000.0 + n,
    )


def session(step: str = "confirm") -> Session:
    return Session(key=KEY, flow="f", flow_version="1", step=step, lang="nl")


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[PostgresStore]]:
    """Two opened stores on one schema: two processes, as far as the database can tell."""
    async with AsyncExitStack() as stack:
        found = []
        for _ in range(2):
            store = PostgresStore(postgres_url)
            await store.open()
            stack.push_async_callback(store.close)
            found.append(store)
        yield found


async def test_processes_racing_to_migrate_an_empty_database_all_start(postgres_url: str) -> None:
    racers = [PostgresStore(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in racers))
        for store in racers:
            status = await store.schema_status()
            assert (status.version, status.pending) == (len(MIGRATIONS), 0)
        # One tombstone key for the database: each store hashes erased ids the same way.
        keys = {store._key() for store in racers}
        assert len(keys) == 1
    finally:
        await asyncio.gather(*(store.close() for store in racers))


async def test_a_database_a_newer_convo_wrote_is_refused(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("UPDATE schema_version SET version = $1", len(MIGRATIONS) + 3)
    finally:
        await connection.close()
    with pytest.raises(StoreError, match=rf"schema version {len(MIGRATIONS) + 3}, newer"):
        await PostgresStore(postgres_url).open()
    status_only = PostgresStore(postgres_url, migrate=False)
    await status_only.open()
    try:
        status = await status_only.schema_status()
        assert status.newer and "written by a newer convo" in status.describe()
    finally:
        await status_only.close()


async def test_a_turn_holds_its_conversation_in_every_process(stores: list[PostgresStore]) -> None:
    first, second = stores
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with first.lock(KEY):
            await first.save_turn(session("held"))
            inside.set()
            await release.wait()

    async def next_turn() -> str | None:
        async with second.lock(KEY):
            loaded, _ = await second.load_turn(KEY)
            return None if loaded is None else loaded.step

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(inside.wait(), 5)
    waiter = asyncio.create_task(next_turn())
    await asyncio.sleep(0.2)
    assert not waiter.done()  # the other process waits for the turn
    assert await second.get_session(KEY) is None  # and the turn is not visible before it ends
    release.set()
    await asyncio.wait_for(holder, 5)
    # The waiting turn got the lock, and read what the turn it waited for committed.
    assert await asyncio.wait_for(waiter, 5) == "held"


async def test_a_turn_that_fails_inside_its_lock_leaves_nothing(
    stores: list[PostgresStore],
) -> None:
    store = stores[0]
    await store.add_outbound([outbound(1)])
    with pytest.raises(StoreError):
        async with store.lock(KEY):
            await store.save_turn(session("lost"), outbound=[outbound(2)])
            await store.add_outbound([outbound(1)])  # a taken id: the turn fails
    assert await store.get_session(KEY) is None
    assert await store.get_message("out-2") is None
    # A failure caught inside the lock still rolls the turn back, and says so.
    with pytest.raises(StoreError, match="rolled back"):
        async with store.lock(KEY):
            await store.save_turn(session("lost"))
            with pytest.raises(StoreError):
                await store.add_outbound([outbound(1)])
    assert await store.get_session(KEY) is None


async def test_two_senders_never_claim_one_reply(stores: list[PostgresStore]) -> None:
    await stores[0].add_outbound([outbound(n, contact=f"+3247000{n:04d}") for n in range(40)])
    claims = await asyncio.gather(
        *(
            store.claim_next(LINE, f"+3247000{n:04d}", now=5000.0)
            for n in range(40)
            for store in stores
        )
    )
    won = [c.id for c in claims if c is not None]
    assert sorted(won) == sorted(f"out-{n}" for n in range(40))  # each once, none lost


async def test_release_claims_frees_only_the_claims_of_processes_that_are_gone(
    postgres_url: str, stores: list[PostgresStore]
) -> None:
    alive = stores[0]
    await alive.add_outbound([outbound(1), outbound(2, contact="+32470000002")])
    gone = PostgresStore(postgres_url)
    await gone.open()
    assert await gone.claim_next(LINE, ALICE, now=5000.0, lease=60) is not None
    assert await alive.claim_next(LINE, "+32470000002", now=5000.0, lease=60) is not None
    starting = stores[1]
    assert await starting.release_claims(5001.0) == 0  # both senders live: their claims hold
    await gone.close()  # its process ends: its presence lock goes with its connection
    assert await starting.release_claims(5001.0) == 1
    due = await starting.due_outbound(5001.0)
    assert [m.id for m in due] == ["out-1"]


async def test_the_last_parts_of_a_long_text_at_two_processes_complete_it(
    stores: list[PostgresStore],
) -> None:
    for attempt in range(10):
        group = f"g{attempt}"
        done = await asyncio.gather(
            *(
                stores[part % 2].add_fragment(group, part, 4, f"p{part}", 1.0, contact=ALICE)
                for part in range(1, 5)  # each part at one of the two processes, at once
            )
        )
        wholes = [d for d in done if d is not None]
        assert wholes == [["p1", "p2", "p3", "p4"]], attempt  # never lost between the two


async def test_a_nul_character_is_kept_as_a_replacement_character(
    stores: list[PostgresStore],
) -> None:
    store = stores[0]
    record = MessageRecord(
        id="in-1",
        direction=Direction.INBOUND,
        line=LINE,
        contact=ALICE,
        text="a\x00b",
        status=MessageStatus.RECEIVED,
        provider="vonage",
        provider_message_id="v\x001",
    )
    assert await store.add_inbound(record)
    assert not await store.add_inbound(record)  # still a duplicate
    kept = await store.find_message("vonage", "v\x001")
    assert kept is not None and kept.text == "a\ufffdb"
    await store.erase_contact(ALICE)
    assert not await store.add_inbound(record)  # the tombstone matches it too


async def test_a_database_that_refuses_connections_is_one_clear_store_error() -> None:
    store = PostgresStore("postgresql://convo:hunter2@127.0.0.1:1/convo")
    with pytest.raises(StoreError) as info:
        await store.open()
    text = str(info.value)
    assert text.startswith("PostgreSQL store convo@127.0.0.1:1/convo: connect failed:")
    assert "hunter2" not in text and "\n" not in text
    assert not await store.ping() and not await store.writable()


async def test_pool_size_is_convos_option_not_a_server_setting(postgres_url: str) -> None:
    store = PostgresStore(f"{postgres_url}&pool_size=3")
    await store.open()
    try:
        held = asyncio.Event()
        release = asyncio.Event()
        keys = [ConversationKey(LINE, "sms", f"+3247000{n:04d}") for n in range(4)]

        async def hold(key: ConversationKey) -> None:
            async with store.lock(key):
                held.set()
                await release.wait()

        holders = [asyncio.create_task(hold(key)) for key in keys]
        await asyncio.wait_for(held.wait(), 5)
        await asyncio.sleep(0.2)
        assert store._cx.pool().get_size() == 3  # the fourth turn waits for a connection
        release.set()
        await asyncio.wait_for(asyncio.gather(*holders), 5)
    finally:
        await store.close()
