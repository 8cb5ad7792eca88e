"""What only the SQLite store has: a file, a schema version, migrations, WAL, group commit."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from convo.exceptions import StoreError
from convo.models import ConversationKey, Direction, MessageRecord, MessageStatus, Session
from convo.store.sqlite import MIGRATIONS, SqliteStore

KEY = ConversationKey("+32470000100", "sms", "+32470000001")


def a_session() -> Session:
    return Session(
        key=KEY,
        flow="appointment",
        flow_version="1",
        step="confirm",
        lang="nl",
        slots={"confirmed": None, "naam": "Zoë"},
        created_at=1.5,
        updated_at=2.5,
    )


def a_reply(n: int) -> MessageRecord:
    return MessageRecord(
        id=f"out-{n}",
        direction=Direction.OUTBOUND,
        line=KEY.line,
        contact=KEY.contact,
        text="Bedankt!",
        status=MessageStatus.QUEUED,
    )


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "convo.db"  # parent folders are created
    store = SqliteStore(path)
    await store.open()
    await store.save_turn(a_session(), outbound=[a_reply(1)])
    await store.set_suppressed(KEY.line, "+32470000009", True)
    await store.close()
    await store.close()  # closing twice is harmless

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.get_session(KEY) == a_session()
        assert [m.id for m in await reopened.pending_outbound()] == ["out-1"]
        assert await reopened.is_suppressed(KEY.line, "+32470000009")
        assert await reopened.schema_version() == len(MIGRATIONS)
    finally:
        await reopened.close()


async def test_open_is_idempotent_and_wal_is_on(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "convo.db") as cx:
        assert cx.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert cx.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


async def test_old_schema_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    cx = sqlite3.connect(path)
    cx.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    cx.execute(
        "INSERT INTO sessions VALUES "
        "(?, ?, ?, 'appointment', '1', 'confirm', 'nl', '{}', '{\"a\": 1}', 0, 'active',"
        " NULL, NULL, NULL, 1.0, 2.0)",
        (KEY.line, KEY.channel, KEY.contact),
    )
    cx.commit()
    cx.close()
    assert len(MIGRATIONS) > 1, "this test needs a migration to apply"

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        kept = await store.get_session(KEY)
        assert kept is not None and kept.slots == {"a": 1} and kept.step == "confirm"
        # version 2's tables work
        assert not await store.seen("enco", "t1", now=1.0)
        assert await store.add_fragment("g", 1, 1, "whole", now=1.0, contact="+32470000001") == [
            "whole"
        ]
    finally:
        await store.close()


async def test_version_3_fragment_groups_keep_their_sender_for_erasure(tmp_path: Path) -> None:
    # Before version 4 a group's sender was only in its name (a JSON array, the number
    # third, as convo.intake named groups then); the migration makes it the column.
    path = tmp_path / "v3.db"
    cx = sqlite3.connect(path)
    cx.executescript("\n".join(MIGRATIONS[:3]) + "\nPRAGMA user_version = 3;")
    old_name = json.dumps(["vonage", KEY.line, KEY.contact, "sms", "ref-1", 3])
    for name, first_at in (
        (old_name, 1.0),
        ("not-json", 2.0),
        ('{"a": 1}', 3.0),
        ("[1, 2, 3]", 4.0),
    ):
        cx.execute("INSERT INTO fragment_groups VALUES (?, 3, ?)", (name, first_at))
        cx.execute("INSERT INTO fragment_parts VALUES (?, 1, 'een')", (name,))
    cx.execute("INSERT INTO fragment_parts VALUES (?, 2, 'twee')", (old_name,))
    cx.commit()
    cx.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 4
        assert (await store.erase_contact(KEY.contact)).fragments == 2
        # The others belong to nobody and expire as before.
        assert await store.expired_fragments(older_than=10) == [
            ("not-json", ["een"]),
            ('{"a": 1}', ["een"]),
            ("[1, 2, 3]", ["een"]),
        ]
    finally:
        await store.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    future = len(MIGRATIONS) + 5
    with sqlite3.connect(path) as cx:
        cx.execute(f"PRAGMA user_version = {future}")
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=rf"version {future}.*version {len(MIGRATIONS)}"):
        await store.open()
    assert repr(store).endswith("closed>")
    with pytest.raises(StoreError, match="not open"):
        await store.get_session(KEY)


async def test_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    store = SqliteStore(tmp_path / "adir")  # a folder, not a database file
    with pytest.raises(StoreError, match="adir"):
        await store.open()


async def test_corrupt_json_is_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    try:
        await store.save_turn(a_session())
        # Another writer (WAL lets it in while we are open) breaks the row.
        with sqlite3.connect(tmp_path / "c.db") as other:
            other.execute("UPDATE sessions SET slots = '{broken'")
        other.close()
        with pytest.raises(StoreError, match="corrupt"):
            await store.get_session(KEY)
    finally:
        await store.close()


async def test_ping_is_false_when_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    assert not await store.ping()
    await store.open()
    assert await store.ping()
    await store.close()
    assert not await store.ping()


async def test_concurrent_calls_commit_together_and_fail_alone(tmp_path: Path) -> None:
    # Calls made while the connection's thread is busy share one batch (group commit):
    # the one that fails is rolled back alone, every other one is committed.
    store = SqliteStore(tmp_path / "c.db")
    await store.open()
    try:
        await store.add_outbound([a_reply(0)])
        calls = [store.add_outbound([a_reply(n)]) for n in range(1, 40)]
        calls.insert(20, store.add_outbound([a_reply(40), a_reply(0)]))  # 0 is taken
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and isinstance(failed[0], StoreError)
        assert "out-0 is already in the log" in str(failed[0])
        assert results.index(failed[0]) == 20
    finally:
        await store.close()
    reopened = SqliteStore(tmp_path / "c.db")  # what was committed is in the file
    await reopened.open()
    try:
        kept = {m.id for m in await reopened.pending_outbound(limit=100)}
        assert kept == {f"out-{n}" for n in range(40)}  # out-40 was in the failed call
    finally:
        await reopened.close()


async def test_a_row_that_fails_to_decode_leaves_no_read_lock_behind(tmp_path: Path) -> None:
    """A corrupt row read before others must not keep its statement open: another process's
    write would then leave this store's next write failing with "database is locked"."""
    path = tmp_path / "convo.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.add_outbound([a_reply(n) for n in range(3)])
        with sqlite3.connect(path) as db:  # the first pending row, corrupted from outside
            db.execute("UPDATE messages SET media_urls = '5' WHERE id = 'out-0'")
        with pytest.raises(TypeError):
            await store.pending_outbound()
        with sqlite3.connect(path) as db:  # another process writes meanwhile
            db.execute("UPDATE messages SET text = 'x' WHERE id = 'out-2'")
        await store.add_outbound([a_reply(3)])  # and this store can still write
        assert await store.get_message("out-3") is not None
    finally:
        await store.close()


