"""The SQLite store's flow sources (mixed into :class:`~convo.store.sqlite.SqliteStore`):
table ``flow_sources`` (schema version 10), one row per ``(flow, version)``.

A version's text is written once (``ON CONFLICT`` only moves ``current_at``): the key is
the hash of that text, so a second writer cannot hold another one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from typing import TypeVar

from convo.store.base import FlowSource
from convo.store.sqlite_connection import Job, transaction

T = TypeVar("T")

SAVE_FLOW_SOURCE = (
    "INSERT INTO flow_sources (flow, version, name, text, saved_at, current_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (flow, version) DO UPDATE "
    "SET current_at = max(current_at, excluded.current_at)"
)
GET_FLOW_SOURCE = (
    "SELECT flow, version, name, text FROM flow_sources WHERE flow = ? AND version = ?"
)
# Once a minute per process; the sessions_flow index narrows the look to the flow's sessions.
PRUNE_FLOW_SOURCES = (
    "DELETE FROM flow_sources WHERE current_at < ? AND NOT EXISTS (SELECT 1 FROM sessions "
    "WHERE sessions.flow = flow_sources.flow AND sessions.flow_version = flow_sources.version "
    "AND sessions.status != 'ended')"
)


class SqliteFlowSources:
    """:class:`~convo.store.base.FlowSources` over the store's connection (``_run``,
    provided by the store)."""

    def _run(self, what: str, job: Job[T]) -> Awaitable[T]:
        raise NotImplementedError  # SqliteStore's

    async def save_flow_source(self, source: FlowSource, now: float) -> bool:
        args = (source.flow, source.version, source.name, source.text, now, now)

        def job(cx: sqlite3.Connection) -> bool:
            with transaction(cx):
                before = cx.execute(GET_FLOW_SOURCE, args[:2]).fetchone()
                cx.execute(SAVE_FLOW_SOURCE, args)
            return before is None

        return await self._run("save flow source", job)

    async def flow_source(self, flow: str, version: str) -> FlowSource | None:
        def job(cx: sqlite3.Connection) -> FlowSource | None:
            row = cx.execute(GET_FLOW_SOURCE, (flow, version)).fetchone()
            return None if row is None else FlowSource(*row)

        return await self._run("read flow source", job)

    async def prune_flow_sources(self, older_than: float) -> int:
        return await self._run(
            "prune flow sources", lambda cx: cx.execute(PRUNE_FLOW_SOURCES, (older_than,)).rowcount
        )
