"""The PostgreSQL store's connections: a pool, the conversation lock, presence, migrations.

The pool. Every call of the store takes a connection from an asyncpg pool for one
statement (or one transaction) and gives it back. Releasing one runs no reset query
(asyncpg's default sends one per release: a round trip per call); nothing that needs one
is ever left on a pooled connection: no session settings, no LISTEN, no session advisory
lock, and an open transaction is rolled back by asyncpg itself.

The conversation lock (:class:`TurnLocks`). ``store.lock(key)`` takes a pooled connection,
opens a transaction and takes a **transaction-scoped advisory lock** on the conversation
(``pg_advisory_xact_lock``), in one round trip. Until the lock is released, every store call
made by the task that holds it (and its children) runs on that connection, in that
transaction (a context variable carries it): the turn's load, its save and its effects
commit together when the lock is released, and the lock goes with the commit, so the next
turn of that conversation, in any process, reads what this one wrote. A call that fails
inside aborts the transaction; the lock's release then rolls it all back and raises
StoreError (nothing of the turn happened; the inbound message stays unprocessed). A lock
lives as long as its transaction, so a process that dies, or a connection that breaks,
never leaves one behind. Lock keys are 64-bit hashes of the conversation key and the
schema, so two convo deployments in two schemas of one database do not share locks (a
hash collision only makes two conversations wait for each other).

Connections between turns. At most :attr:`PostgresConnection.turn_limit` turns of a
process hold a connection at once (all but one of the pool's; that one serves
acknowledgements and the outbox whatever the turns do); the others wait for one of them.
A turn that commits says ``COMMIT; BEGIN`` (one round trip) and leaves its connection, in
a new, empty transaction, to the next turn. That turn takes its lock with
its first statement: the turn's opening read (``convo_open_turn``, a function that takes
the lock and then reads: a plain statement's snapshot may be older than the lock it waits
for) or else a lock statement of its own. So a turn costs three round trips: lock and read,
save, commit. An empty transaction takes no snapshot and holds no lock (it shows as "idle
in transaction" in ``pg_stat_activity``); a kept connection that the server closed
meanwhile is dropped when taken, and any other failure on it fails that turn alone, as a
broken pooled connection would.

Presence. Each store instance holds, on a connection of its own, a session advisory lock
on ``(PRESENCE, owner)``, ``owner`` a random number it also writes into the outbox
messages it claims. While the process lives the lock is held; when it dies, PostgreSQL
drops it with the connection. ``release_claims`` therefore frees the claims of processes
that are gone (and the instance's own), and no others: see ``RELEASE_CLAIMS``.

Migrations (:mod:`convo.store.migrations`). The migration lock is a session advisory lock
on ``(MIGRATION, schema)`` on a connection of its own; each missing script runs in a
transaction with its version change, so a process that dies half-way leaves the database
at a whole version.

Errors. asyncpg's errors, refused or broken connections and timeouts become
:class:`~convo.exceptions.StoreError` in one place (:func:`store_errors`), naming the
database (``user@host:port/db``, never a password) and the operation.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from convo.exceptions import CorruptRecord, StoreError
from convo.models import ConversationKey
from convo.store import postgres_schema as sql
from convo.store.migrations import SchemaStatus, upgrade

T = TypeVar("T")
Connection = asyncpg.Connection  # what a job is handed: asyncpg's connection (or its proxy)
Job = Callable[[Any], Awaitable[T]]

MIGRATION = 0x636F6E76  # "conv": the first key of the migration lock
PRESENCE = 0x636F7072  # "copr": the first key of a store instance's presence lock
CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a new connection (a database that does not answer at all)."""
PROBE_WAIT = 1.0
"""Seconds the readiness probe (``writable``) waits, like the SQLite store's."""
POOL_SIZE = 20
"""Connections per store instance (each process) unless the URL says ``?pool_size=N``:
turns in flight hold one each while they hold their conversation's lock, up to
:attr:`PostgresConnection.turn_limit` of them."""
POOL_OPTION = "pool_size"
"""The URL option that is convo's, not a server setting (:func:`split_pool_size`)."""


