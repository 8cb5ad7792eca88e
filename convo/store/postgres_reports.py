"""The PostgreSQL store's reports (:class:`~convo.store.base.Reports`) and step visits,
as :mod:`convo.store.sqlite_reports` is the SQLite store's: the same ``step_visits`` table
(schema version 4 here, in :mod:`convo.store.postgres_schema` with the statement that
records a visit, which ``save_turn`` runs in its transaction when a conversation enters a
step), and the same queries, one page or one flow each, through indexes.

Text is ordered byte-wise (``COLLATE "C"``), as SQLite and the memory store order it.
"""

# ruff: noqa: S608  (statements from constants only; values travel as $n parameters)

from __future__ import annotations

from typing import Any

import convo.store.rows as rows
from convo.store.base import ConversationQuery, ConversationRow, StepCount
from convo.store.postgres_schema import MESSAGE_COLUMNS, RECORD_VISIT, SESSION_COLUMNS

__all__ = ["PRUNE_VISITS", "RECORD_VISIT", "conversation_query", "conversation_rows", "step_counts"]


_S = ", ".join(f"s.{c}" for c in SESSION_COLUMNS.split(", "))
_M = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS.split(", "))
_ORDER = (
    'updated_at DESC, line COLLATE "C" DESC, channel COLLATE "C" DESC, contact COLLATE "C" DESC'
)
COUNT_CONVERSATIONS = "SELECT count(*) FROM sessions"
LIST_CONVERSATIONS = (
    f"SELECT {_S}, {_M} FROM (SELECT line, channel, contact FROM sessions {{where}} "
    f"ORDER BY {_ORDER} LIMIT {{limit}} OFFSET {{offset}}) AS p "
    "JOIN sessions AS s ON s.line = p.line AND s.channel = p.channel AND s.contact = p.contact "
    "LEFT JOIN LATERAL (SELECT * FROM messages WHERE contact = s.contact AND line = s.line "
    "ORDER BY created_at DESC, seq DESC LIMIT 1) AS m ON true "
    f"ORDER BY {', '.join('s.' + term for term in _ORDER.split(', '))}"
)
STEP_REACHED = (
    "SELECT step, count(*) FROM (SELECT DISTINCT step, line, channel, contact, started_at "
    "FROM step_visits WHERE flow = $1 AND at >= $2 AND at < $3) AS v GROUP BY step"
)
PRUNE_VISITS = "DELETE FROM step_visits WHERE at < $1"  # index step_visits_at (version 5)
STEP_ENDS = (
    "SELECT step, count(*) FILTER (WHERE status = 'ended'), "
    "count(*) FILTER (WHERE status = 'active' AND updated_at < $1) "
    "FROM sessions WHERE flow = $2 AND updated_at >= $3 AND updated_at < $4 GROUP BY step"
)


def visit_args(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The parameters of :data:`RECORD_VISIT` from a ``sessions`` row."""
    return (row[0], row[1], row[2], row[3], row[5], row[14], row[15], row[10])


def conversation_query(query: ConversationQuery) -> tuple[str, str, list[Any]]:
    """The count and the page statements of ``query``, and their parameters (the page's
    LIMIT and OFFSET last: the count takes the others)."""
    terms: list[str] = []
    args: list[Any] = []
    status = None if query.status is None else query.status.value
    for column, value in (
        ("flow", query.flow),
        ("step", query.step),
        ("status", status),
        ("line", query.line),
    ):
        if value is not None:
            args.append(value)
            terms.append(f"{column} = ${len(args)}")
    where = " WHERE " + " AND ".join(terms) if terms else ""
    n = len(args)
    listing = LIST_CONVERSATIONS.format(where=where, limit=f"${n + 1}", offset=f"${n + 2}")
    args += [query.page_size, (query.page - 1) * query.page_size]
    return COUNT_CONVERSATIONS + where, listing, args


def conversation_rows(found: list[Any]) -> list[ConversationRow]:
    width = len(SESSION_COLUMNS.split(", "))
    out = []
    for record in found:
        values = tuple(record)
        last = None if values[width] is None else rows.message(values[width:])
        out.append(ConversationRow(rows.session(values[:width]), last))
    return out


def step_counts(reached: list[Any], ends: list[Any]) -> list[StepCount]:
    """The counts of :data:`STEP_REACHED` and :data:`STEP_ENDS`, steps with one only."""
    by_step = {r[0]: int(r[1]) for r in reached}
    ended = {r[0]: (int(r[1]), int(r[2])) for r in ends if r[1] or r[2]}
    return [
        StepCount(step, by_step.get(step, 0), *ended.get(step, (0, 0)))
        for step in sorted({*by_step, *ended})
    ]
