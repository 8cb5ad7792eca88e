"""The shared store: a :class:`~convo.store.base.Store` in a PostgreSQL database.

Several ``convo serve`` processes, on one machine or many, share one database and keep
every guarantee the SQLite store gives one process. Three modules beside this one make it
up, one concern each:

* :mod:`convo.store.postgres_connection`  the pool, the conversation lock (a
  transaction-scoped advisory lock whose transaction the whole turn runs in), each
  process's presence lock, the migration lock, and asyncpg's errors as StoreError;
* :mod:`convo.store.postgres_schema`      the tables, their migrations and every statement;
* :mod:`convo.store.rows`                 rows to and from sessions and messages (shared
  with SQLite).

What rests on what, across processes:

* a conversation's turns run one at a time: ``lock(key)`` (``pg_advisory_xact_lock``),
  and the turn's load and save run in the lock's transaction;
* an inbound message is stored once: the unique index on its provider id, and tombstones,
  in one ``INSERT ... ON CONFLICT DO NOTHING``; seen tokens, fragment parts and delivered
  parts the same way;
* a reply is claimed by one sender at a time, its recipient's replies in order:
  ``claim_next`` locks the recipient's oldest pending message (``FOR UPDATE SKIP LOCKED``)
  and leases it (``next_attempt_at``); a process that dies leaves its claims to the others
  when the lease ends, or at once to the next process that starts (presence locks);
* a timer fires once: firing is a turn under the conversation's lock that reads the timer
  again, so of two processes that saw it due the second finds it gone;
* a long text's parts are counted one at a time: the group's row is locked while a part
  is added, so of two processes adding its last parts at once, one sees it whole.

A method called outside a conversation lock runs on a pooled connection and has committed
when it returns; inside one, it commits with the lock's release.

PostgreSQL's text cannot hold U+0000, which SQLite keeps: a NUL in a text, name or id is
stored as U+FFFD (as convo stores every character UTF-8 cannot carry), never refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, TypeVar, cast

import asyncpg

import convo.store.postgres_reports as reports
import convo.store.postgres_schema as sql
import convo.store.postgres_shared as pg_shared
import convo.store.rows as rows
from convo.exceptions import StoreError
from convo.models import (
    Channel,
    Contact,
    ConversationKey,
    ConversationStatus,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.base import (
    CLAIM_LEASE,
    TIMER_LEASE,
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
from convo.store.migrations import SchemaStatus
from convo.store.postgres_batches import Batch, columns
from convo.store.postgres_campaigns import ERASE_RECIPIENTS, PostgresCampaigns
from convo.store.postgres_connection import (
    NOTHING_KEPT,
    PRESENCE,
    Job,
    PostgresConnection,
    TurnLocks,
    describe,
)
from convo.store.postgres_contacts import PostgresContacts, contact_of
from convo.store.postgres_flow_sources import PostgresFlowSources
from convo.store.tombstones import new_key, tombstone

MIGRATIONS: list[str] = sql.MIGRATIONS
"""Schema scripts: ``MIGRATIONS[i]`` brings a database from version ``i`` to ``i + 1``."""

Connection = Any  # asyncpg's connection, or the pool's proxy of one
T = TypeVar("T")
OutcomeCall = tuple[tuple[Any, ...], float | None, float | None]
"""One ``record_outcome`` call: UPDATE_MESSAGE's arguments, the claim time and lease end."""
Outcome = tuple[MessageRecord | None, MessageRecord | None]
_TAKEN = re.compile(r"=\((.*)\) already exists")


