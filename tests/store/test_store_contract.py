"""One contract suite, run against every store backend: memory, SQLite in tmp_path, and
PostgreSQL in a schema of its own (``postgres_url`` in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.exceptions import StoreError
from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store import MessageQuery, Store
from convo.store.base import ErasedContact, SendOutcome
from tests.conftest import BACKENDS, open_backend

LINE = "+32470000100"
ALICE = "+32470000001"
BOB = "+32470000002"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        assert isinstance(backend, Store)
        yield backend


def session(contact: str = ALICE, *, channel: str = "sms", line: str = LINE) -> Session:
    return Session(
        key=ConversationKey(line, channel, contact),  # type: ignore[arg-type]  # test data
        flow="appointment",
        flow_version="3",
        step="confirm",
        lang="nl",
        params={"patient": "An", "date": "2026-12-01"},
        created_at=1000.0,
        updated_at=1001.0,
    )


def inbound(
    n: int, *, contact: str = ALICE, pid: str | None = None, at: float = 0
) -> MessageRecord:
    return MessageRecord(
        id=f"in-{n}",
        direction=Direction.INBOUND,
        line=LINE,
        contact=contact,
        text=f"text {n}",
        status=MessageStatus.RECEIVED,
        provider="vonage",
        provider_message_id=f"v-{n}" if pid is None else pid,
        created_at=at or 2000.0 + n,
        updated_at=at or 2000.0 + n,
    )


def outbound(n: int, *, contact: str = ALICE, at: float = 0) -> MessageRecord:
    return MessageRecord(
        id=f"out-{n}",
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=contact,
        text=f"reply {n}",
        status=MessageStatus.QUEUED,
        created_at=at or 3000.0 + n,
        updated_at=at or 3000.0 + n,
    )


# -- sessions ---------------------------------------------------------------------------------


async def test_session_round_trips_every_field(store: Store) -> None:
    s = session()
    s.slots = {"confirmed": True, "when": {"day": "maandag", "hours": [9, 10.5]}, "naam": "Zoë 🦷"}
    s.attempts = 2
    s.status = ConversationStatus.HANDOFF
    s.contact_name = "Zoë"
    s.timer_due = 5000.5
    s.timer_step = "confirm"
    await store.save_turn(s)
    loaded = await store.get_session(s.key)
    assert loaded == s
    assert dataclasses.asdict(loaded) == dataclasses.asdict(s)  # nested values too


async def test_unknown_session_is_none(store: Store) -> None:
    assert await store.get_session(ConversationKey(LINE, "sms", BOB)) is None


async def test_loaded_session_is_a_copy(store: Store) -> None:
    await store.save_turn(session())
    loaded = await store.get_session(session().key)
    assert loaded is not None
    loaded.step = "elsewhere"
    loaded.slots["x"] = 1
    loaded.params["patient"] = "Bo"
    again = await store.get_session(session().key)
    assert again == session()


async def test_saved_session_is_a_copy(store: Store) -> None:
    s = session()
    await store.save_turn(s)
    s.slots["late"] = True
    loaded = await store.get_session(s.key)
    assert loaded is not None and "late" not in loaded.slots


async def test_save_turn_replaces_the_session(store: Store) -> None:
    await store.save_turn(session())
    changed = session()
    changed.step, changed.attempts, changed.slots = "pick_date", 1, {"confirmed": False}
    await store.save_turn(changed)
    assert await store.get_session(changed.key) == changed


async def test_non_json_slots_fail_clearly(store: Store) -> None:
    s = session()
    s.slots["when"] = {1, 2}
    with pytest.raises(StoreError, match="slots must be JSON data"):
        await store.save_turn(s)
    assert await store.get_session(s.key) is None


async def test_sessions_of_a_contact(store: Store) -> None:
    await store.save_turn(session(ALICE, channel="voice"))
    await store.save_turn(session(ALICE, line="+32470000200"))
    await store.save_turn(session(BOB))
    found = await store.sessions_of(ALICE)
    assert sorted((s.key.line, s.key.channel) for s in found) == [
        (LINE, "voice"),
        ("+32470000200", "sms"),
    ]
    assert await store.sessions_of("+32499999999") == []


# -- save_turn atomicity --------------------------------------------------------------------


async def test_save_turn_marks_inbound_and_queues_replies(store: Store) -> None:
    assert await store.add_inbound(inbound(1))
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-1"]
    await store.save_turn(session(), inbound_id="in-1", outbound=[outbound(1), outbound(2)])
    assert await store.unprocessed_inbound() == []
    assert [m.id for m in await store.pending_outbound()] == ["out-1", "out-2"]
    assert await store.get_session(session().key) == session()


async def test_failed_save_turn_changes_nothing(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    assert await store.add_inbound(inbound(1))
    # out-1 is taken: the whole turn must be refused, not only that message.
    with pytest.raises(StoreError, match="out-1"):
        await store.save_turn(session(), inbound_id="in-1", outbound=[outbound(2), outbound(1)])
    assert await store.get_session(session().key) is None
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-1"]
    assert [m.id for m in await store.pending_outbound()] == ["out-1"]


async def test_save_turn_with_unknown_inbound_id_still_saves(store: Store) -> None:
    await store.save_turn(session(), inbound_id="never-stored", outbound=[outbound(1)])
    assert await store.get_session(session().key) == session()
    assert [m.id for m in await store.pending_outbound()] == ["out-1"]


# -- timers ------------------------------------------------------------------------------------


async def test_due_timers_oldest_first_with_limit(store: Store) -> None:
    dues = {"+1": 50.0, "+2": 10.0, "+3": 30.0, "+4": 99.0, "+5": None}
    for contact, due in dues.items():
        s = session(contact)
        s.timer_due = due
        await store.save_turn(s)
    ended = session("+6")
    ended.timer_due, ended.status = 5.0, ConversationStatus.ENDED
    await store.save_turn(ended)
    due_now = await store.due_timers(now=50.0)
    assert [k.contact for k in due_now] == ["+2", "+3", "+1"]
    assert [k.contact for k in await store.due_timers(now=50.0, limit=2)] == ["+2", "+3"]
    assert await store.due_timers(now=9.0) == []
    assert due_now[0] == ConversationKey(LINE, "sms", "+2")


# -- message log ------------------------------------------------------------------------------


async def test_add_inbound_dedupes_on_provider_id(store: Store) -> None:
    assert await store.add_inbound(inbound(1, pid="abc"))
    retry = dataclasses.replace(inbound(2, pid="abc"))
    assert not await store.add_inbound(retry)
    assert await store.get_message("in-2") is None
    other_provider = dataclasses.replace(inbound(3, pid="abc"), provider="telefoon_sms")
    assert await store.add_inbound(other_provider)
    assert not await store.add_inbound(inbound(1, pid="other"))  # same internal id
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-1", "in-3"]


async def test_add_inbound_does_not_dedupe_empty_provider_ids(store: Store) -> None:
    assert await store.add_inbound(inbound(1, pid=""))
    assert await store.add_inbound(inbound(2, pid=""))
    assert len(await store.unprocessed_inbound()) == 2


async def test_outbound_may_share_an_inbound_provider_id(store: Store) -> None:
    assert await store.add_inbound(inbound(1, pid="shared"))
    await store.add_outbound([outbound(1), outbound(2)])
    await store.update_message("out-1", provider="vonage", provider_message_id="shared")
    await store.update_message("out-2", provider="vonage", provider_message_id="shared")
    found = await store.find_message("vonage", "shared")
    assert found is not None and found.id == "out-2"  # outbound first, then newest


async def test_add_inbound_refuses_outbound(store: Store) -> None:
    with pytest.raises(ValueError, match="outbound"):
        await store.add_inbound(outbound(1))


async def test_unprocessed_and_mark_processed(store: Store) -> None:
    for n in (3, 1, 2):
        await store.add_inbound(inbound(n))
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-1", "in-2", "in-3"]
    assert [m.id for m in await store.unprocessed_inbound(limit=1)] == ["in-1"]
    await store.mark_processed("in-2")
    await store.mark_processed("no-such-id")
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-1", "in-3"]


async def test_pending_outbound_follows_status(store: Store) -> None:
    await store.add_outbound([outbound(2), outbound(1), outbound(3)])
    assert [m.id for m in await store.pending_outbound()] == ["out-1", "out-2", "out-3"]
    await store.update_message("out-1", status=MessageStatus.SENDING)
    await store.update_message("out-2", status=MessageStatus.SENT)
    assert [m.id for m in await store.pending_outbound()] == ["out-1", "out-3"]
    assert [m.id for m in await store.pending_outbound(limit=1)] == ["out-1"]
    await store.update_message("out-2", status=MessageStatus.QUEUED)  # requeued for a retry
    assert [m.id for m in await store.pending_outbound()] == ["out-1", "out-2", "out-3"]


async def test_outbox_depth_counts_queued_and_sending_due_or_not(store: Store) -> None:
    assert await store.outbox_depth() == 0
    await store.add_outbound([outbound(1), outbound(2), outbound(3), outbound(4)])
    await store.update_message("out-1", status=MessageStatus.SENDING)
    await store.update_message("out-2", status=MessageStatus.SENT)
    await store.update_message("out-3", status=MessageStatus.DEAD)
    claimed = await store.claim_next(LINE, ALICE, time.time())
    assert claimed is not None and claimed.id == "out-1"
    await store.defer_message("out-1", until=time.time() + 3600, error="retrying: down")
    assert await store.outbox_depth() == 2  # out-1 waiting out a backoff, out-4 queued


async def test_update_message_changes_only_given_fields(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    before = await store.get_message("out-1")
    updated = await store.update_message(
        "out-1",
        status=MessageStatus.SENT,
        provider="vonage",
        provider_message_id="v-77",
        segments=2,
        price=0.0333,
    )
    assert updated is not None and before is not None
    assert (updated.status, updated.provider, updated.provider_message_id) == (
        MessageStatus.SENT,
        "vonage",
        "v-77",
    )
    assert (updated.segments, updated.price, updated.error) == (2, 0.0333, None)
    assert (updated.text, updated.created_at) == (before.text, before.created_at)
    assert updated.updated_at > before.updated_at
    failed = await store.update_message("out-1", status=MessageStatus.FAILED, error="bad number")
    assert failed is not None
    assert (failed.status, failed.error, failed.price) == (
        MessageStatus.FAILED,
        "bad number",
        0.0333,
    )
    assert await store.get_message("out-1") == failed
    assert await store.update_message("nope", status=MessageStatus.SENT) is None


async def test_forward_only_update_never_moves_a_status_back(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    steps = [
        (MessageStatus.SENDING, MessageStatus.SENDING),
        (MessageStatus.QUEUED, MessageStatus.SENDING),  # back: ignored
        (MessageStatus.DELIVERED, MessageStatus.DELIVERED),  # a report may overtake "sent"
        (MessageStatus.SENT, MessageStatus.DELIVERED),  # the late "sent": ignored
        (MessageStatus.FAILED, MessageStatus.DELIVERED),  # final stays final
    ]
    for given, expected in steps:
        updated = await store.update_message(
            "out-1", status=given, provider_message_id=f"p-{given}", forward_only=True
        )
        assert updated is not None and updated.status is expected, given
        assert updated.provider_message_id == f"p-{given}"  # other fields are always written
    assert (await store.update_message("out-1", status=MessageStatus.QUEUED)) is not None
    assert (await store.get_message("out-1")).status is MessageStatus.QUEUED  # type: ignore[union-attr]


async def test_find_message_by_provider_id(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    await store.update_message("out-1", provider="vonage", provider_message_id="v-9")
    found = await store.find_message("vonage", "v-9")
    assert found is not None and found.id == "out-1"
    assert await store.find_message("telefoon_sms", "v-9") is None
    assert await store.find_message("vonage", "v-10") is None
    assert await store.find_message("", "") is None


async def test_message_fields_round_trip(store: Store) -> None:
    record = dataclasses.replace(
        inbound(1),
        text="Zoë zegt: ja 👍",
        channel="voice",
        media_urls=("https://x/a.jpg", "https://x/b.jpg"),
        segments=3,
        price=0.05,
        error="none",
    )
    await store.add_inbound(record)
    assert await store.get_message("in-1") == record
    queued = dataclasses.replace(outbound(1), metadata={"gdpr_consent_ref": "c-1"})
    await store.add_outbound([queued])
    assert await store.get_message("out-1") == queued
    [pending] = await store.pending_outbound()
    assert pending.metadata == {"gdpr_consent_ref": "c-1"}
    sent = await store.update_message("out-1", status=MessageStatus.SENT)
    assert sent is not None and sent.metadata == {"gdpr_consent_ref": "c-1"}


async def test_delivered_parts_count_once_and_go_with_the_message(store: Store) -> None:
    await store.add_outbound([outbound(1, contact=ALICE), outbound(2, contact=BOB)])
    assert await store.add_delivered_part("out-1", "p1") == 1
    assert await store.add_delivered_part("out-1", "p1") == 1  # a repeated receipt
    assert await store.add_delivered_part("out-1", "p2") == 2
    assert await store.add_delivered_part("out-2", "p1") == 1  # per message
    with pytest.raises(StoreError, match="no message out-9"):
        await store.add_delivered_part("out-9", "p1")
    await store.erase_contact(ALICE)
    await store.add_outbound([outbound(1, contact=ALICE)])  # the same id, logged again
    assert await store.add_delivered_part("out-1", "p2") == 1  # the old parts went


async def test_list_messages_filters_pages_and_totals(store: Store) -> None:
    await store.add_inbound(inbound(1, contact=ALICE, at=100))
    await store.add_inbound(inbound(2, contact=BOB, at=200))
    await store.add_outbound([outbound(1, contact=ALICE, at=300), outbound(2, contact=BOB, at=400)])
    await store.add_outbound([outbound(3, contact=ALICE, at=400)])  # same time: later wins
    await store.update_message("out-1", status=MessageStatus.DELIVERED)

    everything, total = await store.list_messages(MessageQuery())
    assert total == 5
    assert [m.id for m in everything] == ["out-3", "out-2", "out-1", "in-2", "in-1"]

    page2, total = await store.list_messages(MessageQuery(page=2, page_size=2))
    assert ([m.id for m in page2], total) == (["out-1", "in-2"], 5)
    page4, total = await store.list_messages(MessageQuery(page=4, page_size=2))
    assert (page4, total) == ([], 5)

    inbound_only, total = await store.list_messages(MessageQuery(direction=Direction.INBOUND))
    assert ([m.id for m in inbound_only], total) == (["in-2", "in-1"], 2)

    delivered, total = await store.list_messages(MessageQuery(status=MessageStatus.DELIVERED))
    assert ([m.id for m in delivered], total) == (["out-1"], 1)

    alice, total = await store.list_messages(MessageQuery(number=ALICE, page_size=2))
    assert ([m.id for m in alice], total) == (["out-3", "out-1"], 3)

    alice_queued, total = await store.list_messages(
        MessageQuery(number=ALICE, direction=Direction.OUTBOUND, status=MessageStatus.QUEUED)
    )
    assert ([m.id for m in alice_queued], total) == (["out-3"], 1)


async def test_list_messages_refuses_bad_pages(store: Store) -> None:
    with pytest.raises(ValueError, match="page must be 1 or more"):
        await store.list_messages(MessageQuery(page=0))
    with pytest.raises(ValueError, match="page_size"):
        await store.list_messages(MessageQuery(page_size=0))


async def test_add_outbound_refuses_taken_ids(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    with pytest.raises(StoreError, match="out-1"):
        await store.add_outbound([outbound(2), outbound(1)])
    assert await store.get_message("out-2") is None


# -- suppressions -----------------------------------------------------------------------------


async def test_suppressions_are_per_line(store: Store) -> None:
    assert not await store.is_suppressed(LINE, ALICE)
    await store.set_suppressed(LINE, ALICE, True)
    await store.set_suppressed(LINE, ALICE, True)  # idempotent
    assert await store.is_suppressed(LINE, ALICE)
    assert not await store.is_suppressed("+32470000200", ALICE)
    assert not await store.is_suppressed(LINE, BOB)
    await store.set_suppressed(LINE, ALICE, False)
    await store.set_suppressed(LINE, ALICE, False)
    assert not await store.is_suppressed(LINE, ALICE)


# -- conversation lock ------------------------------------------------------------------------


async def test_lock_serialises_the_turns_of_one_conversation(store: Store) -> None:
    key = session(ALICE).key
    log: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def turn(name: str, hold: asyncio.Event | None) -> None:
        async with store.lock(key):
            log.append(f"{name} in")
            entered.set()
            if hold is not None:
                await hold.wait()
            else:
                await asyncio.sleep(0)
            log.append(f"{name} out")

    first = asyncio.create_task(turn("first", release))
    try:
        await asyncio.wait_for(entered.wait(), timeout=5)
        second = asyncio.create_task(turn("second", None))
        # Plenty of chances for the second turn to barge in (a shared store's lock is a
        # round trip away: give it time, not just loop iterations).
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert log == ["first in"]
    finally:
        release.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert log == ["first in", "first out", "second in", "second out"]


async def test_lock_lets_other_conversations_run(store: Store) -> None:
    alice, bob = session(ALICE).key, session(BOB).key
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold_alice() -> None:
        async with store.lock(alice):
            entered.set()
            await release.wait()

    held = asyncio.create_task(hold_alice())
    try:
        await asyncio.wait_for(entered.wait(), timeout=5)
        async with asyncio.timeout(5):  # would hang if Bob waited for Alice's turn
            async with store.lock(bob):
                assert not held.done()  # Alice's turn still holds her lock
    finally:
        release.set()
    await asyncio.wait_for(held, timeout=5)
    async with asyncio.timeout(5):  # and Alice's lock is free again afterwards
        async with store.lock(alice):
            pass


# -- fragments and seen tokens ----------------------------------------------------------------


async def test_fragments_join_out_of_order_parts(store: Store) -> None:
    assert await store.add_fragment("ref-1", 3, 3, "drie", now=10, contact=ALICE) is None
    assert await store.add_fragment("ref-1", 1, 3, "een ", now=11, contact=ALICE) is None
    assert (
        await store.add_fragment("ref-1", 1, 3, "een ", now=12, contact=ALICE) is None
    )  # provider retry
    assert await store.add_fragment("ref-2", 1, 2, "other", now=12, contact=ALICE) is None
    assert await store.add_fragment("ref-1", 2, 3, "twee ", now=13, contact=ALICE) == [
        "een ",
        "twee ",
        "drie",
    ]
    # Until it is finished the group stays: a retried part joins it again, kept once.
    again = await store.add_fragment("ref-1", 2, 3, "TWEE ", now=14, contact=ALICE)
    assert again == ["een ", "twee ", "drie"]
    await store.finish_fragments("ref-1")
    await store.finish_fragments("ref-1")  # gone already: nothing
    # Finished: a late retry starts a new group instead of completing twice.
    assert await store.add_fragment("ref-1", 2, 3, "twee ", now=15, contact=ALICE) is None


async def test_fragment_part_numbers_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="part 4 of 3"):
        await store.add_fragment("g", 4, 3, "x", now=1, contact=ALICE)
    with pytest.raises(ValueError, match="part 0 of 2"):
        await store.add_fragment("g", 0, 2, "x", now=1, contact=ALICE)
    await store.add_fragment("g", 1, 2, "a", now=1, contact=ALICE)
    assert (
        await store.add_fragment("g", 3, 3, "c", now=1, contact=ALICE) is None
    )  # group says 2 parts
    assert await store.add_fragment("g", 2, 2, "b", now=1, contact=ALICE) == ["a", "b"]


async def test_expired_fragments_return_partial_groups_in_order(store: Store) -> None:
    await store.add_fragment("late", 2, 3, "B", now=20, contact=ALICE)
    await store.add_fragment("early", 3, 4, "z", now=10, contact=ALICE)
    await store.add_fragment("early", 1, 4, "x", now=30, contact=ALICE)
    await store.add_fragment("fresh", 1, 2, "f", now=100, contact=ALICE)
    expired = await store.expired_fragments(older_than=50)
    assert expired == [("early", ["x", "z"]), ("late", ["B"])]
    assert await store.expired_fragments(older_than=50) == expired  # until finished
    await store.finish_fragments("early")
    assert await store.expired_fragments(older_than=50) == [("late", ["B"])]
    assert await store.add_fragment("fresh", 2, 2, "g", now=101, contact=ALICE) == ["f", "g"]


async def test_seen_tokens(store: Store) -> None:
    assert not await store.was_seen("enco", "msg-1")
    assert not await store.was_seen("enco", "msg-1")  # looking records nothing
    assert not await store.seen("enco", "msg-1", now=1)
    assert await store.was_seen("enco", "msg-1")
    assert await store.seen("enco", "msg-1", now=2)
    assert not await store.seen("other", "msg-1", now=3)
    assert not await store.seen("enco", "msg-2", now=10)


async def test_ping(store: Store) -> None:
    assert await store.ping()


async def test_prune_seen_forgets_old_tokens_and_keeps_recent_ones(store: Store) -> None:
    assert not await store.seen("enco", "old", now=1)
    assert not await store.seen("part:vonage", "old-too", now=49.5)
    assert not await store.seen("enco", "at-the-limit", now=50)
    assert not await store.seen("enco", "new", now=100)
    assert await store.prune_seen(older_than=50) == 2  # across namespaces; 50 is not before 50
    assert await store.prune_seen(older_than=50) == 0
    # A pruned token is unseen again; the others are still seen.
    assert not await store.seen("enco", "old", now=101)
    assert not await store.seen("part:vonage", "old-too", now=101)
    assert await store.seen("enco", "at-the-limit", now=102)
    assert await store.seen("enco", "new", now=102)


async def test_a_token_seen_again_keeps_its_first_time(store: Store) -> None:
    assert not await store.seen("enco", "t", now=10)
    assert await store.seen("enco", "t", now=90)  # a retry does not extend its retention
    assert await store.prune_seen(older_than=50) == 1
    assert not await store.seen("enco", "t", now=91)


async def test_prune_seen_on_an_empty_store(store: Store) -> None:
    assert await store.prune_seen(older_than=1e12) == 0


# -- erasure (GDPR) ----------------------------------------------------------------------------


# A name in the form convo.intake happens to give its groups, Alice's number third: the
# store must not read it (the group is Bob's because add_fragment said so).
NAMED_LIKE_ALICES = json.dumps(["vonage", LINE, ALICE, "sms", "7", 3])


async def test_erase_contact_forgets_one_contact_and_keeps_the_others(store: Store) -> None:
    ended = session(ALICE, line="+32470000200")
    ended.status = ConversationStatus.ENDED
    for s in (session(ALICE), session(ALICE, channel="voice"), ended, session(BOB)):
        await store.save_turn(s)
    for record in (inbound(1), inbound(2), inbound(10, contact=BOB)):
        assert await store.add_inbound(record)
    await store.mark_processed("in-1")
    await store.add_outbound([outbound(1), outbound(2), outbound(3), outbound(10, contact=BOB)])
    await store.update_message("out-2", provider="telefoon_sms", provider_message_id="t-2")
    await store.update_message("out-3", provider="vonage", provider_message_id="v-1")  # twice
    await store.update_message("out-10", provider="telefoon_sms", provider_message_id="t-10")
    await store.set_suppressed(LINE, ALICE, True)
    await store.add_fragment("long-7", 1, 3, "een", now=10, contact=ALICE)
    await store.add_fragment("long-7", 3, 3, "drie", now=11, contact=ALICE)
    await store.add_fragment(NAMED_LIKE_ALICES, 2, 3, "bob", now=12, contact=BOB)

    erased = await store.erase_contact(ALICE)

    assert erased == ErasedContact(
        sessions=3,
        messages=5,
        fragments=2,
        provider_copies=(("vonage", "v-1"), ("vonage", "v-2"), ("telefoon_sms", "t-2")),
    )
    assert await store.sessions_of(ALICE) == []
    assert await store.list_messages(MessageQuery(number=ALICE)) == ([], 0)
    assert await store.get_message("in-1") is None
    assert await store.find_message("telefoon_sms", "t-2") is None
    assert await store.is_suppressed(LINE, ALICE)  # the STOP list outlives erasure
    # Bob is untouched, queues included.
    assert [s.key for s in await store.sessions_of(BOB)] == [session(BOB).key]
    assert [m.id for m in (await store.list_messages(MessageQuery()))[0]] == ["out-10", "in-10"]
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-10"]
    assert [m.id for m in await store.pending_outbound()] == ["out-10"]
    assert await store.find_message("telefoon_sms", "t-10") is not None
    assert await store.expired_fragments(older_than=100) == [(NAMED_LIKE_ALICES, ["bob"])]
    # Of Alice only tombstones are left: a replay of her inbound message is a duplicate, a
    # new message of hers is taken, and erasing again finds that one alone, then nothing.
    assert not await store.add_inbound(dataclasses.replace(inbound(1), id="in-replay"))
    assert await store.add_inbound(inbound(3))
    assert await store.erase_contact(ALICE) == ErasedContact(
        messages=1, provider_copies=(("vonage", "v-3"),)
    )
    assert await store.erase_contact(ALICE) == ErasedContact()


async def test_erase_unknown_contact_erases_nothing(store: Store) -> None:
    await store.save_turn(session(BOB), outbound=[outbound(1, contact=BOB)])
    assert await store.add_inbound(inbound(1, contact=BOB))
    await store.add_fragment("long-1", 1, 2, "a", now=1, contact=BOB)
    erased = await store.erase_contact("+32499999999")
    assert erased == ErasedContact(0, 0, 0, ())
    assert len(await store.sessions_of(BOB)) == 1
    assert (await store.list_messages(MessageQuery(number=BOB)))[1] == 2
    assert await store.expired_fragments(older_than=100) == [("long-1", ["a"])]


async def test_a_fragment_group_is_the_contact_its_first_part_named(store: Store) -> None:
    await store.add_fragment("long-1", 1, 3, "een", now=1, contact=ALICE)
    await store.add_fragment("long-1", 2, 3, "twee", now=2, contact=BOB)  # joins Alice's group
    assert await store.erase_contact(BOB) == ErasedContact()
    assert await store.erase_contact(ALICE) == ErasedContact(fragments=2)
    assert await store.expired_fragments(older_than=100) == []


# -- tombstones: erased inbound ids stay duplicates for the retention ------------------------


def telefoon(n: int, pid: str, *, contact: str = ALICE) -> MessageRecord:
    """An inbound Telefoon SMS message: ``n`` names it, ``pid`` is the provider's id."""
    return dataclasses.replace(inbound(n, contact=contact, pid=pid), provider="telefoon_sms")


