"""The PostgreSQL store's flow sources (mixed into
:class:`~convo.store.postgres.PostgresStore`): table ``flow_sources`` (schema version 5),
one row per ``(flow, version)``, as SQLite's :mod:`convo.store.sqlite_flow_sources`.

Every process on the database saves the versions it loads here, so a conversation one
process started on a version is continued on it by any other, and after a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from convo.store.base import FlowSource
from convo.store.postgres_connection import Job

T = TypeVar("T")
Connection = Any  # asyncpg's connection, or the pool's proxy of one

# xmax = 0 only for a row this statement inserted: whether the version is new.
SAVE_FLOW_SOURCE = (
    "INSERT INTO flow_sources (flow, version, name, text, saved_at, current_at) "
    "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (flow, version) DO UPDATE "
    "SET current_at = greatest(flow_sources.current_at, excluded.current_at) "
    "RETURNING xmax = 0"
)
GET_FLOW_SOURCE = (
    "SELECT flow, version, name, text FROM flow_sources WHERE flow = $1 AND version = $2"
)
PRUNE_FLOW_SOURCES = (
    "DELETE FROM flow_sources WHERE current_at < $1 AND NOT EXISTS (SELECT 1 FROM sessions "
    "WHERE sessions.flow = flow_sources.flow AND sessions.flow_version = flow_sources.version "
    "AND sessions.status != 'ended')"
)


class PostgresFlowSources:
    """:class:`~convo.store.base.FlowSources` over the store's pool (``_run``, provided by
    the store)."""

    def _run(self, what: str, job: Job[T], *, transaction: bool = False) -> Awaitable[T]:
        raise NotImplementedError  # PostgresStore's

    async def save_flow_source(self, source: FlowSource, now: float) -> bool:
        args = (source.flow, source.version, source.name, _text(source.text), now)

        async def job(cx: Connection) -> bool:
            return bool(await cx.fetchval(SAVE_FLOW_SOURCE, *args))

        return await self._run("save flow source", job)

    async def flow_source(self, flow: str, version: str) -> FlowSource | None:
        async def job(cx: Connection) -> FlowSource | None:
            row = await cx.fetchrow(GET_FLOW_SOURCE, flow, version)
            return None if row is None else FlowSource(*row)

        return await self._run("read flow source", job)

    async def prune_flow_sources(self, older_than: float) -> int:
        async def job(cx: Connection) -> int:
            status: str = await cx.execute(PRUNE_FLOW_SOURCES, older_than)
            return int(status.split()[-1])

        return await self._run("prune flow sources", job)


def _text(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; a flow file holding one fails to load anyway.
    return value.replace("\0", "\ufffd")
