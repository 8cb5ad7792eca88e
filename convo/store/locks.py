"""Turn serialisation inside one process: an ``asyncio.Lock`` per conversation.

A conversation's turns must run one at a time and in arrival order: the engine takes the
conversation's lock, then loads, advances and saves. :class:`LocalLocks` keeps a
lock only while someone holds or waits for it, so a server that talks to millions of
contacts keeps a dict the size of its *current* concurrency, not of its history.

``asyncio.Lock`` wakes waiters first in, first out, so two texts from one person are handled
in the order their handlers asked for the lock. It serialises one process only: several
servers on one shared store need the lock that store provides across processes.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from convo.models import ConversationKey


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders + waiters; the entry goes when it drops to 0


class _Hold:
    """``async with locks.lock(key)``: a class, not a generator, as it runs on every turn."""

    __slots__ = ("_entry", "_key", "_locks")

    def __init__(self, locks: LocalLocks, key: ConversationKey) -> None:
        self._locks = locks
        self._key = key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        table = self._locks._table
        entry = table.get(self._key)
        if entry is None:
            entry = table[self._key] = _Entry()
        entry.users += 1
        self._entry = entry
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: we never held it
            self._release_entry()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Let go of the held lock, from any task: a lock taken where a text was stored is
        released by the task that runs its turn (:meth:`convo.flow.engine.Engine.receive_held`)."""
        assert self._entry is not None, "lock released without being taken"
        self._entry.lock.release()
        self._release_entry()

    def _release_entry(self) -> None:
        entry, self._entry = self._entry, None
        assert entry is not None
        entry.users -= 1
        if entry.users == 0:
            del self._locks._table[self._key]


class LocalLocks:
    """:class:`~convo.store.base.ConversationLocks` for one process (one event loop).

    ``async with locks.lock(key): ...`` waits for the turns of ``key`` queued before it.
    Each ``lock(key)`` object is used for one ``async with``.
    """

    def __init__(self) -> None:
        self._table: dict[ConversationKey, _Entry] = {}

    def lock(self, key: ConversationKey) -> _Hold:
        return _Hold(self, key)

    def locked(self, key: ConversationKey) -> bool:
        """True while a turn of ``key`` holds its lock."""
        entry = self._table.get(key)
        return entry is not None and entry.lock.locked()

    def idle(self, key: ConversationKey) -> bool:
        """True when no turn of ``key`` holds or waits for its lock: taking it does not wait."""
        return key not in self._table

    def __len__(self) -> int:
        """How many conversations have a turn running or waiting."""
        return len(self._table)
