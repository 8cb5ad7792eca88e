"""The SQLite connection's group commit: every queued job's caller gets its outcome,
whoever else is cancelled meanwhile; brief jobs run on the event loop, and off it while
another connection holds the write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from convo.exceptions import StoreError
from convo.store.sqlite_connection import SqliteConnection, transaction

DEADLINE = 10.0  # seconds: generous; a stranded job waits forever, a slow machine does not


def held(
    gate: threading.Event, value: int, started: threading.Event | None = None
) -> Callable[[sqlite3.Connection], int]:
    """A job that keeps the connection's thread until ``gate`` opens (it never blocks
    for long: the test opens it, and the wait has a bound of its own); it sets
    ``started`` when it begins."""

    def job(cx: sqlite3.Connection) -> int:
        if started is not None:
            started.set()
        gate.wait(DEADLINE)
        return value

    return job


async def on_the_thread(started: threading.Event) -> None:
    """Wait until a :func:`held` job runs on the connection's thread."""
    assert await asyncio.to_thread(started.wait, DEADLINE)


def answer(value: int) -> Callable[[sqlite3.Connection], int]:
    return lambda cx: int(cx.execute("SELECT ?", (value,)).fetchone()[0])


def insert(value: int, *, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
    """A job that inserts ``value`` into ``t`` (then raises, with ``fail``), and answers how
    many rows it sees."""

    def job(c: sqlite3.Connection) -> int:
        c.execute("INSERT INTO t VALUES (?)", (value,))
        if fail:
            raise ValueError(f"job {value} failed after writing")
        return int(c.execute("SELECT count(*) FROM t").fetchone()[0])

    return job


async def test_cancelling_close_neither_cancels_nor_strands_the_queued_jobs(
    tmp_path: Path,
) -> None:
    cx = SqliteConnection(tmp_path / "c.db")
    await cx.open()
    first_gate, batch_gate = threading.Event(), threading.Event()
    first_started, batch_started = threading.Event(), threading.Event()
    first = asyncio.create_task(cx.run("first", held(first_gate, 1, first_started)))
    await on_the_thread(first_started)
    batched = [
        asyncio.create_task(cx.run("batched", held(batch_gate, 2, batch_started))),
        asyncio.create_task(cx.run("batched", answer(3))),
    ]
    await asyncio.sleep(0)  # both queued behind `first`
    first_gate.set()
    assert await first == 1
    # The committer took the two queued jobs to the thread; a job queued meanwhile waits
    # for the next batch.
    await on_the_thread(batch_started)
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


@pytest.mark.parametrize("brief", [False, True], ids=["on the thread", "on the loop"])
async def test_a_job_that_raises_in_a_batch_is_undone_alone(tmp_path: Path, brief: bool) -> None:
    """A batch runs its jobs without savepoints first; when one raises, the batch runs
    again with a savepoint per job: each job then sees what the jobs before it did, the
    failed one's writes undone, and nothing of the first pass stays. The jobs queued in one
    loop iteration are one batch, wherever it runs."""
    cx = SqliteConnection(tmp_path / "c.db", brief_batch=1)
    await cx.open()
    try:
        await cx.run("create", lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        batched = [
            asyncio.create_task(cx.run("a", insert(1), brief=brief)),
            asyncio.create_task(cx.run("b", insert(2, fail=True), brief=brief)),
            asyncio.create_task(cx.run("c", insert(3), brief=brief)),
        ]
        async with asyncio.timeout(DEADLINE):
            a, b, c = await asyncio.gather(*batched, return_exceptions=True)
        assert (a, c) == (1, 2)
        assert isinstance(b, ValueError)
        rows = await cx.run("read", lambda c: c.execute("SELECT v FROM t ORDER BY v").fetchall())
        assert rows == [(1,), (3,)]
    finally:
        await cx.close()


async def test_batches_of_enough_brief_jobs_run_on_the_event_loop(tmp_path: Path) -> None:
    cx = SqliteConnection(tmp_path / "c.db", brief_batch=3)
    await cx.open()
    here = threading.get_ident()

    def where(c: sqlite3.Connection) -> int:
        return threading.get_ident()

    try:
        few = [asyncio.create_task(cx.run("few", where, brief=True)) for _ in range(2)]
        assert here not in await asyncio.gather(*few)
        enough = [asyncio.create_task(cx.run("enough", where, brief=True)) for _ in range(3)]
        assert await asyncio.gather(*enough) == [here] * 3
        mixed = [asyncio.create_task(cx.run("brief", where, brief=True)) for _ in range(3)]
        mixed.append(asyncio.create_task(cx.run("listing", where)))
        assert here not in await asyncio.gather(*mixed)
    finally:
        await cx.close()


async def test_brief_jobs_wait_for_another_connections_lock_off_the_loop_in_order(
    tmp_path: Path,
) -> None:
    """While another process holds the write lock, brief jobs wait for it on the thread:
    the loop runs on meanwhile (here it is what releases the lock), and brief jobs queued
    later still run after them."""
    cx = SqliteConnection(tmp_path / "c.db", brief_batch=1)
    await cx.open()
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    try:
        await cx.run("create", lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        other.execute("BEGIN IMMEDIATE")
        first = [asyncio.create_task(cx.run(f"{v}", insert(v), brief=True)) for v in (1, 2)]
        await asyncio.sleep(0.2)  # on the loop, waiting for the lock would stop this sleep
        later = asyncio.create_task(cx.run("3", insert(3), brief=True))
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in (*first, later))
        other.execute("INSERT INTO t VALUES (0)")
        other.execute("COMMIT")
        async with asyncio.timeout(DEADLINE):
            assert await asyncio.gather(*first, later) == [2, 3, 4]
        order = await cx.run(
            "read", lambda c: c.execute("SELECT v FROM t ORDER BY rowid").fetchall()
        )
        assert [v for (v,) in order] == [0, 1, 2, 3]
    finally:
        other.close()
        await cx.close()


async def test_a_batch_on_the_loop_whose_commit_fails_leaves_nothing_and_no_transaction(
    tmp_path: Path,
) -> None:
    """A deferred foreign key fails at COMMIT: every job of that batch gets the error, none
    of its writes stay, and the next batch on the loop is not run inside its transaction."""
    cx = SqliteConnection(tmp_path / "c.db", brief_batch=1)
    await cx.open()
    schema = (
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    try:
        await cx.run("create", lambda c: c.executescript(schema))
        batched = [
            asyncio.create_task(cx.run("parent", lambda c: c.execute(
                "INSERT INTO parent VALUES (1)"
            ).rowcount, brief=True)),
            asyncio.create_task(cx.run("orphan", lambda c: c.execute(
                "INSERT INTO child VALUES (42)"
            ).rowcount, brief=True)),
        ]  # fmt: skip
        async with asyncio.timeout(DEADLINE):
            outcomes = await asyncio.gather(*batched, return_exceptions=True)
        assert all(isinstance(o, StoreError) and "FOREIGN KEY" in str(o) for o in outcomes)
        counts = await cx.run(  # a transaction left open would fail its BEGIN
            "count",
            lambda c: c.execute(
                "SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM child)"
            ).fetchone(),
            brief=True,
        )
        assert counts == (0, 0)
    finally:
        await cx.close()