def split_pool_size(url: str) -> tuple[str, int]:
    """``url`` without its ``pool_size`` option, and that option (default
    :data:`POOL_SIZE`). ValueError, naming the option only, for one that is not a whole
    number from 1 to 1000."""
    parts = urllib.parse.urlsplit(url)
    options = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    sizes = [value for name, value in options if name == POOL_OPTION]
    if not sizes:
        return url, POOL_SIZE
    size = sizes[-1]
    if not size.isdigit() or not 1 <= int(size) <= 1000:
        raise ValueError(f"{POOL_OPTION} must be a whole number from 1 to 1000, got {size!r}")
    rest = urllib.parse.urlencode([(n, v) for n, v in options if n != POOL_OPTION])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), int(size)


_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def describe(url: str) -> str:
    """``PostgreSQL store user@host:port/db`` for messages: the URL without its password
    or options."""
    parts = urllib.parse.urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL store {user}{host}{port}{parts.path or '/'}"


@contextmanager
def store_errors(where: str, what: str) -> Iterator[None]:
    """asyncpg's and the network's errors as StoreError ``where: what failed: ...``."""
    try:
        yield
    except StoreError:
        raise
    except json.JSONDecodeError as exc:
        raise CorruptRecord(f"{where}: {what}: a stored JSON value is corrupt ({exc})") from exc
    except _ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise StoreError(f"{where}: {what} failed: {reason}") from exc


class _Turn:
    """A held conversation lock: its connection, in its transaction, and what the turn's
    first statement read for the calls that follow (module docstring)."""

    __slots__ = ("connection", "failed", "guard", "kept", "lock_key", "locked", "open")

    def __init__(self, connection: Any, lock_key: int, *, locked: bool) -> None:
        self.connection = connection
        self.lock_key = lock_key
        self.locked = locked  # else the turn's first statement takes the lock
        self.guard = asyncio.Lock()  # one statement at a time on the connection
        self.open = True
        self.failed = False
        self.kept: dict[Any, Any] = {}


NOTHING_KEPT: Any = object()
"""What :meth:`PostgresConnection.kept` answers when nothing was kept."""

_TURN: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar("convo_pg_turn", default=None)