async def test_a_replay_of_an_erased_inbound_message_is_a_duplicate(store: Store) -> None:
    assert await store.add_inbound(telefoon(1, "SM1"))
    await store.mark_processed("in-1")
    assert await store.add_inbound(telefoon(2, "SM2"))  # erased before its turn ran
    await store.erase_contact(ALICE)

    # The same provider ids again, as a replayed webhook brings them (with fresh ids of
    # ours): refused as if the messages were still in the log, and nothing stored.
    assert not await store.add_inbound(telefoon(11, "SM1"))
    assert not await store.add_inbound(telefoon(12, "SM2", contact=BOB))  # whatever it claims
    assert await store.list_messages(MessageQuery()) == ([], 0)
    assert await store.unprocessed_inbound() == []
    # Only that pair is dead: the same id from another provider, and new ids, are taken.
    assert await store.add_inbound(inbound(3, pid="SM1"))  # vonage's SM1
    assert await store.add_inbound(telefoon(4, "SM4"))
    assert await store.add_inbound(telefoon(5, ""))  # no provider id: never a duplicate
    assert [m.id for m in await store.unprocessed_inbound()] == ["in-3", "in-4", "in-5"]


async def test_erased_outbound_ids_leave_no_tombstone(store: Store) -> None:
    # Nothing from outside creates an outbound message, and an inbound message may carry
    # an outbound one's id: the log takes it, and so it does after erasure.
    await store.add_outbound([outbound(1)])
    await store.update_message("out-1", provider="vonage", provider_message_id="shared")
    await store.erase_contact(ALICE)
    assert await store.add_inbound(inbound(1, pid="shared"))


