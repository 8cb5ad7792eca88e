"""The embedded store: a :class:`~convo.store.base.Store` in one SQLite file.

Three modules beside this one make it up, one concern each:

* :mod:`convo.store.sqlite_connection`  the connection, its thread, group commit, the
  schema migrations on open, and SQLite errors as StoreError;
* :mod:`convo.store.sqlite_schema`      the tables, their migrations and every statement;
* :mod:`convo.store.sqlite_rows`        rows to and from sessions and messages.

Here, each method of the store protocols is one job on the connection: the statements it
runs and the rows it decodes, in one transaction (or the batch it commits in). A job is a
function of the database alone: run twice on the same data, it does the same and has no
effect outside the connection (a batch that fails runs again: ``sqlite_connection``).
A method returns once its job committed, so what it wrote is durable then.

Schema. ``PRAGMA user_version`` is the number of :data:`MIGRATIONS` applied; ``open()``
applies the missing ones (:mod:`convo.store.migrations`, the mechanism every SQL store
shares) and refuses a file written by a newer convo. To change the schema, append a script
to :data:`MIGRATIONS`; never edit an old one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import convo.store.sqlite_reports as reports
import convo.store.sqlite_rows as rows
import convo.store.sqlite_schema as sql
from convo.exceptions import StoreError
from convo.models import (
    Channel,
    ConversationKey,
    ConversationStatus,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.base import (
    CLAIM_LEASE,
    ConversationQuery,
    ConversationRow,
    ErasedContact,
    MessageQuery,
    SendOutcome,
    SessionCount,
    StepCount,
)
from convo.store.checks import (
    check_call_log,
    check_fragment,
    check_inbound,
    check_outbound,
    check_query,
)
from convo.store.locks import LocalLocks
from convo.store.migrations import SchemaStatus
from convo.store.sqlite_campaigns import ERASE_RECIPIENTS, SqliteCampaigns
from convo.store.sqlite_connection import (
    BRIEF_BATCH,
    Job,
    SqliteConnection,
    transaction,
    user_version,
)
from convo.store.sqlite_contacts import SqliteContacts
from convo.store.sqlite_flow_sources import SqliteFlowSources
from convo.store.tombstones import new_key, tombstone

MIGRATIONS: list[str] = sql.MIGRATIONS
"""Schema scripts: ``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``."""

T = TypeVar("T")


class SqliteStore(SqliteContacts, SqliteCampaigns, SqliteFlowSources):
    """A :class:`~convo.store.base.Store` in the SQLite file ``path``.

    ``open()`` creates the file (and its parent directory) or migrates it; it raises
    StoreError when the file cannot be opened or has a newer schema than this code.
    Every other method raises StoreError when the store is not open or SQLite fails.
    With ``migrate=False`` (``convo db``), ``open()`` only connects: then only
    :meth:`schema_status` and :meth:`upgrade_schema` are sure to work. ``brief_batch``:
    the fewest brief jobs (a text, a turn, a claim) that run as one batch on the event
    loop (:mod:`convo.store.sqlite_connection`).
    """

    shared: ClassVar[bool] = False  # one process: its conversation locks are LocalLocks

    def __init__(
        self, path: str | Path, *, migrate: bool = True, brief_batch: int = BRIEF_BATCH
    ) -> None:
        self.path = Path(path)
        self._cx = SqliteConnection(self.path, brief_batch=brief_batch)
        self._migrate = migrate
        self._locks = LocalLocks()  # one process holds this store: its locks suffice
        self._tombstone_key: bytes | None = None  # the file's, read by open()

    def __repr__(self) -> str:
        state = "open" if self._cx.is_open else "closed"
        return f"<SqliteStore {str(self.path)!r} {state}>"

    # -- lifecycle -------------------------------------------------------------------------

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """The conversation's turn lock, for this process (``ConversationLocks``)."""
        return self._locks.lock(key)

    async def open(self) -> None:
        """Also reads the file's tombstone key, creating it the first time."""
        await self._cx.open(migrate=self._migrate)
        if self._tombstone_key is not None or not self._migrate:
            return
        candidate = new_key()

        def job(cx: sqlite3.Connection) -> bytes:
            # One transaction: of two processes opening a new file, the first one's key
            # stays and both read it.
            with transaction(cx):
                cx.execute(sql.ADD_META, (sql.TOMBSTONE_KEY, candidate))
                (key,) = cx.execute(sql.GET_META, (sql.TOMBSTONE_KEY,)).fetchone()
            return bytes(key)

        try:
            self._tombstone_key = await self._run("read tombstone key", job)
        except BaseException:
            await self._cx.close()
            raise

    async def ping(self) -> bool:
        try:
            return await self._run("ping", lambda cx: cx.execute("SELECT 1").fetchone() == (1,))
        except StoreError:
            return False

    async def writable(self) -> bool:
        """Writes the file's ``user_version`` back, unchanged, and commits: a real write
        (page 1 goes to the WAL), waiting at most :data:`PROBE_WAIT` for the write lock."""
        try:
            return await self._run("write probe", _probe_write)
        except StoreError:
            return False

    async def close(self) -> None:
        await self._cx.close()

    async def schema_version(self) -> int:
        """The file's ``user_version``: how many :data:`MIGRATIONS` it has."""
        return await self._run("read schema version", user_version)

    async def schema_status(self) -> SchemaStatus:
        """The file's schema version against this convo's :data:`MIGRATIONS`."""
        return await self._cx.schema_status()

    async def upgrade_schema(self) -> SchemaStatus:
        """Apply the missing :data:`MIGRATIONS`; returns the status found before."""
        return await self._cx.upgrade()

    # -- sessions --------------------------------------------------------------------------

    async def get_session(self, key: ConversationKey) -> Session | None:
        def job(cx: sqlite3.Connection) -> Session | None:
            row = cx.execute(sql.GET_SESSION, (key.line, key.channel, key.contact)).fetchone()
            return None if row is None else rows.session(row)

        return await self._brief("get session", job)

    async def load_turn(self, key: ConversationKey) -> tuple[Session | None, bool]:
        return await self._brief("load turn", lambda cx: _load_turn(cx, key))

    def turn_idle(self, key: ConversationKey) -> bool:
        """True when no turn of ``key`` holds or waits for its lock (``lock(key)`` would
        not wait)."""
        return self._locks.idle(key)

    async def add_inbound_loading(
        self, record: MessageRecord, key: ConversationKey
    ) -> tuple[bool, tuple[Session | None, bool] | None]:
        """:meth:`add_inbound` and, when the message is new, :meth:`load_turn` of its
        conversation ``key``, in one job (one hop to the connection's thread, not two).
        Meant for a caller that holds the conversation's lock: only then is what it loaded
        still true when its turn runs. For a duplicate the turn is not read: ``(False,
        None)``. A turn that cannot be read (a corrupt session) never undoes storing the
        text: ``(True, None)``, and the caller's ``load_turn`` raises what is wrong."""
        check_inbound(record)
        row = rows.message_row(record, processed=False)
        pid = record.provider_message_id
        dead = tombstone(self._key(), record.provider, pid) if pid else None

        def job(cx: sqlite3.Connection) -> tuple[bool, tuple[Session | None, bool] | None]:
            if not _add_inbound(cx, row, dead):
                return False, None
            try:
                return True, _load_turn(cx, key)
            except Exception:  # the text is stored all the same; its turn reports this
                return True, None

        return await self._brief("add inbound", job)

    async def sessions_of(self, contact: str) -> list[Session]:
        def job(cx: sqlite3.Connection) -> list[Session]:
            return [rows.session(r) for r in cx.execute(sql.SESSIONS_OF, (contact,)).fetchall()]

        return await self._run("list sessions", job)

    async def save_turn(
        self,
        session: Session,
        *,
        inbound_id: str | None = None,
        outbound: Sequence[MessageRecord] = (),
        suppressed: bool | None = None,
        call_log: Sequence[MessageRecord] = (),
    ) -> None:
        """One transaction: upsert ``session``, mark ``inbound_id`` processed (an unknown
        id is ignored), log ``outbound`` and ``call_log`` (processed), set the suppression.
        StoreError, and nothing changed, when the session holds non-JSON data, a message
        id is taken, or SQLite fails."""
        check_outbound(outbound)
        check_call_log(call_log)
        row = rows.session_row(session)
        messages = [rows.message_row(m, processed=True) for m in (*outbound, *call_log)]
        line, contact = session.key.line, session.key.contact

        def job(cx: sqlite3.Connection) -> None:
            with transaction(cx):
                reports.record_visit(cx, session)  # before the upsert: compares
                cx.execute(sql.UPSERT_SESSION, row)
                if inbound_id is not None:
                    cx.execute(sql.MARK_PROCESSED, (inbound_id,))
                rows.insert_messages(cx, messages)
                if suppressed:
                    cx.execute(sql.SUPPRESS, (line, contact, time.time()))
                elif suppressed is not None:
                    cx.execute(sql.UNSUPPRESS, (line, contact))

        await self._brief("save turn", job)

    async def due_timers(self, now: float, limit: int = 100) -> list[ConversationKey]:
        def job(cx: sqlite3.Connection) -> list[ConversationKey]:
            due = cx.execute(sql.DUE_TIMERS, (now, max(limit, 0)))
            return [ConversationKey(line, cast(Channel, ch), contact) for line, ch, contact in due]

        return await self._run("list due timers", job)

    async def session_counts(self) -> list[SessionCount]:
        def job(cx: sqlite3.Connection) -> list[SessionCount]:
            return [
                SessionCount(flow, version, step, ConversationStatus(status), n, timers)
                for flow, version, step, status, n, timers in cx.execute(sql.SESSION_COUNTS)
            ]

        return await self._run("count sessions", job)

    # -- message log -----------------------------------------------------------------------

    async def add_inbound(self, record: MessageRecord) -> bool:
        """False, storing nothing, when the id or the non-empty ``(provider,
        provider_message_id)`` of an inbound message is already known."""
        check_inbound(record)
        row = rows.message_row(record, processed=False)
        pid = record.provider_message_id
        dead = tombstone(self._key(), record.provider, pid) if pid else None
        return await self._brief("add inbound", lambda cx: _add_inbound(cx, row, dead))

    async def add_outbound(self, records: Sequence[MessageRecord]) -> None:
        """Log outbound messages in one transaction; StoreError (nothing logged) when an id
        is already taken."""
        check_outbound(records)
        messages = [rows.message_row(r, processed=True) for r in records]

        def job(cx: sqlite3.Connection) -> None:
            with transaction(cx):
                rows.insert_messages(cx, messages)

        if messages:
            await self._brief("add outbound", job)

    async def unprocessed_inbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list unprocessed inbound", sql.INBOX, (max(limit, 0),))

    async def unprocessed_of(self, key: ConversationKey, limit: int = 100) -> list[MessageRecord]:
        args = (key.contact, key.line, key.channel, max(limit, 0))
        return await self._messages("list a conversation's unprocessed inbound", sql.INBOX_OF, args)

    async def mark_processed(self, message_id: str) -> None:
        """An unknown or already processed id is ignored."""
        await self._brief(
            "mark processed", lambda cx: cx.execute(sql.MARK_PROCESSED, (message_id,))
        )

    async def pending_outbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list pending outbound", sql.OUTBOX, (max(limit, 0),))

    async def outbox_depth(self) -> int:
        """A count over the outbox's partial index."""
        return await self._run(
            "count pending outbound", lambda cx: int(cx.execute(sql.OUTBOX_DEPTH).fetchone()[0])
        )

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
        args = _update_args(
            message_id,
            status,
            provider=provider,
            provider_message_id=provider_message_id,
            segments=segments,
            price=price,
            error=error,
            forward_only=forward_only,
        )

        def job(cx: sqlite3.Connection) -> MessageRecord | None:
            row = cx.execute(sql.UPDATE_MESSAGE, args).fetchone()
            return None if row is None else rows.message(row)

        return await self._brief("update message", job)

    async def due_outbound(self, now: float, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list due outbound", sql.DUE_OUTBOX, (now, max(limit, 0)))

    async def claim_next(
        self, line: str, contact: str, now: float, *, lease: float = CLAIM_LEASE
    ) -> MessageRecord | None:
        """One UPDATE: the claim and its check cannot be split by another writer."""
        return await self._one(
            "claim next outbound", sql.CLAIM_NEXT, _claim(line, contact, now, lease)
        )

    async def record_outcome(
        self, outcome: SendOutcome, *, claim_at: float | None = None, lease: float = CLAIM_LEASE
    ) -> tuple[MessageRecord | None, MessageRecord | None]:
        """One job, one transaction: the outcome's UPDATE, then the claim's."""
        args = _update_args(
            outcome.message_id, outcome.status, forward_only=True, **outcome.fields()
        )

        def job(cx: sqlite3.Connection) -> tuple[MessageRecord | None, MessageRecord | None]:
            with transaction(cx):
                found = cx.execute(sql.UPDATE_MESSAGE, args).fetchall()
                if not found:
                    return None, None
                updated = rows.message(found[0])
                if claim_at is None:
                    return updated, None
                claim = _claim(updated.line, updated.contact, claim_at, lease)
                claimed = cx.execute(sql.CLAIM_NEXT, claim).fetchall()
                return updated, (rows.message(claimed[0]) if claimed else None)

        return await self._brief("record outcome", job)

    async def release_claims(self, now: float) -> int:
        return await self._run(
            "release claims", lambda cx: cx.execute(sql.RELEASE_CLAIMS, (now, now)).rowcount
        )

    async def defer_message(
        self, message_id: str, *, until: float, error: str
    ) -> MessageRecord | None:
        args = {"id": message_id, "until": until, "error": error, "clock": time.time()}

        def job(cx: sqlite3.Connection) -> MessageRecord | None:
            with transaction(cx):
                found = cx.execute(sql.DEFER_MESSAGE, args).fetchall()
                if not found:
                    found = cx.execute(sql.GET_MESSAGE, (message_id,)).fetchall()
                return rows.message(found[0]) if found else None

        return await self._brief("defer message", job)

    async def dead_letters(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[MessageRecord], int]:
        """ValueError for a page or page size below 1."""
        check_query(MessageQuery(page=page, page_size=page_size))
        args = (page_size, (page - 1) * page_size)

        def job(cx: sqlite3.Connection) -> tuple[list[MessageRecord], int]:
            (total,) = cx.execute(sql.COUNT_DEAD).fetchone()
            found = cx.execute(sql.DEAD_LETTERS, args).fetchall()
            return [rows.message(r) for r in found], total

        return await self._run("list dead letters", job)

    async def requeue_dead(self, now: float, message_ids: Sequence[str] | None = None) -> list[str]:
        args: dict[str, float | str] = {"now": now, "clock": time.time()}
        if message_ids is None:
            statement = sql.REQUEUE_ALL_DEAD
        else:
            statement, args["ids"] = sql.REQUEUE_DEAD, json.dumps(list(message_ids))

        def job(cx: sqlite3.Connection) -> list[str]:
            requeued = cx.execute(statement, args).fetchall()
            return [message_id for message_id, *_ in sorted(requeued, key=lambda r: r[1:])]

        return await self._run("requeue dead letters", job)

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

    async def last_sent_to(self, line: str, contact: str, since: float) -> float | None:
        args = (contact, since, line)
        return await self._brief(
            "last sent to", lambda cx: cx.execute(sql.LAST_SENT_TO, args).fetchone()[0]
        )

    async def add_delivered_part(self, message_id: str, part_id: str) -> int:
        """StoreError when there is no such message."""

        def job(cx: sqlite3.Connection) -> int:
            try:
                cx.execute(sql.ADD_DELIVERED_PART, (message_id, part_id))
            except sqlite3.IntegrityError:
                raise StoreError(f"delivered part {part_id!r}: no message {message_id}") from None
            return int(cx.execute(sql.COUNT_DELIVERED_PARTS, (message_id,)).fetchone()[0])

        return await self._brief("add delivered part", job)

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
            found = cx.execute(sql.LIST_MESSAGES.format(where=where), (*args, *page)).fetchall()
            return [rows.message(r) for r in found], total

        return await self._run("list messages", job)

    # -- reports (convo.store.sqlite_reports) -----------------------------------------------

    async def list_conversations(
        self, query: ConversationQuery
    ) -> tuple[list[ConversationRow], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        return await self._run(
            "list conversations", lambda cx: reports.list_conversations(cx, query)
        )

    async def step_counts(
        self, flow: str, since: float, until: float, *, idle_before: float
    ) -> list[StepCount]:
        return await self._run(
            "count steps", lambda cx: reports.step_counts(cx, flow, since, until, idle_before)
        )

    async def prune_step_visits(self, older_than: float) -> int:
        return await self._run(
            "prune step visits",
            lambda cx: cx.execute(reports.PRUNE_VISITS, (older_than,)).rowcount,
        )

    # -- suppressions ----------------------------------------------------------------------

    async def set_suppressed(self, line: str, contact: str, suppressed: bool) -> None:
        if suppressed:
            args: tuple[Any, ...] = (line, contact, time.time())
            await self._brief("suppress", lambda cx: cx.execute(sql.SUPPRESS, args))
        else:
            args = (line, contact)
            await self._brief("unsuppress", lambda cx: cx.execute(sql.UNSUPPRESS, args))

    async def is_suppressed(self, line: str, contact: str) -> bool:
        return await self._brief(
            "read suppression",
            lambda cx: cx.execute(sql.IS_SUPPRESSED, (line, contact)).fetchone() is not None,
        )

    # -- fragments -------------------------------------------------------------------------

    async def add_fragment(
        self, group: str, index: int, total: int, text: str, now: float, *, contact: str
    ) -> list[str] | None:
        """A later part outside the group's total (its first part's) is ignored."""
        check_fragment(group, index, total)

        def job(cx: sqlite3.Connection) -> list[str] | None:
            with transaction(cx):
                cx.execute(sql.ADD_FRAGMENT_GROUP, (group, total, now, contact))
                (group_total,) = cx.execute(sql.FRAGMENT_TOTAL, (group,)).fetchone()
                if index > group_total:
                    return None
                cx.execute(sql.ADD_FRAGMENT_PART, (group, index, text))  # a retry: kept once
                parts = [t for (t,) in cx.execute(sql.FRAGMENT_PARTS, (group,))]
                return parts if len(parts) == group_total else None

        return await self._brief("add fragment", job)

    async def expired_fragments(self, older_than: float) -> list[tuple[str, list[str]]]:
        def job(cx: sqlite3.Connection) -> list[tuple[str, list[str]]]:
            groups = [g for (g,) in cx.execute(sql.EXPIRED_FRAGMENT_GROUPS, (older_than,))]
            return [
                (group, [t for (t,) in cx.execute(sql.FRAGMENT_PARTS, (group,))])
                for group in groups
            ]

        return await self._run("read expired fragments", job)

    async def finish_fragments(self, group: str) -> None:
        def job(cx: sqlite3.Connection) -> None:
            cx.execute(sql.DELETE_FRAGMENT_GROUP, (group,))  # parts go by cascade

        await self._run("finish fragments", job)

    # -- seen tokens -----------------------------------------------------------------------

    async def seen(self, namespace: str, token: str, now: float) -> bool:
        args = (namespace, token, now)
        return await self._run(
            "record seen token", lambda cx: cx.execute(sql.SEEN, args).rowcount == 0
        )

    async def was_seen(self, namespace: str, token: str) -> bool:
        args = (namespace, token)
        return await self._run(
            "read seen token", lambda cx: cx.execute(sql.WAS_SEEN, args).fetchone() is not None
        )

    async def prune_seen(self, older_than: float) -> int:
        """Seen tokens, idempotent requests and tombstones: one DELETE each, over their
        time's index."""
        args = (older_than,)

        def job(cx: sqlite3.Connection) -> int:
            with transaction(cx):
                seen = cx.execute(sql.PRUNE_SEEN, args).rowcount
                seen += cx.execute(sql.PRUNE_REQUESTS, args).rowcount
                return seen + cx.execute(sql.PRUNE_TOMBSTONES, args).rowcount

        return await self._run("prune seen tokens", job)

    # -- erasure ---------------------------------------------------------------------------

    async def erase_contact(self, contact: str) -> ErasedContact:
        """See :meth:`convo.store.base.Erasure.erase_contact`: one transaction; suppressions
        are kept."""
        args = (contact,)
        key, now = self._key(), time.time()

        def job(cx: sqlite3.Connection) -> ErasedContact:
            with transaction(cx):
                copies = dict.fromkeys(cx.execute(sql.ERASE_PROVIDER_COPIES, args))
                inbound = cx.execute(sql.ERASE_INBOUND_IDS, args).fetchall()
                dead = [(tombstone(key, provider, pid), now) for provider, pid in inbound]
                cx.executemany(sql.ADD_TOMBSTONE, dead)
                messages = cx.execute(sql.ERASE_MESSAGES, args).rowcount
                sessions = cx.execute(sql.ERASE_SESSIONS, args).rowcount
                cx.execute(reports.ERASE_VISITS, args)
                (parts,) = cx.execute(sql.COUNT_CONTACT_FRAGMENTS, args).fetchone()
                cx.execute(sql.ERASE_FRAGMENT_GROUPS, args)
                cx.execute(ERASE_RECIPIENTS, args)  # campaign rows with its number
                had_contact = cx.execute(sql.DELETE_CONTACT, args).rowcount > 0
            return ErasedContact(sessions, messages, parts, tuple(copies), had_contact)

        return await self._run("erase contact", job)

    # -- internals -------------------------------------------------------------------------

    async def _messages(self, what: str, query: str, args: tuple[Any, ...]) -> list[MessageRecord]:
        # Every row is fetched before one is decoded: a row that fails to decode must not
        # leave the statement open (it would hold a read lock on the file until collected).
        return await self._run(
            what, lambda cx: [rows.message(r) for r in cx.execute(query, args).fetchall()]
        )

    async def _one(self, what: str, change: str, args: dict[str, Any]) -> MessageRecord | None:
        """Run the UPDATE ... RETURNING ``change``; its one changed row, or None. The row is
        decoded inside the transaction: a row that cannot be decoded changes nothing."""

        def job(cx: sqlite3.Connection) -> MessageRecord | None:
            with transaction(cx):
                found = cx.execute(change, args).fetchall()
                return rows.message(found[0]) if found else None

        return await self._brief(what, job)

    def _key(self) -> bytes:
        """The file's tombstone key; StoreError when the store is not open."""
        if self._tombstone_key is None:
            raise StoreError(f"SQLite store {self.path} is not open (await store.open() first)")
        return self._tombstone_key

    def _run(self, what: str, job: Job[T]) -> Awaitable[T]:
        return self._cx.run(what, job)

    def _brief(self, what: str, job: Job[T]) -> Awaitable[T]:
        """A job that reads and writes a few rows found by key (a turn, a message, a
        claim): it may run on the event loop (:mod:`convo.store.sqlite_connection`)."""
        return self._cx.run(what, job, brief=True)


def _update_args(
    message_id: str,
    status: MessageStatus | None,
    *,
    provider: str | None,
    provider_message_id: str | None,
    segments: int | None,
    price: float | None,
    error: str | None,
    forward_only: bool,
) -> dict[str, Any]:
    """The parameters of :data:`sql.UPDATE_MESSAGE`."""
    return {
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


def _claim(line: str, contact: str, now: float, lease: float) -> dict[str, Any]:
    """The parameters of :data:`sql.CLAIM_NEXT`."""
    return {
        "line": line,
        "contact": contact,
        "now": now,
        "until": now + lease,
        "clock": time.time(),
    }


PROBE_WAIT = 1.0
"""Seconds :meth:`SqliteStore.writable` waits for the write lock: a readiness check must
answer quickly, whereas writes wait the connection's busy timeout."""


def _probe_write(cx: sqlite3.Connection) -> bool:
    (waited,) = cx.execute("PRAGMA busy_timeout").fetchone()
    cx.execute(f"PRAGMA busy_timeout = {int(PROBE_WAIT * 1000)}")
    try:
        with transaction(cx):
            cx.execute(f"PRAGMA user_version = {user_version(cx)}")
    finally:
        cx.execute(f"PRAGMA busy_timeout = {int(waited)}")
    return True


def _add_inbound(cx: sqlite3.Connection, row: rows.Row, dead: bytes | None) -> bool:
    """Insert the inbound message ``row`` unless it is a duplicate: its id or provider id
    taken, or its tombstone ``dead`` (None without a provider id) there. One unit: an
    erasure cannot fall between the tombstone check and the insert (the two forms:
    :data:`sql.INSERT_INBOUND`)."""
    if not cx.in_transaction:
        return cx.execute(sql.INSERT_INBOUND_CHECKED, (*row, dead)).rowcount == 1
    if dead is not None and cx.execute(sql.TOMBSTONED, (dead,)).fetchone() is not None:
        return False
    return cx.execute(sql.INSERT_INBOUND, row).rowcount == 1


def _load_turn(cx: sqlite3.Connection, key: ConversationKey) -> tuple[Session | None, bool]:
    """The conversation's session (None when it has none) and whether its contact opted out."""
    row = cx.execute(sql.GET_SESSION, (key.line, key.channel, key.contact)).fetchone()
    suppressed = cx.execute(sql.IS_SUPPRESSED, (key.line, key.contact)).fetchone()
    return (None if row is None else rows.session(row)), suppressed is not None
