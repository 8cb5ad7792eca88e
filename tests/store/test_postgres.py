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
from convo.store import postgres_schema as sql
from convo.store.base import SendOutcome
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


async def test_a_turn_on_a_kept_connection_locks_with_its_first_read(
    stores: list[PostgresStore],
) -> None:
    """A connection kept between turns (in an empty transaction) takes the next turn's lock
    with that turn's opening read, and the read sees what the turn it waited for committed,
    including what was committed while it waited."""
    first, second = stores
    other = ConversationKey(LINE, "sms", "+32470000002")
    async with second.lock(other):
        await second.save_turn(Session(key=other, flow="f", flow_version="1", step="s", lang="nl"))
    assert len(second._cx._between_turns) == 1  # the next turn starts on it
    await first.add_inbound(inbound(1, "p-1"))
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with first.lock(KEY):
            assert [m.id for m in await first.unprocessed_of(KEY)] == ["in-1"]
            await first.save_turn(session("held"), inbound_id="in-1")
            await first.add_inbound(inbound(2, "p-2"))
            inside.set()
            await release.wait()

    async def next_turn() -> tuple[list[str], str | None]:
        async with second.lock(KEY):
            texts = [m.id for m in await second.unprocessed_of(KEY)]
            loaded, _ = await second.load_turn(KEY)
            return texts, None if loaded is None else loaded.step

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(inside.wait(), 5)
    waiter = asyncio.create_task(next_turn())
    await asyncio.sleep(0.3)
    assert not waiter.done()  # its first read waits for the lock
    release.set()
    await asyncio.wait_for(holder, 5)
    assert await asyncio.wait_for(waiter, 5) == (["in-2"], "held")


async def test_a_kept_connection_the_server_closed_costs_a_new_one(postgres_url: str) -> None:
    """A server that ends idle transactions (``idle_in_transaction_session_timeout``) closes
    the connections kept between turns; the next turn gets a new one and succeeds."""
    store = PostgresStore(f"{postgres_url}&idle_in_transaction_session_timeout=200")
    await store.open()
    try:
        await store.add_inbound(inbound(1, "p-1"))
        async with store.lock(KEY):
            await store.save_turn(session("first"))
        assert len(store._cx._between_turns) == 1
        await asyncio.sleep(0.8)  # the server closes it meanwhile
        async with store.lock(KEY):
            assert [m.id for m in await store.unprocessed_of(KEY)] == ["in-1"]
            await store.save_turn(session("second"), inbound_id="in-1")
        loaded = await store.get_session(KEY)
        assert loaded is not None and loaded.step == "second"
    finally:
        await store.close()


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
        inside = 0
        keys = [ConversationKey(LINE, "sms", f"+3247000{n:04d}") for n in range(4)]

        async def hold(key: ConversationKey) -> None:
            nonlocal inside
            async with store.lock(key):
                inside += 1
                held.set()
                await release.wait()

        holders = [asyncio.create_task(hold(key)) for key in keys]
        await asyncio.wait_for(held.wait(), 5)
        await asyncio.sleep(0.2)
        # Two turns hold a connection; the third is left for everything else, which
        # still answers while the other turns wait.
        assert inside == store._cx.turn_limit == 2
        assert await store.get_session(keys[0]) is None
        assert store._cx.pool().get_size() == 3
        release.set()
        await asyncio.wait_for(asyncio.gather(*holders), 5)
        assert inside == 4
    finally:
        await store.close()


def inbound(n: int, provider_id: str, contact: str = ALICE) -> MessageRecord:
    return MessageRecord(
        id=f"in-{n}",
        direction=Direction.INBOUND,
        line=LINE,
        contact=contact,
        text=f"text {n}",
        status=MessageStatus.RECEIVED,
        provider="vonage",
        provider_message_id=provider_id,
        created_at=1000.0 + n,
        updated_at=1000.0 + n,
    )


async def test_two_processes_claiming_due_timers_never_get_the_same_one(
    stores: list[PostgresStore],
) -> None:
    keys = [ConversationKey(LINE, "sms", f"+3247100{n:04d}") for n in range(300)]
    for n, key in enumerate(keys):
        s = Session(key=key, flow="f", flow_version="1", step="ask", lang="nl")
        s.timer_due, s.timer_step = 100.0 + n % 7, "ask"
        await stores[0].save_turn(s)

    async def claim_all(store: PostgresStore) -> list[ConversationKey]:
        got: list[ConversationKey] = []
        while batch := await store.claim_due_timers(200.0, limit=25):
            got += batch
        return got

    first, second = await asyncio.gather(*(claim_all(store) for store in stores))
    assert first and second  # both took part
    assert not set(first) & set(second)  # never the same timer twice
    assert len(first + second) == 300 and set(first + second) == set(keys)  # none left out
    # Claimed timers are due (due_timers reads them) but no one else's to claim...
    assert len(await stores[0].due_timers(200.0, limit=1000)) == 300
    assert await stores[1].claim_due_timers(250.0, limit=1000) == []
    # ... until the claim's lease ends (a process that died), or the session is saved.
    s = Session(key=keys[0], flow="f", flow_version="1", step="ask", lang="nl")
    s.timer_due, s.timer_step = 100.0, "ask"
    await stores[0].save_turn(s)
    assert await stores[1].claim_due_timers(250.0, limit=1000) == [keys[0]]
    again = await stores[1].claim_due_timers(200.0 + 61.0, limit=1000)
    assert set(again) == set(keys[1:])


