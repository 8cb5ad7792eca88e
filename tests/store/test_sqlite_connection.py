"""The SQLite connection's group commit under cancellation: every queued job's caller gets
its outcome, whoever else is cancelled meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from convo.store.sqlite_connection import SqliteConnection, transaction

DEADLINE = 10.0  # seconds: generous; a stranded job waits forever, a slow machine does not


def held(gate: threading.Event, value: int) -> Callable[[sqlite3.Connection], int]:
    """A job that keeps the connection's thread until ``gate`` opens (it never blocks
    for long: the test opens it, and the wait has a bound of its own)."""

    def job(cx: sqlite3.Connection) -> int:
        gate.wait(DEADLINE)
        return value

    return job


def answer(value: int) -> Callable[[sqlite3.Connection], int]:
    return lambda cx: int(cx.execute("SELECT ?", (value,)).fetchone()[0])


async def test_cancelling_close_neither_cancels_nor_strands_the_queued_jobs(
    tmp_path: Path,
) -> None:
    cx = SqliteConnection(tmp_path / "c.db")
    await cx.open()
    first_gate, batch_gate = threading.Event(), threading.Event()
    first = asyncio.create_task(cx.run("first", held(first_gate, 1)))  # on the thread
    await asyncio.sleep(0)
    batched = [
        asyncio.create_task(cx.run("batched", held(batch_gate, 2))),
        asyncio.create_task(cx.run("batched", answer(3))),
    ]
    await asyncio.sleep(0)  # both queued behind `first`
    first_gate.set()
    assert await first == 1
    # `first` handed the two queued jobs to the committer, which is on the thread now;
    # a job queued meanwhile waits for the next batch.
    later = asyncio.create_task(cx.run("later", answer(4)))
    await asyncio.sleep(0)
    closing = asyncio.create_task(cx.close())
    await asyncio.sleep(0)  # close() waits for the batch in flight...
    closing.cancel()  # ...and is cancelled there (a shutdown that ran out of time)
    await asyncio.gather(closing, return_exceptions=True)
    batch_gate.set()
    async with asyncio.timeout(DEADLINE):
        # Before: the committer was cancelled with close(): the batch's callers got a
        # CancelledError they never asked for, and `later` waited forever.
        assert await asyncio.gather(*batched, later) == [2, 3, 4]
    assert await cx.run("after", answer(5)) == 5  # the connection still works
    await cx.close()
    assert not cx.is_open


def test_a_transaction_whose_commit_fails_is_rolled_back(tmp_path: Path) -> None:
    # A deferred foreign key is checked at COMMIT, which then fails and leaves the
    # transaction open: the next transaction must not run inside it (and never commit).
    cx = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    cx.execute("PRAGMA foreign_keys = ON")
    cx.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    cx.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(cx):
        cx.execute("INSERT INTO child VALUES (42)")  # no parent 42: COMMIT fails
    assert not cx.in_transaction
    with transaction(cx):
        cx.execute("INSERT INTO parent VALUES (1)")
    cx.close()
    other = sqlite3.connect(tmp_path / "t.db")
    assert other.execute("SELECT count(*) FROM parent").fetchone() == (1,)
    assert other.execute("SELECT count(*) FROM child").fetchone() == (0,)
    other.close()


async def test_savepoint_journals_stay_in_memory(tmp_path: Path) -> None:
    """A batch's savepoints journal every page its jobs write; on disk (SQLite's default
    past 64 KiB) that doubled the writes of a busy server's batches of turns."""
    cx = SqliteConnection(tmp_path / "c.db")
    await cx.open()
    try:
        temp_store = await cx.run("temp_store", lambda c: c.execute("PRAGMA temp_store").fetchone())
        assert temp_store == (2,)  # MEMORY
    finally:
        await cx.close()


async def test_a_job_that_raises_in_a_batch_is_undone_alone(tmp_path: Path) -> None:
    """A batch runs its jobs without savepoints first; when one raises, the batch runs
    again with a savepoint per job: each job then sees what the jobs before it did, the
    failed one's writes undone, and nothing of the first pass stays."""
    cx = SqliteConnection(tmp_path / "c.db")
    await cx.open()

    def insert(value: int, *, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
        def job(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (value,))
            if fail:
                raise ValueError(f"job {value} failed after writing")
            return int(c.execute("SELECT count(*) FROM t").fetchone()[0])

        return job

    try:
        await cx.run("create", lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        gate = threading.Event()
        first = asyncio.create_task(cx.run("first", held(gate, 0)))  # holds the thread
        await asyncio.sleep(0)
        batched = [
            asyncio.create_task(cx.run("a", insert(1))),
            asyncio.create_task(cx.run("b", insert(2, fail=True))),
            asyncio.create_task(cx.run("c", insert(3))),
        ]
        await asyncio.sleep(0)
        gate.set()
        async with asyncio.timeout(DEADLINE):
            assert await first == 0
            a, b, c = await asyncio.gather(*batched, return_exceptions=True)
        assert (a, c) == (1, 2)
        assert isinstance(b, ValueError)
        rows = await cx.run("read", lambda c: c.execute("SELECT v FROM t ORDER BY v").fetchall())
        assert rows == [(1,), (3,)]
    finally:
        await cx.close()