class PostgresStore(PostgresContacts, PostgresFlowSources, PostgresCampaigns):
    """A :class:`~convo.store.base.Store` in the PostgreSQL database at ``url``
    (``postgresql://user:password@host:port/database``, with libpq's options such as
    ``sslmode``; any other option is a server setting, e.g. ``search_path=convo``).

    ``open()`` connects and migrates (under the migration lock, so processes starting
    together are safe); StoreError when the database cannot be reached or was written by
    a newer convo. With ``migrate=False`` (``convo db``) it only connects. Every other
    method raises StoreError when the store is not open or the database fails.
    """

    shared: ClassVar[bool] = True  # locks and claims hold across processes

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self._cx = PostgresConnection(url)
        self._locks = TurnLocks(self._cx)
        self._migrate = migrate
        self._tombstone_key: bytes | None = None
        # Group commit of the hottest calls outside turns (convo.store.postgres_batches).
        self._inbound = Batch(self._add_inbound_batch, key=lambda row: row[0])
        self._claims = Batch(self._claim_batch, key=lambda args: (args[0], args[1]))
        self._updates = Batch(self._update_batch, key=lambda args: args[-1])
        self._outcomes = Batch(self._outcome_batch, key=lambda call: call[0][-1])

    def __repr__(self) -> str:
        state = "open" if self._cx.is_open else "closed"
        return f"<PostgresStore {describe(self.url)!r} {state}>"

    # -- lifecycle -------------------------------------------------------------------------

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """The conversation's turn lock, across every process on the database."""
        return self._locks.lock(key)

    async def open(self) -> None:
        """Also reads the database's tombstone key, creating it the first time."""
        if self._cx.is_open:
            return
        await self._cx.open()
        try:
            if not self._migrate:
                return
            await self._cx.upgrade()
            candidate = new_key()

            async def job(cx: Connection) -> bytes:
                # Of two processes opening a new database, the first one's key stays.
                await cx.execute(sql.ADD_META, sql.TOMBSTONE_KEY, candidate)
                return bytes(await cx.fetchval(sql.GET_META, sql.TOMBSTONE_KEY))

            self._tombstone_key = await self._run("read tombstone key", job)
        except BaseException:
            await self._cx.close()
            raise

    async def ping(self) -> bool:
        try:
            return bool(await self._run("ping", lambda cx: cx.fetchval("SELECT true")))
        except StoreError:
            return False

    async def writable(self) -> bool:
        """A transaction id assigned within a second: a real write that changes no data."""
        return await self._cx.probe()

    async def close(self) -> None:
        await self._cx.close()

    async def schema_status(self) -> SchemaStatus:
        return await self._cx.schema_status()

    async def upgrade_schema(self) -> SchemaStatus:
        return await self._cx.upgrade()

    async def schema_version(self) -> int:
        """How many :data:`MIGRATIONS` the database has."""
        status = await self._cx.schema_status()
        return status.version

    # -- what the processes share (convo.store.postgres_shared) --------------------------

    async def take_tokens(self, bucket: str, rate: float, count: int) -> float:
        async def job(cx: Connection) -> float:
            return await pg_shared.take_tokens(cx, bucket, rate, count)

        return await self._run("take rate-limit tokens", job)

    async def listen(self, wake: Callable[[str], None]) -> None:
        await pg_shared.listen(self.url, wake, where=describe(self.url), timeout=5.0)

    # -- sessions --------------------------------------------------------------------------

    async def get_session(self, key: ConversationKey) -> Session | None:
        async def job(cx: Connection) -> Session | None:
            row = await cx.fetchrow(sql.GET_SESSION, key.line, key.channel, key.contact)
            return None if row is None else rows.session(row)

        return await self._run("get session", job)

    async def load_turn(self, key: ConversationKey) -> tuple[Session | None, bool]:
        """What the turn's :meth:`unprocessed_of` read with its texts, if nothing was
        written since (:mod:`convo.store.postgres_connection`, "What a turn reads first")."""
        kept = self._cx.kept(("turn", key))
        if kept is not NOTHING_KEPT:
            return cast(tuple[Session | None, bool], kept)

        async def job(cx: Connection) -> tuple[Session | None, bool]:
            row = await cx.fetchrow(sql.LOAD_TURN, key.line, key.channel, key.contact)
            found = None if row[0] is None else rows.session(tuple(row)[:-1])
            return found, bool(row[-1])

        return await self._run("load turn", job)

    async def sessions_of(self, contact: str) -> list[Session]:
        async def job(cx: Connection) -> list[Session]:
            return [rows.session(r) for r in await cx.fetch(sql.SESSIONS_OF, contact)]

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
        """One transaction (the lock's, when the caller holds it): record the step visit,
        upsert ``session``, mark ``inbound_id`` processed (an unknown id is ignored), log
        ``outbound`` and ``call_log`` (processed), set the suppression. StoreError, and
        nothing changed, when the session holds non-JSON data, a message id is taken, or
        the database fails."""
        check_outbound(outbound)
        check_call_log(call_log)
        row = _storable(rows.session_row(session))
        messages = [_storable(rows.message_row(m, processed=True)) for m in (*outbound, *call_log)]
        line, contact = row[0], row[2]

        async def at_once(cx: Connection) -> None:
            if messages:
                await _insert_messages(
                    cx, [], sql.SAVE_TURN_WITH_REPLY, *row, inbound_id, *messages[0]
                )
            else:
                await cx.execute(sql.SAVE_TURN, *row, inbound_id)

        async def job(cx: Connection) -> None:
            await cx.execute(sql.RECORD_VISIT, *reports.visit_args(row))  # before the upsert
            await cx.execute(sql.UPSERT_SESSION, *row)
            if inbound_id is not None:
                await cx.execute(sql.MARK_PROCESSED, inbound_id)
            await _insert_messages(cx, messages)
            if suppressed:
                await cx.execute(sql.SUPPRESS, line, contact, time.time())
            elif suppressed is not None:
                await cx.execute(sql.UNSUPPRESS, line, contact)

        if len(messages) <= 1 and suppressed is None:  # nearly every turn: one round trip
            await self._run("save turn", at_once)
        else:
            await self._run("save turn", job, transaction=True)

    async def due_timers(self, now: float, limit: int = 100) -> list[ConversationKey]:
        async def job(cx: Connection) -> list[ConversationKey]:
            due = await cx.fetch(sql.DUE_TIMERS, now, max(limit, 0))
            return [ConversationKey(r[0], cast(Channel, r[1]), r[2]) for r in due]

        return await self._run("list due timers", job)

    async def claim_due_timers(
        self, now: float, limit: int = 100, *, lease: float = TIMER_LEASE
    ) -> list[ConversationKey]:
        """Due timers for this process alone until ``now + lease``, oldest first
        (:class:`~convo.store.base.TimerClaims`; ``FOR UPDATE SKIP LOCKED``)."""

        async def job(cx: Connection) -> list[ConversationKey]:
            due = await cx.fetch(sql.CLAIM_DUE_TIMERS, now, max(limit, 0), now + lease)
            due = sorted(due, key=lambda r: (r[3], r[0], r[1], r[2]))
            return [ConversationKey(r[0], cast(Channel, r[1]), r[2]) for r in due]

        return await self._run("claim due timers", job)

    async def session_counts(self) -> list[SessionCount]:
        async def job(cx: Connection) -> list[SessionCount]:
            return [
                SessionCount(r[0], r[1], r[2], ConversationStatus(r[3]), int(r[4]), int(r[5]))
                for r in await cx.fetch(sql.SESSION_COUNTS)
            ]

        return await self._run("count sessions", job)

    async def get_contact(self, number: str) -> Contact | None:
        """In a turn, what its first read kept of the contact, if nothing was written
        since (:meth:`unprocessed_of`)."""
        (stored,) = _storable((number,))
        kept = self._cx.kept(("contact", stored))
        if kept is not NOTHING_KEPT:
            return cast(Contact | None, kept)
        return await super().get_contact(number)

    # -- message log -----------------------------------------------------------------------

    async def add_inbound(self, record: MessageRecord) -> bool:
        """False, storing nothing, when the id or the non-empty ``(provider,
        provider_message_id)`` of an inbound message is already known, or tombstoned."""
        check_inbound(record)
        row = _storable(rows.message_row(record, processed=False))
        provider, pid = row[7], row[8]  # as stored: erasure's tombstones are made from these
        dead = tombstone(self._key(), provider, pid) if pid else None

        if not self._cx.in_turn:
            return await self._inbound((*row, dead))

        async def job(cx: Connection) -> bool:
            return await cx.fetchval(sql.INSERT_INBOUND, *row, dead) is not None

        return await self._run("add inbound", job)

    async def _add_inbound_batch(self, calls: Sequence[tuple[Any, ...]]) -> list[bool]:
        async def job(cx: Connection) -> list[bool]:
            stored = await cx.fetch(sql.INSERT_INBOUND_BATCH, *columns(calls, 21))
            ids = {r[0] for r in stored}
            return [row[0] in ids for row in calls]

        return await self._run("add inbound", job)

    async def add_outbound(self, records: Sequence[MessageRecord]) -> None:
        """Log outbound messages in one transaction; StoreError (nothing logged) when an id
        is already taken."""
        check_outbound(records)
        messages = [_storable(rows.message_row(r, processed=True)) for r in records]

        async def job(cx: Connection) -> None:
            await _insert_messages(cx, messages)
            await cx.execute(pg_shared.NOTIFY_OUTBOX)  # other processes' outboxes: at commit

        if messages:
            await self._run("add outbound", job, transaction=True)

    async def unprocessed_inbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list unprocessed inbound", sql.INBOX, max(limit, 0))

    async def unprocessed_of(self, key: ConversationKey, limit: int = 100) -> list[MessageRecord]:
        """Under the conversation's lock, the same statement also reads the session, the
        suppression and the contact, kept for the turn's :meth:`load_turn` and
        :meth:`get_contact` (one round trip instead of three)."""
        args = _storable((key.contact, key.line, key.channel, max(limit, 0)))
        what = "list a conversation's unprocessed inbound"
        if not self._cx.in_turn:
            return await self._messages(what, sql.INBOX_OF, *args)

        async def job(cx: Connection, lock_key: int | None = None) -> list[MessageRecord]:
            if lock_key is None:
                found = await cx.fetch(sql.TURN_OPENING, *args)
            else:  # the turn's lock is still to be taken: by the same round trip
                found = await cx.fetch(sql.OPEN_TURN, *args, lock_key)
            first = tuple(found[0])
            session = None if first[0] is None else rows.session(first[:16])
            self._cx.keep(("turn", key), (session, bool(first[16])))
            self._cx.keep(("contact", args[0]), contact_of(args[0], first[17:22]))
            return [rows.message(tuple(r)[22:]) for r in found if r[22] is not None]

        return await self._cx.run(what, job, locking=job)

    async def mark_processed(self, message_id: str) -> None:
        """An unknown or already processed id is ignored."""
        await self._execute("mark processed", sql.MARK_PROCESSED, message_id)

    async def pending_outbound(self, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list pending outbound", sql.OUTBOX, max(limit, 0))

    async def outbox_depth(self) -> int:
        """A count over the outbox's partial index."""
        return int(
            await self._run("count pending outbound", lambda cx: cx.fetchval(sql.OUTBOX_DEPTH))
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
        args = (
            None if status is None else status.value,
            forward_only,
            0 if status is None else status.rank,
            provider,
            provider_message_id,
            segments,
            price,
            error,
            time.time(),
            message_id,
        )
        if self._cx.in_turn:
            return await self._one("update message", sql.UPDATE_MESSAGE, *_storable(args))
        return await self._updates(_storable(args))

    async def _update_batch(self, calls: Sequence[tuple[Any, ...]]) -> list[MessageRecord | None]:
        async def job(cx: Connection) -> list[MessageRecord | None]:
            changed = await cx.fetch(sql.UPDATE_MESSAGE_BATCH, *columns(calls, 10))
            found = {r[0]: rows.message(r) for r in changed}
            return [found.get(args[-1]) for args in calls]

        return await self._run("update message", job)

    async def due_outbound(self, now: float, limit: int = 100) -> list[MessageRecord]:
        return await self._messages("list due outbound", sql.DUE_OUTBOX, now, max(limit, 0))

    async def claim_next(
        self, line: str, contact: str, now: float, *, lease: float = CLAIM_LEASE
    ) -> MessageRecord | None:
        """One statement: the recipient's head is locked, re-checked and claimed."""
        await self._cx.keep_presence()
        if self._cx.in_turn:
            args = (line, contact, now, now + lease, time.time(), self._cx.owner)
            return await self._one("claim next outbound", sql.CLAIM_NEXT, *args)
        return await self._claims((line, contact, now, now + lease))

    async def _claim_batch(
        self, calls: Sequence[tuple[str, str, float, float]]
    ) -> list[MessageRecord | None]:
        async def job(cx: Connection) -> list[MessageRecord | None]:
            arrays = columns(calls, 4)
            claimed = await cx.fetch(sql.CLAIM_NEXT_BATCH, *arrays, time.time(), self._cx.owner)
            found = {(r[2], r[3]): rows.message(r) for r in claimed}
            return [found.get((line, contact)) for line, contact, _due, _end in calls]

        return await self._run("claim next outbound", job)

    async def record_outcome(
        self, outcome: SendOutcome, *, claim_at: float | None = None, lease: float = CLAIM_LEASE
    ) -> tuple[MessageRecord | None, MessageRecord | None]:
        """One transaction: the outcome's UPDATE, then the claim. Outside a turn, the
        outcomes recorded at once go together, as one statement (:meth:`_outcome_batch`)."""
        update = _storable(
            (
                outcome.status.value,
                True,
                outcome.status.rank,
                outcome.provider,
                outcome.provider_message_id,
                outcome.segments,
                outcome.price,
                outcome.error,
                time.time(),
                outcome.message_id,
            )
        )
        if claim_at is not None:
            await self._cx.keep_presence()
        call = (update, claim_at, None if claim_at is None else claim_at + lease)
        if not self._cx.in_turn:
            return await self._outcomes(call)

        async def job(cx: Connection) -> Outcome:
            return await self._record_alone(cx, call)

        return await self._run("record outcome", job)

    async def _outcome_batch(self, calls: Sequence[OutcomeCall]) -> list[Outcome]:
        """:data:`~convo.store.postgres_schema.RECORD_OUTCOMES` for ``calls``; then, one by
        one, what it left: an outcome whose recipient already had one in the statement
        (rare: the outbox sends to a recipient one message at a time) is recorded alone,
        and an outcome that left its message pending (a status no higher than the stored
        one) claims through ``CLAIM_NEXT``, which then sees that message as it is."""

        async def job(cx: Connection) -> list[Outcome]:
            arrays = columns([(*update, at, end) for update, at, end in calls], 12)
            found = await cx.fetch(sql.RECORD_OUTCOMES, *arrays, time.time(), self._cx.owner)
            updated: dict[int, MessageRecord] = {}
            claimed: dict[int, MessageRecord] = {}
            later: set[int] = set()
            for r in found:
                kind, n = r[0], r[1] - 1
                if kind == "later":
                    later.add(n)
                else:
                    (updated if kind == "updated" else claimed)[n] = rows.message(tuple(r)[2:])
            results: list[Outcome] = []
            for n, call in enumerate(calls):
                message = updated.get(n)
                if n in later:
                    async with cx.transaction():
                        results.append(await self._record_alone(cx, call))
                elif message is None or call[1] is None:
                    results.append((message, None))
                elif message.status in (MessageStatus.QUEUED, MessageStatus.SENDING):
                    results.append((message, await self._claim_after(cx, message, call)))
                else:
                    results.append((message, claimed.get(n)))
            return results

        return await self._run("record outcome", job)

    async def _record_alone(self, cx: Connection, call: OutcomeCall) -> Outcome:
        """One outcome as two statements: the UPDATE, then the claim (in the caller's
        transaction)."""
        update, claim_at, _end = call
        found = await cx.fetchrow(sql.UPDATE_MESSAGE, *update)
        if found is None:
            return None, None
        updated = rows.message(found)
        if claim_at is None:
            return updated, None
        return updated, await self._claim_after(cx, updated, call)

    async def _claim_after(
        self, cx: Connection, updated: MessageRecord, call: OutcomeCall
    ) -> MessageRecord | None:
        _update, claim_at, end = call
        claim = (updated.line, updated.contact, claim_at, end, time.time(), self._cx.owner)
        claimed = await cx.fetchrow(sql.CLAIM_NEXT, *claim)
        return None if claimed is None else rows.message(claimed)

    async def release_claims(self, now: float) -> int:
        """Only the claims of this store instance and of processes that are gone (their
        presence lock went with them): other processes' claims are theirs."""
        args = (now, self._cx.owner, PRESENCE)
        status = await self._execute("release claims", sql.RELEASE_CLAIMS, *args)
        return _count(status)

    async def defer_message(
        self, message_id: str, *, until: float, error: str
    ) -> MessageRecord | None:
        async def job(cx: Connection) -> MessageRecord | None:
            found = await cx.fetchrow(sql.DEFER_MESSAGE, message_id, until, error, time.time())
            if found is None:
                found = await cx.fetchrow(sql.GET_MESSAGE, message_id)
            return None if found is None else rows.message(found)

        return await self._run("defer message", job)

    async def dead_letters(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[MessageRecord], int]:
        """ValueError for a page or page size below 1."""
        check_query(MessageQuery(page=page, page_size=page_size))

        async def job(cx: Connection) -> tuple[list[MessageRecord], int]:
            total = await cx.fetchval(sql.COUNT_DEAD)
            found = await cx.fetch(sql.DEAD_LETTERS, page_size, (page - 1) * page_size)
            return [rows.message(r) for r in found], int(total)

        return await self._run("list dead letters", job, transaction=True)

    async def requeue_dead(self, now: float, message_ids: Sequence[str] | None = None) -> list[str]:
        async def job(cx: Connection) -> list[str]:
            if message_ids is None:
                requeued = await cx.fetch(sql.REQUEUE_ALL_DEAD, now, time.time())
            else:
                ids = list(message_ids)
                requeued = await cx.fetch(sql.REQUEUE_DEAD, now, time.time(), ids)
            if requeued:
                await cx.execute(pg_shared.NOTIFY_OUTBOX)  # the outboxes of every process
            return [r[0] for r in sorted(requeued, key=lambda r: (r[1], r[2]))]

        return await self._run("requeue dead letters", job, transaction=True)

    async def get_message(self, message_id: str) -> MessageRecord | None:
        found = await self._messages("get message", sql.GET_MESSAGE, message_id)
        return found[0] if found else None

    async def find_message(self, provider: str, provider_message_id: str) -> MessageRecord | None:
        """When both directions carry the id, the outbound message (delivery reports are
        what look messages up this way); then the newest. An empty id finds nothing."""
        args = _storable((provider, provider_message_id))
        found = await self._messages("find message", sql.FIND_MESSAGE, *args)
        return found[0] if found else None

    async def last_sent_to(self, line: str, contact: str, since: float) -> float | None:
        contact, line = _storable((contact, line))

        async def job(cx: Connection) -> float | None:
            found = await cx.fetchval(sql.LAST_SENT_TO, contact, since, line)
            return None if found is None else float(found)

        return await self._run("last sent to", job)

    async def add_delivered_part(self, message_id: str, part_id: str) -> int:
        """StoreError when there is no such message."""

        async def job(cx: Connection) -> int:
            try:
                await cx.execute(sql.ADD_DELIVERED_PART, message_id, part_id)
            except asyncpg.ForeignKeyViolationError:
                raise StoreError(f"delivered part {part_id!r}: no message {message_id}") from None
            return int(await cx.fetchval(sql.COUNT_DELIVERED_PARTS, message_id))

        return await self._run("add delivered part", job)

    async def list_messages(self, query: MessageQuery) -> tuple[list[MessageRecord], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        where, args = sql.message_filter(
            None if query.direction is None else query.direction.value,
            None if query.status is None else query.status.value,
            query.number,
        )
        n = len(args)
        listing = sql.LIST_MESSAGES.format(where=where) + f" LIMIT ${n + 1} OFFSET ${n + 2}"
        page = (query.page_size, (query.page - 1) * query.page_size)

        async def job(cx: Connection) -> tuple[list[MessageRecord], int]:
            total = await cx.fetchval(sql.COUNT_MESSAGES + where, *args)
            found = await cx.fetch(listing, *args, *page)
            return [rows.message(r) for r in found], int(total)

        return await self._run("list messages", job, transaction=True)

    # -- reports (convo.store.postgres_reports) ---------------------------------------------

    async def list_conversations(
        self, query: ConversationQuery
    ) -> tuple[list[ConversationRow], int]:
        """ValueError for a page or page size below 1."""
        check_query(query)
        count, listing, args = reports.conversation_query(query)

        async def job(cx: Connection) -> tuple[list[ConversationRow], int]:
            total = await cx.fetchval(count, *args[:-2])
            found = await cx.fetch(listing, *args)
            return reports.conversation_rows(found), int(total)

        return await self._run("list conversations", job, transaction=True)

    async def step_counts(
        self, flow: str, since: float, until: float, *, idle_before: float
    ) -> list[StepCount]:
        async def job(cx: Connection) -> list[StepCount]:
            reached = await cx.fetch(reports.STEP_REACHED, flow, since, until)
            ends = await cx.fetch(reports.STEP_ENDS, idle_before, flow, since, until)
            return reports.step_counts(reached, ends)

        return await self._run("count steps", job, transaction=True)

    async def prune_step_visits(self, older_than: float) -> int:
        async def job(cx: Connection) -> int:
            return _count(await cx.execute(reports.PRUNE_VISITS, older_than))

        return await self._run("prune step visits", job)

    # -- suppressions ----------------------------------------------------------------------

    async def set_suppressed(self, line: str, contact: str, suppressed: bool) -> None:
        if suppressed:
            await self._execute("suppress", sql.SUPPRESS, line, contact, time.time())
        else:
            await self._execute("unsuppress", sql.UNSUPPRESS, line, contact)

    async def is_suppressed(self, line: str, contact: str) -> bool:
        async def job(cx: Connection) -> bool:
            return bool(await cx.fetchval(sql.IS_SUPPRESSED, line, contact))

        return await self._run("read suppression", job)

    # -- fragments -------------------------------------------------------------------------

    async def add_fragment(
        self, group: str, index: int, total: int, text: str, now: float, *, contact: str
    ) -> list[str] | None:
        """A later part outside the group's total (its first part's) is ignored."""
        check_fragment(group, index, total)
        group, text, contact = _storable((group, text, contact))

        async def job(cx: Connection) -> list[str] | None:
            await cx.execute(sql.ADD_FRAGMENT_GROUP, group, total, now, contact)
            group_total = await cx.fetchval(sql.LOCK_FRAGMENT_GROUP, group)
            if group_total is None or index > group_total:
                return None  # finished meanwhile by another process, or out of range
            await cx.execute(sql.ADD_FRAGMENT_PART, group, index, text)  # a retry: kept once
            parts = [r[0] for r in await cx.fetch(sql.FRAGMENT_PARTS, group)]
            return parts if len(parts) == group_total else None

        return await self._run("add fragment", job, transaction=True)

    async def expired_fragments(self, older_than: float) -> list[tuple[str, list[str]]]:
        async def job(cx: Connection) -> list[tuple[str, list[str]]]:
            groups = [r[0] for r in await cx.fetch(sql.EXPIRED_FRAGMENT_GROUPS, older_than)]
            return [
                (group, [r[0] for r in await cx.fetch(sql.FRAGMENT_PARTS, group)])
                for group in groups
            ]

        return await self._run("read expired fragments", job, transaction=True)

    async def finish_fragments(self, group: str) -> None:
        (group,) = _storable((group,))
        await self._execute("finish fragments", sql.DELETE_FRAGMENT_GROUP, group)

    # -- seen tokens -----------------------------------------------------------------------

    async def seen(self, namespace: str, token: str, now: float) -> bool:
        namespace, token = _storable((namespace, token))

        async def job(cx: Connection) -> bool:
            return await cx.fetchval(sql.SEEN, namespace, token, now) is None

        return await self._run("record seen token", job)

    async def was_seen(self, namespace: str, token: str) -> bool:
        namespace, token = _storable((namespace, token))

        async def job(cx: Connection) -> bool:
            return bool(await cx.fetchval(sql.WAS_SEEN, namespace, token))

        return await self._run("read seen token", job)

    async def prune_seen(self, older_than: float) -> int:
        async def job(cx: Connection) -> int:
            seen = _count(await cx.execute(sql.PRUNE_SEEN, older_than))
            seen += _count(await cx.execute(sql.PRUNE_REQUESTS, older_than))
            return seen + _count(await cx.execute(sql.PRUNE_TOMBSTONES, older_than))

        return await self._run("prune seen tokens", job, transaction=True)

    # -- erasure ---------------------------------------------------------------------------

    async def erase_contact(self, contact: str) -> ErasedContact:
        """See :meth:`convo.store.base.Erasure.erase_contact`: one transaction; suppressions
        are kept."""
        key, now = self._key(), time.time()

        async def job(cx: Connection) -> ErasedContact:
            found = await cx.fetch(sql.ERASE_PROVIDER_COPIES, contact)
            copies = dict.fromkeys((r[0], r[1]) for r in found)
            inbound = await cx.fetch(sql.ERASE_INBOUND_IDS, contact)
            dead = [(tombstone(key, r[0], r[1]), now) for r in inbound]
            if dead:
                await cx.executemany(sql.ADD_TOMBSTONE, dead)
            messages = _count(await cx.execute(sql.ERASE_MESSAGES, contact))
            sessions = _count(await cx.execute(sql.ERASE_SESSIONS, contact))
            await cx.execute(sql.ERASE_VISITS, contact)
            parts = int(await cx.fetchval(sql.COUNT_CONTACT_FRAGMENTS, contact))
            await cx.execute(sql.ERASE_FRAGMENT_GROUPS, contact)
            had_contact = _count(await cx.execute(sql.DELETE_CONTACT, contact)) > 0
            await cx.execute(ERASE_RECIPIENTS, contact)
            return ErasedContact(sessions, messages, parts, tuple(copies), had_contact)

        return await self._run("erase contact", job, transaction=True)

    # -- internals -------------------------------------------------------------------------

    async def _messages(self, what: str, query: str, *args: Any) -> list[MessageRecord]:
        async def job(cx: Connection) -> list[MessageRecord]:
            return [rows.message(r) for r in await cx.fetch(query, *args)]

        return await self._run(what, job)

    async def _one(self, what: str, change: str, *args: Any) -> MessageRecord | None:
        """Run the UPDATE ... RETURNING ``change`` (one statement: atomic as it is); its
        one changed row, or None."""

        async def job(cx: Connection) -> MessageRecord | None:
            found = await cx.fetchrow(change, *args)
            return None if found is None else rows.message(found)

        return await self._run(what, job)

    async def _execute(self, what: str, statement: str, *args: Any) -> str:
        async def job(cx: Connection) -> str:
            return cast(str, await cx.execute(statement, *args))

        return await self._run(what, job)

    def _key(self) -> bytes:
        """The database's tombstone key; StoreError when the store is not open."""
        if self._tombstone_key is None:
            raise StoreError(f"{describe(self.url)} is not open (await store.open() first)")
        return self._tombstone_key

    async def _run(self, what: str, job: Job[T], *, transaction: bool = False) -> T:
        return await self._cx.run(what, job, transaction=transaction)


async def _insert_messages(
    cx: Connection, messages: list[rows.Row], statement: str = sql.INSERT_MESSAGE, *args: Any
) -> None:
    """Insert message rows (or run ``statement`` with ``args``, which inserts one);
    StoreError naming the id when one is already in the log."""
    try:
        if args:
            await cx.execute(statement, *args)
        elif len(messages) == 1:
            await cx.execute(statement, *messages[0])
        elif messages:
            await cx.executemany(statement, messages)
    except asyncpg.UniqueViolationError as exc:
        found = _TAKEN.search(exc.detail or "")
        taken = found[1] if found else "?"
        raise StoreError(f"message id {taken} is already in the log ({exc})") from None


def _storable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with U+0000 in strings as U+FFFD (module docstring); the same tuple when
    there is none, which is nearly always."""
    if not any(isinstance(v, str) and "\0" in v for v in values):
        return values
    return tuple(v.replace("\0", "\ufffd") if isinstance(v, str) else v for v in values)


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3`` or ``UPDATE 0``."""
    return int(status.rsplit(" ", 1)[-1])