class PostgresConnection:
    """The pool, presence and locks of one store instance on the database at ``url``."""

    def __init__(self, url: str) -> None:
        self.url, self.pool_size = split_pool_size(url)
        self.where = describe(url)
        self.owner = secrets.randbelow(2**31 - 1) + 1  # this instance, in claimed_by
        self.namespace = 0  # mixed into lock keys: the schema's hash, set by open()
        self._pool: asyncpg.Pool | None = None
        self._presence: Any = None  # the connection holding the presence lock
        self._presence_guard = asyncio.Lock()
        self._migrator: Any = None  # the connection holding the migration lock, meanwhile
        self._between_turns: list[Any] = []  # connections in an empty transaction
        self.turn_limit = max(1, self.pool_size - 1)
        """Turns holding a connection at once: one connection is always left for
        everything else (acknowledgements, the outbox), so connections kept between turns
        never keep those waiting. Not more: with half the pool left to them
        (``bench/webhooks.py --store compare``), acknowledgements ran ahead of the turns
        (1,300 texts/s acknowledged, 400 answered: a growing backlog of unanswered texts)."""
        self._turn_slots = asyncio.Semaphore(self.turn_limit)

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect (the pool and the presence lock). Idempotent. StoreError when the
        database cannot be reached or refuses us."""
        if self._pool is not None:
            return
        with store_errors(self.where, "connect"):
            pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                timeout=CONNECT_TIMEOUT,
                reset=_keep,
                # Statements are prepared once per connection and kept (asyncpg's cache).
                statement_cache_size=256,
            )
        try:
            with store_errors(self.where, "connect"):
                schema = await pool.fetchval("SELECT current_schema()")
            self.namespace = _hash(f"schema:{schema}")
            self._pool = pool
            await self._ensure_presence()
        except BaseException:
            self._pool = None
            await pool.close()
            raise

    async def close(self) -> None:
        """Drop the presence lock (first, and explicitly: other processes may take over
        this instance's claims the moment it returns), then close the pool, waiting for
        the calls in flight. Closing twice is harmless."""
        pool, self._pool = self._pool, None
        presence, self._presence = self._presence, None
        if pool is not None:
            kept, self._between_turns = self._between_turns, []
            for connection in kept:
                await _abandon(pool, connection)
        try:
            if presence is not None and not presence.is_closed():
                try:
                    async with asyncio.timeout(PROBE_WAIT):
                        await presence.execute(
                            "SELECT pg_advisory_unlock($1::int, $2::int)", PRESENCE, self.owner
                        )
                        await presence.close()
                except (*_ERRORS, asyncio.CancelledError):
                    presence.terminate()  # the server drops the lock with the connection
                    raise
        except _ERRORS:
            pass  # a broken presence connection: its lock is gone already, or about to be
        finally:
            if pool is not None:
                with store_errors(self.where, "close"):
                    await pool.close()

    # -- running statements --------------------------------------------------------------

    async def run(
        self,
        what: str,
        job: Job[T],
        *,
        transaction: bool = False,
        locking: Callable[[Any, int], Awaitable[T]] | None = None,
    ) -> T:
        """Run ``job(connection)``: in the caller's turn when it holds a conversation lock
        (:class:`TurnLocks`), else on a pooled connection, in a transaction of its own
        when ``transaction`` (several statements as one unit). ``locking(connection,
        lock_key)`` is the same job that takes the turn's lock itself, run instead when
        the turn's lock is still to be taken (module docstring, "Connections between
        turns"). Errors as StoreError."""
        turn = _TURN.get()
        if turn is not None and turn.open:
            async with turn.guard:
                turn.kept.clear()  # may write: what was kept may be older than that
                try:
                    with store_errors(self.where, what):
                        if not turn.locked:
                            turn.locked = True
                            if locking is not None:
                                return await locking(turn.connection, turn.lock_key)
                            await turn.connection.execute(_lock_statement(turn.lock_key))
                        return await job(turn.connection)
                except BaseException:
                    turn.failed = True
                    raise
        pool = self._pool
        if pool is None:
            raise StoreError(f"{self.where} is not open (await store.open() first)")
        with store_errors(self.where, what):
            async with pool.acquire() as connection:
                if not transaction:
                    return await job(connection)
                async with connection.transaction():
                    return await job(connection)

    async def take_turn_connection(self) -> tuple[Any, bool]:
        """A connection for a turn, once fewer than :attr:`turn_limit` turns hold one, and
        whether it is in an empty transaction already (kept by
        :meth:`give_back_turn_connection`), else fresh from the pool. Give it back with
        :meth:`give_back_turn_connection` or :meth:`drop_turn_connection`."""
        await self._turn_slots.acquire()
        try:
            kept = self._between_turns
            while kept:
                connection = kept.pop()
                if _alive(connection):
                    return connection, True
                await self.pool().release(connection)  # the pool replaces it
            return await self.pool().acquire(), False
        except BaseException:
            self._turn_slots.release()
            raise

    async def give_back_turn_connection(
        self, pool: asyncpg.Pool, connection: Any, *, commit: bool
    ) -> None:
        """End a turn on ``connection``: commit it (``commit``; else it wrote nothing) and
        keep the connection, in a new transaction, for the next turn. When the commit
        fails, its error; the connection then goes back to ``pool`` (the one it came
        from), rolled back."""
        try:
            if commit:
                await connection.execute("COMMIT; BEGIN")
        except BaseException:
            await self.drop_turn_connection(pool, connection)
            raise
        if self._pool is pool:
            self._between_turns.append(connection)
            self._turn_slots.release()
        else:  # closed meanwhile
            await self.drop_turn_connection(pool, connection)

    async def drop_turn_connection(self, pool: asyncpg.Pool, connection: Any) -> None:
        """End a turn on ``connection`` without committing: roll it back and give the
        connection back to ``pool``."""
        try:
            await _abandon(pool, connection)
        finally:
            self._turn_slots.release()

    def keep(self, name: Any, value: Any) -> None:
        """Keep ``value`` for the caller's turn (if it holds a conversation lock) until its
        next statement: :meth:`kept` hands it out once."""
        turn = _TURN.get()
        if turn is not None and turn.open:
            turn.kept[name] = value

    def kept(self, name: Any) -> Any:
        """What :meth:`keep` kept as ``name`` for the caller's turn, once; else
        :data:`NOTHING_KEPT`."""
        turn = _TURN.get()
        if turn is None or not turn.open:
            return NOTHING_KEPT
        return turn.kept.pop(name, NOTHING_KEPT)

    @property
    def in_turn(self) -> bool:
        """Whether the caller holds a conversation lock of this store."""
        turn = _TURN.get()
        return turn is not None and turn.open

    async def probe(self) -> bool:
        """A write that changes no data, within :data:`PROBE_WAIT`: the server assigns this
        transaction an id, which a read-only server (a standby, a full disk's refusal)
        cannot. False, never an error, when it does not answer in time or refuses."""
        pool = self._pool
        if pool is None:
            return False
        try:
            async with asyncio.timeout(PROBE_WAIT):
                async with pool.acquire() as connection:
                    await connection.fetchval("SELECT pg_current_xact_id()::text")
            await self._ensure_presence()
        except (*_ERRORS, StoreError):
            return False
        return True

    async def _ensure_presence(self) -> None:
        """(Re)take the presence lock, on a connection of its own: after an outage the old
        one is gone, and with it the lock that keeps other processes off our claims."""
        async with self._presence_guard:
            if self._presence is not None and not self._presence.is_closed():
                return
            with store_errors(self.where, "take the presence lock"):
                connection = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
                try:
                    await connection.execute(
                        "SELECT pg_advisory_lock($1::int, $2::int)", PRESENCE, self.owner
                    )
                except BaseException:
                    await connection.close()
                    raise
            self._presence = connection

    async def keep_presence(self) -> None:
        """Re-take the presence lock if its connection broke (cheap when it did not)."""
        if self._presence is None or self._presence.is_closed():
            await self._ensure_presence()

    # -- migrations (convo.store.migrations.MigrationTarget) -----------------------------

    @asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """``pg_advisory_lock(MIGRATION, schema)`` on a connection of its own, held while
        :func:`~convo.store.migrations.upgrade` runs; the version table is created under
        it (CREATE TABLE IF NOT EXISTS is not safe against a concurrent one)."""
        with store_errors(self.where, "take the migration lock"):
            connection = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        try:
            with store_errors(self.where, "take the migration lock"):
                await connection.execute(
                    "SELECT pg_advisory_lock($1::int, $2::int)", MIGRATION, self.namespace >> 32
                )
                await connection.execute(sql.CREATE_VERSION_TABLE)
            self._migrator = connection
            yield
        finally:
            self._migrator = None
            with store_errors(self.where, "release the migration lock"):
                await connection.close()  # the session lock goes with its connection

    async def schema_version(self) -> int:
        with store_errors(self.where, "read the schema version"):
            return int(await self._migrator.fetchval(sql.READ_VERSION))

    async def apply_migration(self, version: int, script: str) -> None:
        connection = self._migrator
        with store_errors(self.where, f"migration {version} -> {version + 1}"):
            async with connection.transaction():
                await connection.execute(script)
                await connection.execute(sql.SET_VERSION, version + 1)

    async def upgrade(self) -> SchemaStatus:
        """Apply the missing :data:`~convo.store.postgres_schema.MIGRATIONS` under the
        migration lock; the status found before."""
        return await upgrade(self, sql.MIGRATIONS, self.where)

    async def schema_status(self) -> SchemaStatus:
        """The database's version (0 before the first migration) against the latest."""

        async def job(connection: Any) -> int:
            if not await connection.fetchval(sql.HAS_VERSION_TABLE):
                return 0
            return int(await connection.fetchval(sql.READ_VERSION) or 0)

        version = await self.run("read the schema version", job)
        return SchemaStatus(self.where, version, len(sql.MIGRATIONS))

    # -- conversation locks ---------------------------------------------------------------

    def lock_key(self, key: ConversationKey) -> int:
        """The conversation's 64-bit advisory lock key (see the module docstring)."""
        return _hash(f"{key.line}\0{key.channel}\0{key.contact}") ^ self.namespace

    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"{self.where} is not open (await store.open() first)")
        return self._pool