async def test_tombstones_are_pruned_with_the_seen_tokens(store: Store) -> None:
    assert await store.add_inbound(telefoon(1, "SM1"))
    assert await store.add_inbound(telefoon(2, "SM2"))
    before = time.time()
    assert not await store.seen("part:vonage", "p-1", now=before - 10)
    await store.erase_contact(ALICE)
    after = time.time()

    # Pruning what is older than the erasure forgets the token alone: the tombstones
    # count from the erasure, not from the messages' arrival (2001, 2002).
    assert await store.prune_seen(older_than=before) == 1
    assert not await store.add_inbound(telefoon(11, "SM1"))
    # Once the retention since the erasure is over, the ids are new again (the window the
    # README states).
    assert await store.prune_seen(older_than=after + 1) == 2
    assert await store.prune_seen(older_than=after + 1) == 0
    assert await store.add_inbound(telefoon(11, "SM1"))
    assert await store.add_inbound(telefoon(12, "SM2"))


async def test_a_pruned_then_erased_again_id_is_tombstoned_again(store: Store) -> None:
    assert await store.add_inbound(telefoon(1, "SM1"))
    await store.erase_contact(ALICE)
    await store.prune_seen(older_than=time.time() + 1)
    assert await store.add_inbound(telefoon(2, "SM1"))  # accepted again: the window's end
    await store.erase_contact(ALICE)
    assert not await store.add_inbound(telefoon(3, "SM1"))


