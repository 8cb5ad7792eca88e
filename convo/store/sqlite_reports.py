"""The SQLite store's reports (:class:`~convo.store.base.Reports`) and step visits.

A step visit is a row of ``step_visits`` (schema version 9), written by ``save_turn`` in
its transaction when a conversation enters a step (:func:`record_visit`, run before the
session's upsert so it can compare with the stored session). The reports read it and
``sessions``; each query reads one page or one flow, through an index, so a page costs
the same with ten or a hundred thousand conversations in the file.
"""

# Statements are built at import from this module's constants only (column lists, fixed
# WHERE fragments); values always travel as ? parameters. Hence, for the whole file:
# ruff: noqa: S608

from __future__ import annotations

import sqlite3

import convo.store.sqlite_rows as rows
from convo.models import Session
from convo.store.base import ConversationQuery, ConversationRow, StepCount
from convo.store.sqlite_schema import MESSAGE_COLUMNS, SESSION_COLUMNS

# The stored session's flow, step and status, which record_visit compares with the new one.
STORED_STEP = (
    "SELECT flow, step, status FROM sessions WHERE line = ? AND channel = ? AND contact = ?"
)
# A plain INSERT ... VALUES: unlike INSERT ... SELECT it needs no statement journal inside a
# transaction (that journal copied each of the four pages it wrote, every turn).
RECORD_VISIT = (
    "INSERT INTO step_visits (line, channel, contact, flow, step, started_at, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
ERASE_VISITS = "DELETE FROM step_visits WHERE contact = ?"
PRUNE_VISITS = "DELETE FROM step_visits WHERE at < ?"  # index step_visits_at (version 10)

_S = ", ".join(f"s.{c}" for c in SESSION_COLUMNS.split(", "))
_M = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS.split(", "))
_ORDER = "updated_at DESC, line DESC, channel DESC, contact DESC"
COUNT_CONVERSATIONS = "SELECT count(*) FROM sessions"
# The page's keys from an index alone (a far page skips index entries, not rows), then
# their sessions, then each one's newest message (messages_contact index).
LIST_CONVERSATIONS = (
    f"SELECT {_S}, {_M} FROM (SELECT line, channel, contact FROM sessions {{where}} "
    f"ORDER BY {_ORDER} LIMIT ? OFFSET ?) AS p "
    "JOIN sessions AS s ON s.line = p.line AND s.channel = p.channel AND s.contact = p.contact "
    "LEFT JOIN messages AS m ON m.id = (SELECT id FROM messages "
    "WHERE contact = s.contact AND line = s.line ORDER BY created_at DESC, seq DESC LIMIT 1) "
    f"ORDER BY s.{_ORDER.replace(', ', ', s.')}"
)
STEP_REACHED = (
    "SELECT step, count(*) FROM (SELECT DISTINCT step, line, channel, contact, started_at "
    "FROM step_visits WHERE flow = ? AND at >= ? AND at < ?) GROUP BY step"
)
STEP_ENDS = (
    "SELECT step, sum(status = 'ended'), sum(status = 'active' AND updated_at < ?) "
    "FROM sessions WHERE flow = ? AND updated_at >= ? AND updated_at < ? GROUP BY step"
)


def record_visit(cx: sqlite3.Connection, session: Session) -> None:
    """Record that ``session`` enters its step, unless the stored session (read here, so
    call this before the session is saved) is on the same flow and step and has not ended
    while the new one has not."""
    k = session.key
    stored = cx.execute(STORED_STEP, (k.line, k.channel, k.contact)).fetchone()
    status = session.status.value
    if stored is not None:
        flow, step, was = stored
        if flow == session.flow and step == session.step and (was != "ended" or status == "ended"):
            return
    visit = (k.line, k.channel, k.contact, session.flow, session.step)
    cx.execute(RECORD_VISIT, (*visit, session.created_at, session.updated_at))


def _filter(query: ConversationQuery) -> tuple[str, tuple[str, ...]]:
    terms: list[str] = []
    args: list[str] = []
    status = None if query.status is None else query.status.value
    for column, value in (
        ("flow", query.flow),
        ("step", query.step),
        ("status", status),
        ("line", query.line),
    ):
        if value is not None:
            terms.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(terms) if terms else ""), tuple(args)


def list_conversations(
    cx: sqlite3.Connection, query: ConversationQuery
) -> tuple[list[ConversationRow], int]:
    where, args = _filter(query)
    page = (query.page_size, (query.page - 1) * query.page_size)
    (total,) = cx.execute(COUNT_CONVERSATIONS + where, args).fetchone()
    found = cx.execute(LIST_CONVERSATIONS.format(where=where), (*args, *page)).fetchall()
    width = len(SESSION_COLUMNS.split(", "))
    return [
        ConversationRow(
            rows.session(r[:width]), None if r[width] is None else rows.message(r[width:])
        )
        for r in found
    ], total


def step_counts(
    cx: sqlite3.Connection, flow: str, since: float, until: float, idle_before: float
) -> list[StepCount]:
    reached = dict(cx.execute(STEP_REACHED, (flow, since, until)).fetchall())
    ends = {
        step: (ended, abandoned)
        for step, ended, abandoned in cx.execute(STEP_ENDS, (idle_before, flow, since, until))
        if ended or abandoned
    }
    return [
        StepCount(step, reached.get(step, 0), *ends.get(step, (0, 0)))
        for step in sorted({*reached, *ends})
    ]
