"""``Store.writable()``: a real write that changes no data, for readiness checks.

It is True on a store that takes writes, and False (quickly, never an error) while another
connection holds the SQLite file's write lock, or once the store is closed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from convo.store.memory import MemoryStore
from convo.store.sqlite import PROBE_WAIT, SqliteStore


async def test_memory_store_is_writable() -> None:
    store = MemoryStore()
    await store.open()
    assert await store.writable() is True


async def test_sqlite_store_is_writable_and_the_probe_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    try:
        version = await store.schema_version()
        assert await store.writable() is True
        assert await store.schema_version() == version
    finally:
        await store.close()


async def test_sqlite_store_is_not_writable_while_another_connection_holds_the_lock(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    holder = sqlite3.connect(tmp_path / "convo.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        began = time.monotonic()
        assert await store.writable() is False
        assert time.monotonic() - began < PROBE_WAIT + 3  # not the 5 s busy timeout
        assert await store.ping() is True  # it still reads
        holder.execute("ROLLBACK")
        assert await store.writable() is True
    finally:
        holder.close()
        await store.close()
    assert await store.writable() is False  # closed