# -- the outbox's queue: claims, backoff, dead letters -----------------------------------------


async def test_claim_next_takes_the_recipients_oldest_message_once(store: Store) -> None:
    await store.add_outbound([outbound(2), outbound(1), outbound(3, contact=BOB)])
    claimed = await store.claim_next(LINE, ALICE, now=5000.0, lease=60)
    assert claimed is not None and claimed.id == "out-1"  # oldest by created_at, not by log
    assert (claimed.status, claimed.attempts, claimed.next_attempt_at) == (
        MessageStatus.SENDING,
        1,
        5060.0,
    )
    assert await store.get_message("out-1") == claimed
    # Held: nobody else gets it, and the recipient's later message waits behind it.
    assert await store.claim_next(LINE, ALICE, now=5059.0) is None
    assert (await store.get_message("out-2")).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    # Other recipients are not held up.
    bob = await store.claim_next(LINE, BOB, now=5000.0)
    assert bob is not None and bob.id == "out-3"
    assert await store.claim_next(LINE, "+32470000999", now=5000.0) is None
    assert await store.claim_next("+32470000777", ALICE, now=5000.0) is None  # another line


async def test_a_lapsed_claim_can_be_taken_over(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    await store.claim_next(LINE, ALICE, now=5000.0, lease=60)
    again = await store.claim_next(LINE, ALICE, now=5060.0, lease=60)  # its sender died
    assert again is not None and again.id == "out-1"
    assert (again.attempts, again.next_attempt_at) == (2, 5120.0)


async def test_after_a_send_the_next_claim_is_the_next_message(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2)])
    first = await store.claim_next(LINE, ALICE, now=5000.0)
    assert first is not None
    await store.update_message(first.id, status=MessageStatus.SENT, forward_only=True)
    second = await store.claim_next(LINE, ALICE, now=5000.0)
    assert second is not None and second.id == "out-2"
    await store.update_message(second.id, status=MessageStatus.FAILED, forward_only=True)
    assert await store.claim_next(LINE, ALICE, now=5000.0) is None


