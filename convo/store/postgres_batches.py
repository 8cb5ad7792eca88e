"""Group commit for the PostgreSQL store: calls of one statement made together, one round trip.

Outside a turn, the store's hottest calls (storing an inbound text, claiming a recipient's
next reply, recording what came of a send and claiming the next) are each one statement on
a pooled connection.
Under load many are made at once, and each round trip costs more than the statement: a
connection taken from the pool, a PostgreSQL backend woken and a commit, and on a busy
machine a wait for a core at each end. So, as the SQLite store's thread does with the jobs
that queue while it is busy, a :class:`Batch` sends the calls of one kind that arrive while
one of its statements is in flight together, as the next statement (``unnest`` of one array
per parameter): one round trip and one commit for all of them.

What each caller gets is what running the calls one by one, in the order they were made,
would have given it: a batch never holds two calls about the same thing (``key``: the same
message id, the same recipient); a later one waits for the next batch. A batch is one
statement, so it commits or fails as one: when the database fails, every call in it gets
the StoreError. A caller cancelled before its batch left is left out of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

A = TypeVar("A")  # one call's arguments
R = TypeVar("R")  # one call's result

LIMIT = 200
"""Calls in one statement at most (the rest go in the next)."""


class Batch(Generic[A, R]):
    """Calls of one statement, sent together (module docstring). ``statement(args)`` runs
    the statement for a list of calls' arguments on the store (as a job of its own) and
    returns their results in the same order; ``key(args)`` is what two calls in one batch
    must not share."""

    def __init__(
        self,
        statement: Callable[[Sequence[A]], Awaitable[list[R]]],
        key: Callable[[A], Hashable],
        *,
        limit: int = LIMIT,
    ) -> None:
        self._statement = statement
        self._key = key
        self._limit = limit
        self._waiting: list[tuple[A, asyncio.Future[R]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, args: A) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch: list[tuple[A, asyncio.Future[R]]] = []
                later: list[tuple[A, asyncio.Future[R]]] = []
                keys: set[Hashable] = set()
                for call in self._waiting:
                    if call[1].done():
                        continue  # its caller was cancelled: not sent
                    key = self._key(call[0])
                    if key in keys or len(batch) >= self._limit:
                        later.append(call)
                    else:
                        keys.add(key)
                        batch.append(call)
                self._waiting = later
                if batch:
                    await self._run(batch)
        finally:
            self._sender = None
            for _args, future in self._waiting:  # only when cancelled (the store closes)
                future.cancel()
            self._waiting = []

    async def _run(self, batch: list[tuple[A, asyncio.Future[R]]]) -> None:
        try:
            results = await self._statement([args for args, _future in batch])
        except asyncio.CancelledError:
            for _args, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch gets what failed
            for _args, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_args, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """``rows`` (each ``width`` values) as ``width`` lists, one per column: the arrays a
    batch statement unnests."""
    return [[row[i] for row in rows] for i in range(width)]