async def test_a_version_4_outbox_migrates_to_claims_in_order(tmp_path: Path) -> None:
    # A version-4 file with replies queued, one left sending by a crash: after the
    # migration they are all due at once, with no attempts, and claimed oldest first.
    path = tmp_path / "v4.db"
    cx = sqlite3.connect(path)
    cx.executescript("\n".join(MIGRATIONS[:4]) + "\nPRAGMA user_version = 4;")
    columns = (
        "id, direction, line, contact, channel, text, status, provider, provider_message_id, "
        "segments, price, error, media_urls, processed, created_at, updated_at, metadata"
    )
    for n, status in ((2, "queued"), (1, "sending"), (3, "sent")):
        cx.execute(
            f"INSERT INTO messages ({columns}) VALUES "  # test data, constants
            "(?, 'outbound', ?, ?, 'sms', 'hi', ?, '', '', 1, NULL, NULL, '[]', 1, ?, ?, '{}')",
            (f"out-{n}", KEY.line, KEY.contact, status, 10.0 + n, 10.0 + n),
        )
    cx.commit()
    cx.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 5
        [head] = await store.due_outbound(now=1.0)
        assert (head.id, head.attempts, head.next_attempt_at, head.requeued_at) == (
            "out-1",
            0,
            0.0,
            None,
        )
        claimed = [await store.claim_next(KEY.line, KEY.contact, now=1.0) for _ in range(2)]
        assert [c.id for c in claimed if c] == ["out-1"]  # out-2 waits behind it
        await store.update_message("out-1", status=MessageStatus.SENT)
        nxt = await store.claim_next(KEY.line, KEY.contact, now=1.0)
        assert nxt is not None and nxt.id == "out-2"
        assert await store.dead_letters() == ([], 0)
    finally:
        await store.close()