async def test_recording_an_outcome_claims_the_recipients_next_message(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2), outbound(3, contact=BOB)])
    first = await store.claim_next(LINE, ALICE, now=5000.0)
    assert first is not None
    sent = SendOutcome(first.id, MessageStatus.SENT, "vonage", "V-1", segments=2, price=0.1)
    updated, claimed = await store.record_outcome(sent, claim_at=5001.0, lease=60)
    assert updated is not None and updated == await store.get_message("out-1")
    assert (updated.status, updated.provider, updated.provider_message_id) == (
        MessageStatus.SENT,
        "vonage",
        "V-1",
    )
    assert (updated.segments, updated.price) == (2, 0.1)
    # The same recipient's next message, claimed as claim_next claims it; not Bob's.
    assert claimed is not None and claimed.id == "out-2"
    assert (claimed.status, claimed.attempts, claimed.next_attempt_at) == (
        MessageStatus.SENDING,
        1,
        5061.0,
    )
    assert await store.get_message("out-2") == claimed
    assert (await store.get_message("out-3")).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    # Nothing left for Alice: recorded, nothing claimed.
    failed = SendOutcome(claimed.id, MessageStatus.FAILED, "vonage", error="rejected")
    updated, nothing = await store.record_outcome(failed, claim_at=5002.0)
    assert updated is not None and updated.status is MessageStatus.FAILED
    assert updated.error == "rejected" and nothing is None


