"""What the SQLite file keeps of an erased contact: tombstones, read from the file itself.

The contract (a tombstoned id is a duplicate, pruning frees it) is in test_store_contract;
here, what only a file shows: the key is made once and survives reopening, the tombstone
table holds keyed hashes and nothing else, and a version-5 file gains both on open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import sqlite3
from pathlib import Path

from convo.models import Direction, MessageRecord, MessageStatus
from convo.store.base import MessageQuery
from convo.store.sqlite import MIGRATIONS, SqliteStore

LINE = "+32470000100"
ALICE = "+32470000001"
PROVIDER = "telefoon_sms"


def inbound(n: int, pid: str) -> MessageRecord:
    return MessageRecord(
        id=f"in-{n}",
        direction=Direction.INBOUND,
        line=LINE,
        contact=ALICE,
        text=f"mijn geboortedatum is 0{n}-02-1990",
        status=MessageStatus.RECEIVED,
        provider=PROVIDER,
        provider_message_id=pid,
        created_at=1000.0 + n,
        updated_at=1000.0 + n,
    )


def read(path: Path, query: str) -> list[tuple[object, ...]]:
    """Rows straight from the file, as another program would read them."""
    with sqlite3.connect(path) as cx:
        return cx.execute(query).fetchall()


async def test_the_key_is_made_once_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "convo.db"
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.add_inbound(inbound(1, "SMa1"))
        await store.erase_contact(ALICE)
    finally:
        await store.close()
    [(name, key)] = read(path, "SELECT name, value FROM meta")
    assert name == "tombstone_key" and isinstance(key, bytes) and len(key) == 32

    for _ in range(2):  # a new store object on the same file, twice: the same key
        reopened = SqliteStore(path)
        await reopened.open()
        try:
            assert not await reopened.add_inbound(dataclasses.replace(inbound(1, "SMa1"), id="x"))
        finally:
            await reopened.close()
        assert read(path, "SELECT name, value FROM meta") == [(name, key)]

    other = tmp_path / "other.db"  # another file has a key of its own
    store = SqliteStore(other)
    await store.open()
    await store.close()
    assert read(other, "SELECT value FROM meta") != [(key,)]


async def test_the_tombstone_table_holds_keyed_hashes_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "convo.db"
    store = SqliteStore(path)
    await store.open()
    pids = ["SMa1", "SMa2"]
    try:
        for n, pid in enumerate(pids, 1):
            assert await store.add_inbound(inbound(n, pid))
        await store.erase_contact(ALICE)
    finally:
        await store.close()

    [(key,)] = read(path, "SELECT value FROM meta WHERE name = 'tombstone_key'")
    assert isinstance(key, bytes)
    rows = read(path, "SELECT * FROM tombstones")
    assert len(rows) == 2
    digests: set[bytes] = set()
    for digest, erased_at in rows:
        assert isinstance(digest, bytes) and len(digest) == 32
        assert isinstance(erased_at, float) and erased_at > 1002  # erasure time, not arrival
        digests.add(digest)
    keyed = {hmac.new(key, f"{PROVIDER}\0{pid}".encode(), hashlib.sha256).digest() for pid in pids}
    assert digests == keyed
    # Nothing readable: no number, no text, no provider id, raw or as an unkeyed hash.
    dump = repr(rows).encode() + b"".join(digests)
    for secret in (ALICE, ALICE[1:], "geboortedatum", PROVIDER, *pids):
        assert secret.encode() not in dump
    unkeyed = {hashlib.sha256(f"{PROVIDER}\0{pid}".encode()).digest() for pid in pids}
    assert not unkeyed & digests
    assert read(path, "SELECT count(*) FROM messages") == [(0,)]


async def test_a_tombstone_refuses_a_replay_alone_and_in_a_batch(tmp_path: Path) -> None:
    # A text stored alone runs one statement; in a batch (the thread busy) the tombstone is
    # read first, then the text inserted: both forms refuse the same duplicates.
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        for n in (1, 2):
            assert await store.add_inbound(inbound(n, f"SMold{n}"))
        await store.erase_contact(ALICE)
        calls = [
            inbound(10, "SMold1"),  # alone (the thread is free): erased, refused
            inbound(11, "SMold2"),  # the rest in one batch: erased, refused
            inbound(12, "SMnew"),  # new
            inbound(13, "SMnew"),  # its provider id just taken in the same batch
            dataclasses.replace(inbound(12, "SMother"), id="in-12"),  # its id taken
            inbound(14, ""),  # no provider id: no tombstone to look for
            inbound(15, "SMold1"),
        ]
        stored = await asyncio.gather(*(store.add_inbound(m) for m in calls))
        assert stored == [False, False, True, False, False, True, False]
        kept = await store.list_messages(MessageQuery(page_size=50))
        assert sorted(m.id for m in kept[0]) == ["in-12", "in-14"]
    finally:
        await store.close()


async def test_a_version_5_file_gains_a_key_and_tombstones(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    cx = sqlite3.connect(path)
    cx.executescript("\n".join(MIGRATIONS[:5]) + "\nPRAGMA user_version = 5;")
    cx.execute(
        "INSERT INTO messages (id, direction, line, contact, channel, text, status, provider, "
        "provider_message_id, segments, price, error, media_urls, processed, created_at, "
        "updated_at) VALUES ('in-1', 'inbound', ?, ?, 'sms', 'hoi', 'received', ?, 'SMold', "
        "1, NULL, NULL, '[]', 1, 1.0, 1.0)",
        (LINE, ALICE, PROVIDER),
    )
    cx.commit()
    cx.close()

    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 6
        assert not await store.add_inbound(inbound(2, "SMold"))  # still in the log
        assert (await store.erase_contact(ALICE)).messages == 1
        assert not await store.add_inbound(inbound(3, "SMold"))  # now by its tombstone
        assert len(read(path, "SELECT * FROM tombstones")) == 1
    finally:
        await store.close()
