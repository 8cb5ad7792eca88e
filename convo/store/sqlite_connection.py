"""The SQLite store's connection: one file, one connection, group commit.

How it runs. aiosqlite owns the connection and a thread that executes on it. Each store
method is **one job**: a plain function that runs its statements and decodes the rows. No
other job can slip between the statements of a job, without any asyncio lock. Statements
are constant strings, so sqlite3's statement cache prepares each of them once per
connection.

Group commit. Jobs are queued, and whatever is queued when the connection is free runs as
**one batch**: one ``BEGIN IMMEDIATE ... COMMIT`` transaction. A job that raises is rolled
back alone and its caller gets the error; the others commit (the batch then runs again with
a savepoint per job: see ``_run_batch``, and why a job must be a function of the database
alone). :meth:`SqliteConnection.run` returns only after its batch committed, so what a job
wrote is durable when it returns. With one caller at a time a batch is one job; under load
(many webhooks and turns in flight) dozens of jobs share a commit, which is where SQLite
spent its time.

Brief jobs. A job that reads and writes a few rows found by key (storing a text, saving a
turn, claiming and settling a message: the store marks them ``brief``) takes tens of
microseconds. When :data:`BRIEF_BATCH` of them or more are queued, the batch runs on the
event loop itself, without waiting for a lock. So many queue up only while the loop is busy
(a batch is what queued during one loop iteration, or during the batch before it on the
thread), and then the hops to the thread and back, and the thread's every step waiting for
the loop to let go of the GIL, cost the loop more than running the batch: saturated with
texts, ``convo serve`` sent 23% more replies (median of six runs against six) with less CPU
per text (``bench/sms_pipeline.py``). A smaller batch goes to the thread, where its commit
runs beside the loop instead of in it: at 650 texts a second, batches of ~4 jobs run on the
loop doubled the median ack. When another connection (another process) holds the write
lock, a batch for the loop goes to the thread, which waits for the lock
(``BUSY_TIMEOUT_MS``), and the jobs queued behind it follow it there, in order. A batch with
any other job (a listing, a report, a purge) runs on the thread. The connection runs one
batch at a time, wherever it runs.

Durability. ``journal_mode=WAL`` with ``synchronous=NORMAL``: a committed job survives a
crash of the process; a power cut may lose the last few commits but never corrupts the file.
The statements of one job are one unit (of its batch, or :func:`transaction`). The WAL is
copied into the file by a thread of its own (:mod:`convo.store.sqlite_checkpoints`), not
inside the commits that jobs wait for.

Schema. ``PRAGMA user_version`` is the number of migrations applied; :meth:`open` applies
the missing ones (:data:`convo.store.sqlite_schema.MIGRATIONS`) through
:func:`convo.store.migrations.upgrade`, all in one immediate transaction (which is the
migration lock: a second process opening the file waits for it, then finds nothing to
do), and refuses a file written by a newer convo.

Errors. Every ``sqlite3.Error`` (and a corrupt stored JSON value) becomes
:class:`~convo.exceptions.StoreError` in one place, :meth:`SqliteConnection.run`, naming the
file and the operation.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from convo.exceptions import CorruptRecord, StoreError
from convo.store.migrations import SchemaStatus, upgrade
from convo.store.sqlite_checkpoints import Checkpointer
from convo.store.sqlite_schema import MIGRATIONS, statements

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]
Outcome = tuple[bool, Any]  # (True, result) or (False, the exception the job raised)
Queued = tuple[Job[Any], "asyncio.Future[Any]", bool]  # a job, its caller's future, brief
BUSY_TIMEOUT_MS = 5000  # how long a batch on the thread waits for another connection's lock
BRIEF_BATCH = 16
"""The fewest brief jobs that run as a batch on the event loop (module docstring)."""


def _null(value: None) -> None:
    return value


# sqlite3 binds int, float and str as they are, but looks every other value up as something
# to adapt; for None that lookup (of ``__adapt__`` on a class) raised and discarded an
# AttributeError with a formatted message: 5% of this thread's instructions, at three to
# six None columns per row. An adapter registered for None is found at once and binds NULL
# as before. (Process-wide, as every sqlite3 adapter is; None stays NULL for everyone.)
sqlite3.register_adapter(type(None), _null)


class SqliteConnection:
    """Runs jobs on the connection to the SQLite file ``path`` (module docstring); batches
    of ``brief_batch`` brief jobs or more run on the event loop."""

    def __init__(self, path: Path, *, brief_batch: int = BRIEF_BATCH) -> None:
        self.path = path
        self.brief_batch = brief_batch
        self._db: aiosqlite.Connection | None = None
        self._queue: list[Queued] = []
        self._flush: asyncio.Handle | None = None  # the queue's next batch, when scheduled
        self._committer: asyncio.Task[None] | None = None  # while a batch is on the thread
        self._checkpointer: Checkpointer | None = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def open(self, *, migrate: bool = True) -> None:
        """Create the file (and its parent folders) and, unless ``migrate`` is False,
        migrate it. Idempotent. StoreError when the file cannot be opened or has a newer
        schema than this code."""
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"SQLite store {self.path}: cannot create its folder: {exc}") from exc
        if self.path.is_dir():
            raise StoreError(f"SQLite store {self.path}: cannot open: it is a folder")
        try:
            # isolation_level=None: sqlite3 opens no implicit transactions; we say BEGIN.
            # check_same_thread=False: brief jobs run on the event loop's thread, never at
            # the same time as the connection's own thread runs anything.
            self._db = await aiosqlite.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            # aiosqlite stops its worker thread on a failed connect without waiting for it;
            # give the thread a moment to hand back its result while our loop still runs.
            for _ in range(20):
                await asyncio.sleep(0.005)
            raise StoreError(f"SQLite store {self.path}: cannot open: {exc}") from exc
        try:
            # Outside a batch: journal_mode cannot change inside a transaction.
            try:
                await self._call(_prepare)
                if migrate:
                    await upgrade(self, MIGRATIONS, f"SQLite store {self.path}")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: open failed: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        self._checkpointer = Checkpointer(self.path)
        self._checkpointer.start()

    # -- migrations (convo.store.migrations.MigrationTarget), before any job runs ------------

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """An immediate transaction: SQLite's write lock, held until every missing script
        and the new ``user_version`` commit together."""
        await self._call(_execute, "BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await self._call(_rollback)
            raise
        await self._call(_execute, "COMMIT")

    async def schema_version(self) -> int:
        return await self._call(user_version)

    async def apply_migration(self, version: int, script: str) -> None:
        await self._call(_migrate, version, script)

    async def schema_status(self) -> SchemaStatus:
        """The file's schema version against the scripts this convo has."""
        version = await self._call(user_version)
        return SchemaStatus(f"SQLite store {self.path}", version, len(MIGRATIONS))

    async def upgrade(self) -> SchemaStatus:
        """Apply the missing migrations (:func:`convo.store.migrations.upgrade`); the
        status found before. StoreError for a newer file or a failed script."""
        try:
            return await upgrade(self, MIGRATIONS, f"SQLite store {self.path}")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: migration failed: {exc}") from exc

    async def close(self) -> None:
        """Wait for the jobs in flight, then close. Closing a closed connection is harmless.
        Cancelling ``close`` stops the waiting, never the jobs: their callers still get
        their outcomes, and the connection stays open."""
        while self._queue or self._committing():
            committer = self._committer
            if committer is not None and not committer.done():
                # asyncio.wait, not gather: cancelling close() (a shutdown that ran out of
                # time) must not cancel the committer, whose jobs are other callers'.
                await asyncio.wait([committer])
            else:
                self._flush_queue()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and self._db is not None:
            # Before the writer closes (the last connection to close copies what is left of
            # the WAL and removes it), and waited for on the writer's thread: no other.
            await self._call(_stop, checkpointer)
        db, self._db = self._db, None
        if db is None:
            return
        try:
            await db.execute("PRAGMA optimize")  # keeps planner statistics fresh; cheap
            await db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: close failed: {exc}") from exc

    async def run(self, what: str, job: Job[T], *, brief: bool = False) -> T:
        """Run ``job`` in the next batch (module docstring, "Group commit"); a ``brief``
        job's batch may run on the event loop itself ("Brief jobs"). What ``job`` raises
        reaches the caller, a SQLite error or corrupt JSON as StoreError naming ``what``."""
        if self._db is None:
            raise StoreError(f"SQLite store {self.path} is not open (await store.open() first)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((job, future, brief))
        if not self._committing() and self._flush is None:
            # Next iteration: the jobs queued by this one's callbacks go with it.
            self._flush = loop.call_soon(self._flush_queue)
        try:
            return cast(T, await future)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {what} failed: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CorruptRecord(
                f"SQLite store {self.path}: {what}: a stored JSON value is corrupt ({exc})"
            ) from exc

    def _committing(self) -> bool:
        """Whether the committer is alive. Asked of the task itself rather than kept in a
        flag: a task cancelled before its first step never runs a ``finally`` that would
        clear one (and every later job would queue for ever)."""
        return self._committer is not None and not self._committer.done()

    def _flush_queue(self) -> None:
        """Run the queued jobs: here, when enough of them are queued, all brief, and the
        write lock is free at once; else on the thread, by the committer."""
        self._flush = None
        if self._committing() or not self._queue:
            return  # the committer takes the queue when its batch is back
        if not self._run_here():
            self._committer = asyncio.create_task(self._commit_batches(), name="convo-sqlite")

    def _run_here(self) -> bool:
        """Run the whole queue as one batch on the event loop, if it holds ``brief_batch``
        jobs or more, all brief, and the write lock can be had without waiting. False,
        having run nothing, when not: the queue is then the committer's, in the same
        order."""
        db = self._db
        batch = self._queue
        if db is None or len(batch) < self.brief_batch or not all(b for _, _, b in batch):
            return False
        self._queue = []
        try:
            outcomes = _run_brief(db._conn, [job for job, _, _ in batch])
        except Exception as exc:  # the connection failed, not a job (those are outcomes)
            outcomes = [(False, exc)] * len(batch)
        except BaseException:
            for _, future, _ in batch:
                future.cancel()
            raise
        if outcomes is None:  # another connection holds the write lock
            self._queue = batch + self._queue
            return False
        _settle(batch, outcomes)
        if self._checkpointer is not None:
            self._checkpointer.written()
        return True

    async def _commit_batches(self) -> None:
        """Send the queued jobs to the thread, all of them as one batch, until none are
        left (a job queued while a batch runs goes in the next one; a queue of brief jobs
        runs here, when it can); then the thread is free again. Only the event loop's end
        cancels it (``close`` does not): then every job it holds or that is queued is
        cancelled, none left waiting."""
        while self._queue:
            if self._run_here():
                continue
            batch, self._queue = self._queue, []
            jobs = [job for job, _, _ in batch]
            try:
                outcomes = await self._call(_run_batch, jobs)
            except asyncio.CancelledError:
                batch, self._queue = batch + self._queue, []
                for _, future, _ in batch:
                    future.cancel()
                raise
            except Exception as exc:  # the store was closed under the queued jobs
                outcomes = [(False, exc)] * len(batch)
            _settle(batch, outcomes)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread: one hop."""
        db = self._db
        if db is None:
            raise StoreError(f"SQLite store {self.path} is not open (await store.open() first)")
        # aiosqlite has no public way to run a function on its thread, and we need a whole
        # batch to run there as one call (nothing interleaved): `_execute` is that way,
        # unchanged since aiosqlite 0.x. Untyped there; `fn` is typed, so the cast is sound.
        result = await db._execute(fn, db._conn, *args)  # type: ignore[no-untyped-call]
        if self._checkpointer is not None:
            self._checkpointer.written()
        return cast(T, result)


# -- on the connection's thread ---------------------------------------------------------------


@contextmanager
def transaction(cx: sqlite3.Connection) -> Iterator[None]:
    """The statements of one job as one unit. Inside a batch's transaction the batch keeps
    them one (a job that raises is undone alone: ``_run_batch``); outside one (a job run
    alone, opening the file) it is a transaction of its own."""
    if cx.in_transaction:
        yield
        return
    # IMMEDIATE takes the write lock up front, so a transaction never fails half-way
    # with SQLITE_BUSY when another process writes (it waits busy_timeout instead).
    cx.execute("BEGIN IMMEDIATE")
    try:
        yield
        cx.execute("COMMIT")
    except BaseException:
        # A COMMIT that fails (a deferred constraint, SQLITE_BUSY, a full disk) can leave the
        # transaction open: the next job would then run inside it, and never be committed.
        if cx.in_transaction:
            cx.execute("ROLLBACK")
        raise


def user_version(cx: sqlite3.Connection) -> int:
    """The file's schema version: how many migrations it has."""
    return int(cx.execute("PRAGMA user_version").fetchone()[0])


def _run_batch(
    cx: sqlite3.Connection, jobs: list[Job[Any]], *, on_loop: bool = False
) -> list[Outcome]:
    """Run ``jobs`` in order in one transaction: a job that raises is rolled back alone and
    gets its exception; the others commit together. When the commit fails, every job gets
    that error (none of them happened). ``on_loop``: :func:`_run_brief` began the
    transaction, and a second pass that cannot take the write lock at once raises
    ``_LockTaken`` (nothing of the batch stays).

    Jobs run together first, with no savepoint: a savepoint copies every page its job then
    writes to a journal, which cost a fifth of the thread's time with 50 turns in flight.
    Should a job raise, the whole transaction is rolled back (nothing of that pass stays,
    results included) and the batch runs again, each job in a savepoint of its own. That is
    sound because a job is a function of the database alone: run again on the same data it
    does the same, and it has no effect outside the connection (every job in
    ``convo.store.sqlite*`` is written so)."""
    if len(jobs) == 1 and not on_loop:  # alone: the job is its own unit (``transaction``)
        try:
            return [(True, jobs[0](cx))]
        except Exception as exc:
            return [(False, exc)]
    if not on_loop:
        cx.execute("BEGIN IMMEDIATE")
    try:
        try:
            outcomes: list[Outcome] = [(True, job(cx)) for job in jobs]
        except Exception as exc:
            if cx.in_transaction:
                cx.execute("ROLLBACK")
            if len(jobs) == 1:
                return [(False, exc)]
            if not _begin(cx, wait=not on_loop):
                raise _LockTaken from None
            outcomes = _each_in_savepoint(cx, jobs)
        cx.execute("COMMIT")
    except sqlite3.Error as exc:
        if cx.in_transaction:
            cx.execute("ROLLBACK")
        return [(False, exc)] * len(jobs)
    except BaseException:
        if cx.in_transaction:
            cx.execute("ROLLBACK")
        raise
    return outcomes


def _each_in_savepoint(cx: sqlite3.Connection, jobs: list[Job[Any]]) -> list[Outcome]:
    """Run ``jobs`` in the open transaction, each in a savepoint: one that raises is rolled
    back to it and gets its exception."""
    outcomes: list[Outcome] = []
    for job in jobs:
        cx.execute("SAVEPOINT job")
        try:
            outcomes.append((True, job(cx)))
        except Exception as exc:
            cx.execute("ROLLBACK TO job")
            outcomes.append((False, exc))
        cx.execute("RELEASE job")
    return outcomes


def _run_brief(cx: sqlite3.Connection, jobs: list[Job[Any]]) -> list[Outcome] | None:
    """:func:`_run_batch` on the event loop: None, having run nothing, when another
    connection holds the write lock (waiting for it here would stop the loop)."""
    cx.execute("PRAGMA busy_timeout = 0")
    try:
        if not _begin(cx, wait=False):
            return None
        return _run_batch(cx, jobs, on_loop=True)
    except _LockTaken:
        return None
    finally:
        cx.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class _LockTaken(Exception):
    """Another connection took the write lock between two passes of a batch on the loop."""


def _begin(cx: sqlite3.Connection, *, wait: bool = True) -> bool:
    """BEGIN IMMEDIATE; without ``wait`` (busy timeout 0), False when the write lock is
    another connection's."""
    try:
        cx.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if wait or exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
            raise
        return False
    return True


def _settle(batch: list[Queued], outcomes: list[Outcome]) -> None:
    for (_, future, _), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():
            continue  # its caller was cancelled; the job ran (or not) all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _prepare(cx: sqlite3.Connection) -> None:
    """Connection settings (the schema is :func:`convo.store.migrations.upgrade`'s)."""
    cx.execute("PRAGMA journal_mode = WAL")
    cx.execute("PRAGMA synchronous = NORMAL")
    # The checkpoint thread copies the WAL; the commit that crosses ~16 MB of WAL (instead
    # of SQLite's 4 MB) checkpoints too, a backstop that then finds little left to copy.
    cx.execute("PRAGMA wal_autocheckpoint = 4000")
    cx.execute("PRAGMA foreign_keys = ON")
    # Savepoint and statement journals in memory: a savepoint journals every page written
    # under it, and the default 64 KiB before spilling to a temp file made a batch of turns
    # write each page again to disk (more than half the system time with 50 turns in flight,
    # when every job of a batch had its savepoint).
    cx.execute("PRAGMA temp_store = MEMORY")


def _stop(cx: sqlite3.Connection, checkpointer: Checkpointer) -> None:
    checkpointer.stop()


def _execute(cx: sqlite3.Connection, statement: str) -> None:
    cx.execute(statement)


def _rollback(cx: sqlite3.Connection) -> None:
    if cx.in_transaction:
        cx.execute("ROLLBACK")


def _migrate(cx: sqlite3.Connection, version: int, script: str) -> None:
    """One script and its version, inside the migration lock's transaction."""
    for statement in statements(script):
        cx.execute(statement)
    cx.execute(f"PRAGMA user_version = {version + 1}")