async def test_recording_an_outcome_is_forward_only_and_claims_only_when_asked(
    store: Store,
) -> None:
    await store.add_outbound([outbound(1), outbound(2)])
    first = await store.claim_next(LINE, ALICE, now=5000.0)
    assert first is not None
    # A delivery report got there first: the send's "sent" does not undo "delivered".
    await store.update_message(first.id, status=MessageStatus.DELIVERED, forward_only=True)
    sent = SendOutcome(first.id, MessageStatus.SENT, "vonage", "V-1")
    updated, claimed = await store.record_outcome(sent)
    assert updated is not None and updated.status is MessageStatus.DELIVERED
    assert updated.provider_message_id == "V-1" and claimed is None
    assert (await store.get_message("out-2")).status is MessageStatus.QUEUED  # type: ignore[union-attr]
    # An unknown message: nothing recorded, nothing claimed.
    unknown = SendOutcome("nope", MessageStatus.SENT, "vonage", "V-2")
    assert await store.record_outcome(unknown, claim_at=5000.0) == (None, None)
    assert (await store.get_message("out-2")).status is MessageStatus.QUEUED  # type: ignore[union-attr]


async def test_recording_an_outcome_never_claims_a_held_message(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2)])
    first = await store.claim_next(LINE, ALICE, now=5000.0)
    assert first is not None
    sent = SendOutcome(first.id, MessageStatus.SENT, "vonage", "V-1")
    _, second = await store.record_outcome(sent, claim_at=5001.0, lease=60)
    assert second is not None and second.id == "out-2"
    # The same outcome recorded again (a retried write) claims nothing: out-2 is held.
    updated, again = await store.record_outcome(sent, claim_at=5002.0)
    assert updated is not None and updated.status is MessageStatus.SENT and again is None
    assert (await store.get_message("out-2")).attempts == 1  # type: ignore[union-attr]


