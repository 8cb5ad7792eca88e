"""The embedded store: one SQLite file, one connection, WAL journal.

How it runs. aiosqlite owns the connection and one thread that executes everything on it.
Each store method is **one job** on that thread: a plain function that runs its statements
and decodes the rows. No other job can slip between the statements of a job, without any
asyncio lock. Statements are constant strings, so sqlite3's statement cache prepares each of
them once per connection.

Group commit. Jobs are queued, and whatever is queued when the thread is free goes to it as
**one batch**: one hop from the event loop to the thread and back, and one ``BEGIN IMMEDIATE
... COMMIT`` transaction, with a savepoint per job. A job that raises is rolled back to its
savepoint alone and its caller gets the error; the others commit. A method returns only
after its batch committed, so what it wrote is durable when it returns, as before. With one
caller at a time a batch is one job; under load (many webhooks and turns in flight) dozens
of jobs share a hop and a commit, which is where SQLite spent its time.

Durability. ``journal_mode=WAL`` with ``synchronous=NORMAL``: a committed turn survives a
crash of the process; a power cut may lose the last few commits but never corrupts the file.
``save_turn``'s statements are one unit: its batch's savepoint.

Schema. ``PRAGMA user_version`` is the number of :data:`MIGRATIONS` applied; ``open()``
applies the missing ones, each in its own transaction, and refuses a file written by a newer
convo. To change the schema, append a script to :data:`MIGRATIONS`; never edit an old one.

Errors. Every ``sqlite3.Error`` becomes :class:`~convo.exceptions.StoreError` in one
place (:meth:`SqliteStore._run`), naming the file and the operation.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

import convo.store.sqlite_schema as sql
from convo.exceptions import StoreError
from convo.models import (
    Channel,
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.base import ErasedContact, MessageQuery
from convo.store.checks import check_fragment, check_inbound, check_outbound, check_query
from convo.store.locks import LocalLocks

MIGRATIONS: list[str] = sql.MIGRATIONS
"""Schema scripts: ``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``."""

T = TypeVar("T")
Row = tuple[Any, ...]

_STATUS = {s.value: s for s in MessageStatus}
_DIRECTION = {d.value: d for d in Direction}
_CONVERSATION = {s.value: s for s in ConversationStatus}


class SqliteStore:
    """A :class:`~convo.store.base.Store` in the SQLite file ``path``.

    ``open()`` creates the file (and its parent directory) or migrates it; it raises
    StoreError when the file cannot be opened or has a newer schema than this code.
    Every other method raises StoreError when the store is not open or SQLite fails.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._busy = False  # a job or batch is on the thread; new jobs queue
        self._locks = LocalLocks()  # one process holds this store: its locks suffice

    def __repr__(self) -> str:
        state = "open" if self._db is not None else "closed"
        return f"<SqliteStore {str(self.path)!r} {state}>"

    # -- lifecycle -------------------------------------------------------------------------

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """The conversation's turn lock, for this process (``ConversationLocks``)."""
        return self._locks.lock(key)

    async def open(self) -> None:
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
            self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=5.0)
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
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: open failed: {exc}") from exc
        except BaseException:
            await self.close()
            raise

    async def ping(self) -> bool:
        try:
            return await self._run("ping", lambda cx: cx.execute("SELECT 1").fetchone() == (1,))
        except StoreError:
            return False

    async def close(self) -> None:
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)  # jobs in flight
        db, self._db = self._db, None
        if db is None:
            return
        try:
            await db.execute("PRAGMA optimize")  # keeps planner statistics fresh; cheap
            await db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: close failed: {exc}") from exc

    async def schema_version(self) -> int:
        """The file's ``user_version``: how many :data:`MIGRATIONS` it has."""
        return await self._run("read schema version", _user_version)

    # -- sessions --------------------------------------------------------------------------

    async def get_session(self, key: ConversationKey) -> Session | None:
        def job(cx: sqlite3.Connection) -> Session | None:
            row = cx.execute(sql.GET_SESSION, (key.line, key.channel, key.contact)).fetchone()
            return None if row is None else _session(row)

        return await self._run("get session", job)

    async def load_turn(self, key: ConversationKey) -> tuple[Session | None, bool]:
        def job(cx: sqlite3.Connection) -> tuple[Session | None, bool]:
            row = cx.execute(sql.GET_SESSION, (key.line, key.channel, key.contact)).fetchone()
            suppressed = cx.execute(sql.IS_SUPPRESSED, (key.line, key.contact)).fetchone()
            return (None if row is None else _session(row)), suppressed is not None

        return await self._run("load turn", job)

    async def sessions_of(self, contact: str) -> list[Session]:
        def job(cx: sqlite3.Connection) -> list[Session]:
            return [_session(r) for r in cx.execute(sql.SESSIONS_OF, (contact,))]

        return await self._run("list sessions", job)

    async def save_turn(
        self,
        session: Session,
        *,
        inbound_id: str | None = None,
        outbound: Sequence[MessageRecord] = (),
    ) -> None:
        """One transaction: upsert ``session``, mark ``inbound_id`` processed (an unknown
        id is ignored), log ``outbound``. StoreError, and nothing changed, when the session
        holds non-JSON data, an outbound id is taken, or SQLite fails."""
        check_outbound(outbound)
        row = _session_row(session)
        messages = [_message_row(m, processed=True) for m in outbound]

        def job(cx: sqlite3.Connection) -> None:
            with _transaction(cx):
                cx.execute(sql.UPSERT_SESSION, row)
                if inbound_id is not None:
                    cx.execute(sql.MARK_PROCESSED, (inbound_id,))
                _insert_messages(cx, messages)

        await self._run("save turn", job)

    async def due_timers(self, now: float, limit: int = 100) -> list[ConversationKey]:
        def job(cx: sqlite3.Connection) -> list[ConversationKey]:
            rows = cx.execute(sql.DUE_TIMERS, (now, max(limit, 0)))
            return [ConversationKey(line, cast(Channel, ch), contact) for line, ch, contact in rows]

        return await self._run("list due timers", job)

    # -- message log -----------------------------------------------------------------------

    async def add_inbound(self, record: MessageRecord) -> bool:
        """False, storing nothing, when the id or the non-empty ``(provider,
        provider_message_id)`` of an inbound message is already known."""
        check_inbound(record)
        row = _message_row(record, processed=False)
        return await self._run(
            "add inbound", lambda cx: cx.execute(sql.INSERT_INBOUND, row).rowcount == 1
        )

    async def add_outbound(self, records: Sequence[MessageRecord]) -> None:
        """Log outbound messages in one transaction; StoreError (nothing logged) when an id
        is already taken."""
        check_outbound(records)
        rows = [_message_row(r, processed=True) for r in records]

        def job(cx: sqlite3.Connection) -> None:
            with _transaction(cx):
                _insert_messages(cx, rows)

        if rows:
            await self._run("add outbound", job)

    async def unprocessed_inbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list unprocessed inbound", sql.INBOX, (max(limit, 0),))

    async def mark_processed(self, message_id: str) -> None:
        """An unknown or already processed id is ignored."""
        await self._run("mark processed", lambda cx: cx.execute(sql.MARK_PROCESSED, (message_id,)))

    async def pending_outbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list pending outbound", sql.OUTBOX, (max(limit, 0),))

    async def update_message(
        self,
        message_id: str,
        *,
        status: MessageStatus | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        price: float | None = None,
        error: str | None = None,
        forward_only: bool = False,
    ) -> MessageRecord | None:
        """Changes also ``updated_at``. StoreError when the new provider id of an inbound
        message is another inbound message's."""
        args = {
            "status": None if status is None else status.value,
            "forward": int(forward_only),
            "rank": 0 if status is None else status.rank,
            "provider": provider,
            "pid": provider_message_id,
            "segments": segments,
            "price": price,
            "error": error,
            "now": time.time(),
            "id": message_id,
        }

        def job(cx: sqlite3.Connection) -> MessageRecord | None:
            row = cx.execute(sql.UPDATE_MESSAGE, args).fetchone()
            return None if row is None else _message(row)

        return await self._run("update message", job)

    async def get_message(self, message_id: str) -> MessageRecord | None:
        found = await self._messages("get message", sql.GET_MESSAGE, (message_id,))
        return found[0] if found else None

    async def find_message(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        """When both directions carry the id, the outbound message (delivery reports are
        what look messages up this way); then the newest. An empty id finds nothing."""
        found = await self._messages(
            "find message", sql.FIND_MESSAGE, (provider, provider_message_id)
        )
        return found[0] if found else None

    async def add_delivered_part(self, message_id: str, part_id: str) -> int:
        """StoreError when there is no such message."""

        def job(cx: sqlite3.Connection) -> int:
            try:
                cx.execute(sql.ADD_DELIVERED_PART, (message_id, part_id))
            except sqlite3.IntegrityError:
                raise StoreError(f"delivered part {part_id!r}: no message {message_id}") from None
            return int(cx.execute(sql.COUNT_DELIVERED_PARTS, (message_id,)).fetchone()[0])

        return await self._run("add delivered part", job)

    async def list_messages(self, query: MessageQuery) -> tuple[list[MessageRecord], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        where, args = sql.message_filter(
            None if query.direction is None else query.direction.value,
            None if query.status is None else query.status.value,
            query.number,
        )
        page = (query.page_size, (query.page - 1) * query.page_size)

        def job(cx: sqlite3.Connection) -> tuple[list[MessageRecord], int]:
            (total,) = cx.execute(sql.COUNT_MESSAGES + where, args).fetchone()
            rows = cx.execute(sql.LIST_MESSAGES.format(where=where), (*args, *page))
            return [_message(r) for r in rows], total

        return await self._run("list messages", job)

    # -- suppressions ----------------------------------------------------------------------

    async def set_suppressed(self, line: str, contact: str, suppressed: bool) -> None:
        if suppressed:
            args: tuple[Any, ...] = (line, contact, time.time())
            await self._run("suppress", lambda cx: cx.execute(sql.SUPPRESS, args))
        else:
            args = (line, contact)
            await self._run("unsuppress", lambda cx: cx.execute(sql.UNSUPPRESS, args))

    async def is_suppressed(self, line: str, contact: str) -> bool:
        return await self._run(
            "read suppression",
            lambda cx: cx.execute(sql.IS_SUPPRESSED, (line, contact)).fetchone() is not None,
        )

    # -- fragments and poll tokens ---------------------------------------------------------

    async def add_fragment(
        self, group: str, index: int, total: int, text: str, now: float
    ) -> list[str] | None:
        """ValueError when ``index`` is not within 1..``total``. The group's total is the
        one its first part gave; a later part outside it is ignored."""
        check_fragment(group, index, total)

        def job(cx: sqlite3.Connection) -> list[str] | None:
            with _transaction(cx):
                cx.execute(sql.ADD_FRAGMENT_GROUP, (group, total, now))
                (group_total,) = cx.execute(sql.FRAGMENT_TOTAL, (group,)).fetchone()
                if index > group_total:
                    return None
                if cx.execute(sql.ADD_FRAGMENT_PART, (group, index, text)).rowcount == 0:
                    return None  # a retry of a part we have
                parts = [t for (t,) in cx.execute(sql.FRAGMENT_PARTS, (group,))]
                if len(parts) < group_total:
                    return None
                cx.execute(sql.DELETE_FRAGMENT_GROUP, (group,))  # parts go by cascade
                return parts

        return await self._run("add fragment", job)

    async def expired_fragments(self, older_than: float) -> list[tuple[str, list[str]]]:
        def job(cx: sqlite3.Connection) -> list[tuple[str, list[str]]]:
            with _transaction(cx):
                groups = [g for (g,) in cx.execute(sql.EXPIRED_FRAGMENT_GROUPS, (older_than,))]
                result = []
                for group in groups:
                    parts = [t for (t,) in cx.execute(sql.FRAGMENT_PARTS, (group,))]
                    cx.execute(sql.DELETE_FRAGMENT_GROUP, (group,))
                    result.append((group, parts))
                return result

        return await self._run("expire fragments", job)

    async def seen(self, namespace: str, token: str, now: float) -> bool:
        args = (namespace, token, now)
        return await self._run(
            "record poll token", lambda cx: cx.execute(sql.SEEN, args).rowcount == 0
        )

    async def prune_seen(self, older_than: float) -> int:
        """Forget tokens recorded before ``older_than``; returns how many were forgotten."""
        return await self._run(
            "prune poll tokens", lambda cx: cx.execute(sql.PRUNE_SEEN, (older_than,)).rowcount
        )

    # -- internals -------------------------------------------------------------------------

    async def _messages(self, what: str, query: str, args: tuple[Any, ...]) -> list[MessageRecord]:
        return await self._run(what, lambda cx: [_message(r) for r in cx.execute(query, args)])

    async def _run(self, what: str, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on the connection's thread: at once when the thread is free, else
        in the next batch (module docstring, "Group commit"). SQLite errors become
        StoreError."""
        if self._db is None:
            raise StoreError(f"SQLite store {self.path} is not open (await store.open() first)")
        try:
            if self._busy:
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._queue.append((job, future))
                return cast(T, await future)
            self._busy = True
            try:
                [(ok, value)] = await self._call(_run_batch, [job])
            finally:
                self._busy = False
                if self._queue:  # queued while the thread ran this one
                    self._start_committer()
            if not ok:
                raise value
            return cast(T, value)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {what} failed: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"SQLite store {self.path}: {what}: a stored JSON value is corrupt ({exc})"
            ) from exc

    def _start_committer(self) -> None:
        self._busy = True
        self._committer = asyncio.create_task(self._commit_batches(), name="convo-sqlite")

    async def _commit_batches(self) -> None:
        """Send the queued jobs to the thread, all of them as one batch, until none are
        left (a job queued while a batch runs goes in the next one); then the thread is
        free again."""
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                jobs = [job for job, _ in batch]
                try:
                    outcomes = await self._call(_run_batch, jobs)
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # the store was closed under the queued jobs
                    outcomes = [(False, exc)] * len(batch)
                _settle(batch, outcomes)
        finally:
            self._busy = False

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread: one hop."""
        db = self._db
        if db is None:
            raise StoreError(f"SQLite store {self.path} is not open (await store.open() first)")
        # aiosqlite has no public way to run a function on its thread, and we need a whole
        # batch to run there as one call (nothing interleaved): `_execute` is that way,
        # unchanged since aiosqlite 0.x. Untyped there; `fn` is typed, so the cast is sound.
        return cast(T, await db._execute(fn, db._conn, *args))  # type: ignore[no-untyped-call]

    # -- erasure ---------------------------------------------------------------------------

    async def erase_contact(self, contact: str) -> ErasedContact:
        """See :meth:`convo.store.base.Erasure.erase_contact`: one transaction; suppressions
        are kept."""
        args = (contact,)

        def job(cx: sqlite3.Connection) -> ErasedContact:
            with _transaction(cx):
                copies = dict.fromkeys(cx.execute(sql.ERASE_PROVIDER_COPIES, args))
                messages = cx.execute(sql.ERASE_MESSAGES, args).rowcount
                sessions = cx.execute(sql.ERASE_SESSIONS, args).rowcount
                (parts,) = cx.execute(sql.COUNT_CONTACT_FRAGMENTS, args).fetchone()
                cx.execute(sql.ERASE_FRAGMENT_GROUPS, args)
            return ErasedContact(sessions, messages, parts, tuple(copies))

        return await self._run("erase contact", job)


# -- sync helpers that run on the connection's thread ---------------------------------------


Outcome = tuple[bool, Any]  # (True, result) or (False, the exception the job raised)


def _run_batch(
    cx: sqlite3.Connection, jobs: list[Callable[[sqlite3.Connection], Any]]
) -> list[Outcome]:
    """Run ``jobs`` in order in one transaction, each in its own savepoint: a job that
    raises is rolled back alone and gets its exception; the others commit together. When
    the commit fails, every job gets that error (none of them happened)."""
    if len(jobs) == 1:  # alone: the job is its own unit (``_transaction``), as it would be
        try:
            return [(True, jobs[0](cx))]
        except Exception as exc:
            return [(False, exc)]
    outcomes: list[Outcome] = []
    cx.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            cx.execute("SAVEPOINT job")
            try:
                outcomes.append((True, job(cx)))
            except Exception as exc:
                cx.execute("ROLLBACK TO job")
                outcomes.append((False, exc))
            cx.execute("RELEASE job")
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


def _settle(batch: list[tuple[Any, asyncio.Future[Any]]], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():
            continue  # its caller was cancelled; the job ran (or not) all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


@contextmanager
def _transaction(cx: sqlite3.Connection) -> Iterator[None]:
    """The statements of one store method as one unit. Inside a batch (always, at run
    time) the batch's savepoint is that unit already; outside one (opening the file) it
    is a transaction of its own."""
    if cx.in_transaction:
        yield
        return
    # IMMEDIATE takes the write lock up front, so a transaction never fails half-way
    # with SQLITE_BUSY when another process writes (it waits busy_timeout instead).
    cx.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if cx.in_transaction:
            cx.execute("ROLLBACK")
        raise
    cx.execute("COMMIT")


def _insert_messages(cx: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert message rows; StoreError naming the id when one is already in the log."""
    before = cx.total_changes
    try:
        cx.executemany(sql.INSERT_MESSAGE, rows)
    except sqlite3.IntegrityError as exc:
        # executemany stops at the first failing row: the rows before it went in.
        failed = rows[cx.total_changes - before][0]
        raise StoreError(f"message id {failed} is already in the log ({exc})") from None


def _user_version(cx: sqlite3.Connection) -> int:
    return int(cx.execute("PRAGMA user_version").fetchone()[0])


def _prepare(cx: sqlite3.Connection) -> None:
    """Connection settings, then create or migrate the schema."""
    cx.execute("PRAGMA journal_mode = WAL")
    cx.execute("PRAGMA synchronous = NORMAL")
    # Checkpoint every ~16 MB of WAL instead of 4 MB: fewer checkpoint stalls on busy
    # servers (measured 15-25% more turns/s), at the cost of a larger WAL file.
    cx.execute("PRAGMA wal_autocheckpoint = 4000")
    cx.execute("PRAGMA foreign_keys = ON")
    latest = len(MIGRATIONS)
    while (version := _user_version(cx)) != latest:
        if version > latest:
            raise StoreError(
                f"SQLite store file has schema version {version}, newer than this convo "
                f"knows (version {latest}): upgrade convo to open it"
            )
        with _transaction(cx):
            # Another process may have migrated while we waited for the write lock.
            if _user_version(cx) != version:
                continue
            for statement in sql.statements(MIGRATIONS[version]):
                cx.execute(statement)
            cx.execute(f"PRAGMA user_version = {version + 1}")


def _dump(session: Session, field: str, value: dict[str, Any]) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session {session.key}: {field} must be JSON data ({exc})") from None


def _session_row(s: Session) -> Row:
    k = s.key
    params, slots = _dump(s, "params", s.params), _dump(s, "slots", s.slots)
    return (
        *(k.line, k.channel, k.contact, s.flow, s.flow_version, s.step, s.lang, params, slots),
        *(s.attempts, s.status.value, s.contact_name, s.timer_due, s.timer_step),
        *(s.created_at, s.updated_at),
    )


def _session(row: Row) -> Session:
    (line, channel, contact, flow, version, step, lang, params, slots, *rest) = row
    attempts, status, name, timer_due, timer_step, created_at, updated_at = rest
    return Session(
        key=ConversationKey(line, channel, contact),
        flow=flow,
        flow_version=version,
        step=step,
        lang=lang,
        params=json.loads(params),
        slots=json.loads(slots),
        attempts=attempts,
        status=_CONVERSATION[status],
        contact_name=name,
        timer_due=timer_due,
        timer_step=timer_step,
        created_at=created_at,
        updated_at=updated_at,
    )


def _message_row(m: MessageRecord, *, processed: bool) -> Row:
    media = json.dumps(list(m.media_urls)) if m.media_urls else "[]"
    metadata = json.dumps(dict(m.metadata)) if m.metadata else "{}"
    return (
        *(m.id, m.direction.value, m.line, m.contact, m.channel, m.text, m.status.value),
        *(m.provider, m.provider_message_id, m.segments, m.price, m.error, media),
        *(int(processed), m.created_at, m.updated_at, metadata),
    )


def _message(row: Row) -> MessageRecord:
    (id_, direction, line, contact, channel, text, status, provider, pid, *rest) = row
    segments, price, error, media, created_at, updated_at, metadata = rest
    return MessageRecord(
        id=id_,
        direction=_DIRECTION[direction],
        line=line,
        contact=contact,
        text=text,
        status=_STATUS[status],
        channel=channel,
        provider=provider,
        provider_message_id=pid,
        segments=segments,
        price=price,
        error=error,
        media_urls=() if media == "[]" else tuple(json.loads(media)),
        created_at=created_at,
        updated_at=updated_at,
        metadata={} if metadata == "{}" else json.loads(metadata),
    )