async def test_a_turn_waiting_for_its_conversation_holds_no_connection(
    postgres_url: str,
) -> None:
    # Two connections: a turn holding the conversation takes one; the next turn of that
    # conversation in this process waits without one, so the other calls still get one.
    store = PostgresStore(f"{postgres_url}&pool_size=2")
    await store.open()
    try:
        inside, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with store.lock(KEY):
                inside.set()
                await release.wait()

        async def next_turn() -> None:
            async with store.lock(KEY):
                await store.save_turn(session("second"))

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(inside.wait(), 5)
        waiters = [asyncio.create_task(next_turn()) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert await asyncio.wait_for(store.add_inbound(inbound(1, "p1")), 5)
        assert not any(w.done() for w in waiters)
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, *waiters), 5)
        assert (await store.get_session(KEY)).step == "second"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_a_turn_reads_what_it_wrote_after_its_first_read(
    stores: list[PostgresStore],
) -> None:
    store = stores[0]
    await store.add_inbound(inbound(1, "p1"))
    async with store.lock(KEY):
        waiting = await store.unprocessed_of(KEY)  # also reads the session: none yet
        assert [m.id for m in waiting] == ["in-1"]
        await store.save_turn(session("saved"), inbound_id="in-1")
        await store.set_suppressed(LINE, ALICE, True)
        loaded, suppressed = await store.load_turn(KEY)  # not what the first read kept
        assert loaded is not None and loaded.step == "saved" and suppressed
    async with store.lock(KEY):
        assert await store.unprocessed_of(KEY) == []
        loaded, suppressed = await store.load_turn(KEY)
        assert loaded is not None and loaded.step == "saved" and suppressed


async def test_inbound_texts_stored_at_once_keep_one_of_each_provider_id(
    stores: list[PostgresStore],
) -> None:
    # 60 webhooks at once (they go to the database together): 12 provider ids, each sent
    # five times, some to each process; one of each is stored, the rest are duplicates.
    calls = [
        stores[n % 2].add_inbound(inbound(n, f"p{n % 12}", contact=f"+3247200{n % 12:04d}"))
        for n in range(60)
    ]
    stored = await asyncio.gather(*calls)
    assert sum(stored) == 12
    ids = [f"in-{n}" for n, fresh in enumerate(stored) if fresh]
    assert {(await stores[0].get_message(i)).provider_message_id for i in ids} == {  # type: ignore[union-attr]
        f"p{k}" for k in range(12)
    }
    # The same message twice at once: stored once, the other call told it is a duplicate.
    twice = await asyncio.gather(*(stores[0].add_inbound(inbound(99, "p99")) for _ in range(2)))
    assert sorted(twice) == [False, True]


async def test_outcomes_recorded_at_once_each_claim_their_own_recipients_next(
    stores: list[PostgresStore],
) -> None:
    # 20 recipients with three replies each, their first ones claimed; the outcomes of all
    # 20 sends are recorded at once (they go to the database together), with a 21st whose
    # caller asks no claim and one for a message that does not exist.
    store, other = stores
    people = [f"+3247300{k:04d}" for k in range(21)]
    await store.add_outbound(
        [outbound(10 * k + i, contact) for k, contact in enumerate(people) for i in range(3)]
    )
    for contact in people:
        assert await other.claim_next(LINE, contact, now=5000.0) is not None
    calls = [
        store.record_outcome(
            SendOutcome(f"out-{10 * k}", MessageStatus.SENT, "vonage", f"V-{k}"),
            claim_at=5001.0 + k,
            lease=60,
        )
        for k in range(20)
    ]
    calls.append(store.record_outcome(SendOutcome("out-200", MessageStatus.SENT, "vonage")))
    calls.append(
        store.record_outcome(SendOutcome("nope", MessageStatus.SENT, "vonage"), claim_at=1.0)
    )
    results = await asyncio.gather(*calls)
    for k, (updated, claimed) in enumerate(results[:20]):
        assert updated is not None and updated.id == f"out-{10 * k}"
        assert (updated.status, updated.provider_message_id) == (MessageStatus.SENT, f"V-{k}")
        # The recipient's next reply, leased from the caller's own claim time; not its third.
        assert claimed is not None and claimed.id == f"out-{10 * k + 1}"
        assert (claimed.status, claimed.attempts) == (MessageStatus.SENDING, 1)
        assert claimed.next_attempt_at == 5061.0 + k
        assert await store.get_message(claimed.id) == claimed
        assert (await store.get_message(f"out-{10 * k + 2}")).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    updated, nothing = results[20]
    assert updated is not None and updated.status is MessageStatus.SENT and nothing is None
    assert (await store.get_message("out-201")).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    assert results[21] == (None, None)