async def test_a_deferred_message_blocks_its_recipient_until_due(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2), outbound(3, contact=BOB)])
    claimed = await store.claim_next(LINE, ALICE, now=5000.0)
    assert claimed is not None
    deferred = await store.defer_message(claimed.id, until=5030.0, error="retrying: 503")
    assert deferred is not None
    assert (deferred.status, deferred.next_attempt_at, deferred.error, deferred.attempts) == (
        MessageStatus.QUEUED,
        5030.0,
        "retrying: 503",
        1,
    )
    assert [m.id for m in await store.due_outbound(5029.0)] == ["out-3"]  # Alice waits
    assert await store.claim_next(LINE, ALICE, now=5029.0) is None  # out-2 does not overtake
    assert [m.id for m in await store.due_outbound(5030.0)] == ["out-1", "out-3"]
    again = await store.claim_next(LINE, ALICE, now=5030.0)
    assert again is not None and (again.id, again.attempts) == ("out-1", 2)
    assert await store.defer_message("nope", until=1.0, error="x") is None


async def test_defer_leaves_a_message_that_is_not_being_sent_as_it_is(store: Store) -> None:
    await store.add_outbound([outbound(1)])
    claimed = await store.claim_next(LINE, ALICE, now=5000.0)
    assert claimed is not None
    await store.update_message("out-1", status=MessageStatus.DELIVERED, forward_only=True)
    kept = await store.defer_message("out-1", until=9000.0, error="retrying: late")
    assert kept is not None and kept.status is MessageStatus.DELIVERED and kept.error is None