class TurnLocks:
    """:class:`~convo.store.base.ConversationLocks` across every process on the database
    (module docstring: "The conversation lock")."""

    def __init__(self, connection: PostgresConnection) -> None:
        self._cx = connection
        self._queues: dict[ConversationKey, _Queue] = {}

    def lock(self, key: ConversationKey) -> _Hold:
        return _Hold(self._cx, key, self._queues)


class _Queue:
    """The turns of one conversation in this process, waiting for it: an asyncio lock
    and how many hold or wait for it (the entry goes when none does)."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Hold:
    """``async with store.lock(key)``: a class, not a generator, as it runs every turn."""

    __slots__ = ("_cx", "_key", "_pool", "_queue", "_queues", "_token", "_turn")

    def __init__(
        self, cx: PostgresConnection, key: ConversationKey, queues: dict[ConversationKey, _Queue]
    ) -> None:
        self._cx = cx
        self._key = key
        self._queues = queues
        self._queue: _Queue | None = None
        self._pool: asyncpg.Pool | None = None
        self._turn: _Turn | None = None
        self._token: contextvars.Token[_Turn | None] | None = None

    async def __aenter__(self) -> None:
        # A lock taken while holding another (another conversation) gets a transaction of
        # its own; the outer one's calls resume when it is released.
        pool = self._pool = self._cx.pool()
        where = self._cx.where
        queue = self._queues.get(self._key)
        if queue is None:
            queue = self._queues[self._key] = _Queue()
        queue.users += 1
        self._queue = queue
        try:
            await queue.lock.acquire()  # this process's turns of the conversation first
        except BaseException:
            self._leave(held=False)
            raise
        lock_key = self._cx.lock_key(self._key)
        try:
            with store_errors(where, f"lock conversation {self._key}"):
                connection, begun = await self._cx.take_turn_connection()
        except BaseException:
            self._leave()
            raise
        if not begun:
            try:
                with store_errors(where, f"lock conversation {self._key}"):
                    await connection.execute(f"BEGIN; {_lock_statement(lock_key)}")
            except BaseException:
                await self._cx.drop_turn_connection(pool, connection)
                self._leave()
                raise
        self._turn = _Turn(connection, lock_key, locked=not begun)
        self._token = _TURN.set(self._turn)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._release(exc_type)
        finally:
            self._leave()

    def _leave(self, *, held: bool = True) -> None:
        """Let this process's next turn of the conversation go."""
        queue, self._queue = self._queue, None
        if queue is None:
            return
        if held:
            queue.lock.release()
        queue.users -= 1
        if queue.users == 0 and self._queues.get(self._key) is queue:
            del self._queues[self._key]

    async def _release(self, exc_type: type[BaseException] | None) -> None:
        turn, token, pool = self._turn, self._token, self._pool
        assert turn is not None and token is not None and pool is not None, "lock not taken"
        _TURN.reset(token)
        turn.open = False
        connection = turn.connection
        where = self._cx.where
        if exc_type is not None or turn.failed:
            await self._cx.drop_turn_connection(pool, connection)
            if exc_type is None:  # a failed call was caught inside: say so, don't commit
                raise StoreError(f"{where}: the turn of {self._key} failed and was rolled back")
            return
        with store_errors(where, f"commit the turn of {self._key}"):
            await self._cx.give_back_turn_connection(pool, connection, commit=turn.locked)


async def _abandon(pool: asyncpg.Pool, connection: Any) -> None:
    """Roll back ``connection``'s transaction, if it can, and give it back to ``pool`` (a
    broken one is replaced by the pool)."""
    try:
        if _alive(connection) and connection.is_in_transaction():
            await connection.execute("ROLLBACK")
    except _ERRORS:
        if _alive(connection):
            connection.terminate()  # broken, or busy with a cancelled statement: start afresh
    finally:
        await pool.release(connection)  # nothing to do for one the pool took back


def _alive(connection: Any) -> bool:
    """Whether ``connection`` (a pool's) can still be used: not closed, and not taken back
    by its pool, which does that by itself when the server closes a connection it lent."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


def _lock_statement(lock_key: int) -> str:
    """The statement that takes a turn's lock: the key is our own integer, never caller
    text, so it is written into the statement (which then can share a round trip)."""
    return f"SELECT pg_advisory_xact_lock({lock_key})"


async def _keep(connection: Any) -> None:
    """The pool's reset: nothing beyond asyncpg's own rollback (module docstring)."""


def _hash(text: str) -> int:
    """A signed 64-bit hash of ``text`` (advisory lock keys are bigint)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