async def test_two_outcomes_for_one_recipient_at_once_are_recorded_one_after_the_other(
    stores: list[PostgresStore],
) -> None:
    # out-1 and out-2 are both being sent (out-1 leased until 5060, out-2 due again at
    # once); their outcomes arrive together, out-2's first. As if one after the other:
    # out-2's claim finds out-1 at the head, held, so takes nothing (never overtaking it);
    # out-1's then takes out-3.
    store = stores[0]
    await store.add_outbound([outbound(1), outbound(2), outbound(3)])
    assert (await store.claim_next(LINE, ALICE, now=5000.0, lease=60)).id == "out-1"  # type: ignore[union-attr]
    await store.update_message("out-2", status=MessageStatus.SENDING)
    second, first = await asyncio.gather(
        store.record_outcome(SendOutcome("out-2", MessageStatus.SENT, "vonage"), claim_at=5001.0),
        store.record_outcome(SendOutcome("out-1", MessageStatus.SENT, "vonage"), claim_at=5001.0),
    )
    assert second[0] is not None and second[0].status is MessageStatus.SENT
    assert second[1] is None
    assert first[0] is not None and first[0].status is MessageStatus.SENT
    assert first[1] is not None and first[1].id == "out-3"


async def test_an_outcome_that_leaves_its_message_pending_claims_it_again_when_due(
    stores: list[PostgresStore],
) -> None:
    # A "queued" outcome cannot move a message back (forward only): it stays "sending",
    # the head of its recipient's replies, and the claim takes it again once its lease
    # ended, as claim_next would; never the reply behind it.
    store = stores[0]
    await store.add_outbound([outbound(1), outbound(2)])
    assert (await store.claim_next(LINE, ALICE, now=5000.0, lease=60)).id == "out-1"  # type: ignore[union-attr]
    queued = SendOutcome("out-1", MessageStatus.QUEUED, "vonage", error="later")
    updated, claimed = await store.record_outcome(queued, claim_at=5010.0)
    assert updated is not None and updated.status is MessageStatus.SENDING and claimed is None
    updated, claimed = await store.record_outcome(queued, claim_at=6000.0, lease=60)
    assert claimed is not None and claimed.id == "out-1"
    assert (claimed.attempts, claimed.next_attempt_at) == (2, 6060.0)
    assert (await store.get_message("out-2")).status is MessageStatus.QUEUED  # type: ignore[union-attr]


async def test_the_outbox_batches_do_not_scan_a_table_that_grew_after_they_first_ran(
    postgres_url: str,
) -> None:
    # A prepared statement keeps the plan made for the table as it was when its connection
    # first ran it: made for a near-empty table, a join scans the whole table, however large
    # it grows. The outbox's batches are planned at each call instead. auto_explain (sent to
    # this client as notices) shows every plan run, the functions' inner statements too.
    store = PostgresStore(postgres_url)
    await store.open()
    connection = await asyncpg.connect(postgres_url)
    plans: list[str] = []
    try:
        await connection.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
            "SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice"
        )
        connection.add_log_listener(lambda _cx, message: plans.append(message.message))

        async def batches(n: int) -> None:
            # 40 recipients with two replies each: the first claimed, then sent.
            people = [f"+3247400{k:04d}" for k in range(n, n + 40)]
            await store.add_outbound(
                [
                    outbound(10 * k + i, contact)
                    for k, contact in enumerate(people, n)
                    for i in (0, 1)
                ]
            )
            lines, ends = [LINE] * 40, [9e9 + 60] * 40
            await connection.fetch(sql.CLAIM_NEXT_BATCH, lines, people, [9e9] * 40, ends, 1.0, 1)
            sent = ["sent", True, 2, "vonage", None, 1, None, None, 1.0]
            await connection.fetch(
                sql.RECORD_OUTCOMES,
                *([value] * 40 for value in sent),
                [f"out-{10 * k}" for k in range(n, n + 40)],
                [9e9] * 40,
                ends,
                1.0,
                1,
            )

        for n in range(0, 400, 40):  # more runs than PostgreSQL needs to keep a generic plan
            await batches(n)
        await connection.execute(
            "INSERT INTO messages (id, direction, line, contact, channel, text, status, "
            "provider, provider_message_id, segments, media_urls, processed, created_at, "
            "updated_at) SELECT 'old-' || n, 'outbound', $1, '+3247' || n, 'sms', 'x', "
            "'sent', 'vonage', 'old-' || n, 1, '[]', 1, n, n "
            "FROM generate_series(1, 20000) AS n",
            LINE,
        )
        plans.clear()
        await batches(1000)
    finally:
        await connection.close()
        await store.close()
    assert plans and any("messages_pkey" in plan for plan in plans)
    assert not [plan for plan in plans if "Seq Scan on messages" in plan]