async def test_due_outbound_lists_each_recipients_oldest_due_message(store: Store) -> None:
    carol = "+32470000003"
    await store.add_outbound(
        [outbound(1), outbound(2), outbound(3, contact=BOB), outbound(4, contact=carol)]
    )
    assert [m.id for m in await store.due_outbound(5000.0)] == ["out-1", "out-3", "out-4"]
    assert [m.id for m in await store.due_outbound(5000.0, limit=2)] == ["out-1", "out-3"]
    await store.claim_next(LINE, BOB, now=5000.0, lease=60)  # being sent: not due
    assert [m.id for m in await store.due_outbound(5000.0)] == ["out-1", "out-4"]
    assert [m.id for m in await store.due_outbound(5060.0)] == ["out-1", "out-3", "out-4"]
    # Many messages of recipients in backoff never hide one that is due.
    await store.add_outbound([outbound(n) for n in range(10, 40)])
    claimed = await store.claim_next(LINE, ALICE, now=5000.0)
    assert claimed is not None
    await store.defer_message(claimed.id, until=9000.0, error="retrying")
    assert [m.id for m in await store.due_outbound(5000.0, limit=1)] == ["out-4"]


async def test_dead_letters_are_listed_and_requeued_with_a_fresh_age(store: Store) -> None:
    await store.add_outbound([outbound(n) for n in (1, 2, 3)] + [outbound(4, contact=BOB)])
    for contact in (BOB, ALICE, ALICE):  # dead in another order than they were created
        claimed = await store.claim_next(LINE, contact, now=5000.0)
        assert claimed is not None
        await store.update_message(
            claimed.id, status=MessageStatus.DEAD, error=f"503 {claimed.id}", forward_only=True
        )
    dead, total = await store.dead_letters()
    assert total == 3 and [m.id for m in dead] == ["out-4", "out-2", "out-1"]  # newest first
    assert all(m.status is MessageStatus.DEAD and m.error for m in dead)
    page, total = await store.dead_letters(page=2, page_size=2)
    assert total == 3 and [m.id for m in page] == ["out-1"]
    with pytest.raises(ValueError, match="page"):
        await store.dead_letters(page=0)
    # A report does not revive a dead letter.
    await store.update_message("out-1", status=MessageStatus.SENT, forward_only=True)
    assert (await store.get_message("out-1")).status is MessageStatus.DEAD  # type: ignore[union-attr]

    assert await store.requeue_dead(7000.0, ["out-2", "out-3", "nope", "out-1"]) == [
        "out-1",
        "out-2",
    ]  # oldest first; not dead (out-3) or unknown: ignored
    one = await store.get_message("out-1")
    assert one is not None
    assert (one.status, one.attempts, one.next_attempt_at, one.requeued_at) == (
        MessageStatus.QUEUED,
        0,
        0.0,
        7000.0,
    )
    assert one.queued_since == 7000.0 and one.error == "503 out-1"  # last error kept
    assert [m.id for m in (await store.dead_letters())[0]] == ["out-4"]
    again = await store.claim_next(LINE, ALICE, now=7000.0)
    assert again is not None and again.id == "out-1"  # per recipient order, again
    assert await store.requeue_dead(7001.0) == ["out-4"]  # all the rest
    assert await store.dead_letters() == ([], 0)
    assert await store.requeue_dead(7002.0) == []


async def test_retry_state_round_trips(store: Store) -> None:
    record = dataclasses.replace(
        outbound(1), attempts=3, next_attempt_at=4000.5, requeued_at=3500.0
    )
    await store.add_outbound([record])
    assert await store.get_message("out-1") == record
    assert [m.id for m in await store.due_outbound(4000.4)] == []
    assert [m.id for m in await store.due_outbound(4000.5)] == ["out-1"]


async def test_erasure_takes_a_contacts_messages_out_of_the_queue(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2, contact=BOB)])
    await store.erase_contact(ALICE)
    assert await store.claim_next(LINE, ALICE, now=5000.0) is None
    assert [m.id for m in await store.due_outbound(5000.0)] == ["out-2"]


async def test_release_claims_makes_a_dead_runs_claims_due(store: Store) -> None:
    await store.add_outbound([outbound(1), outbound(2, contact=BOB), outbound(3, contact=BOB)])
    await store.claim_next(LINE, ALICE, now=5000.0, lease=60)
    bob = await store.claim_next(LINE, BOB, now=5000.0, lease=60)
    assert bob is not None
    await store.defer_message(bob.id, until=9000.0, error="retrying")  # a backoff stays
    assert await store.release_claims(5001.0) == 1
    assert [m.id for m in await store.due_outbound(5001.0)] == ["out-1"]
    again = await store.claim_next(LINE, ALICE, now=5001.0)
    assert again is not None and (again.id, again.attempts) == ("out-1", 2)
    assert await store.release_claims(4000.0) == 1  # never later than it was due
    assert await store.release_claims(4000.0) == 0


async def test_session_counts_group_open_conversations(store: Store) -> None:
    carol = "+32470000003"
    waiting = session(ALICE)
    waiting.timer_due, waiting.timer_step = 5000.0, "confirm"
    same_step = session(BOB)
    other_version = dataclasses.replace(session(carol), flow_version="4", step="done")
    handed = dataclasses.replace(session(ALICE, channel="voice"), status=ConversationStatus.HANDOFF)
    ended = dataclasses.replace(session(BOB, channel="voice"), status=ConversationStatus.ENDED)
    for s in (waiting, same_step, other_version, handed, ended):
        await store.save_turn(s)

    counts = [dataclasses.astuple(c) for c in await store.session_counts()]
    assert counts == [
        ("appointment", "3", "confirm", ConversationStatus.ACTIVE, 2, 1),
        ("appointment", "3", "confirm", ConversationStatus.HANDOFF, 1, 0),
        ("appointment", "4", "done", ConversationStatus.ACTIVE, 1, 0),
    ]
