"""Rows of the SQLite store to and from convo's models (sessions and messages).

The column order is the one the statements of :mod:`convo.store.sqlite_schema` list; keep
the two in step. JSON columns (``params``, ``slots``, ``media_urls``, ``metadata``) hold
compact JSON text; a value that is not JSON data is refused on the way in with
:class:`~convo.exceptions.StoreError`, and a corrupt one raises ``json.JSONDecodeError``
on the way out (the connection reports it as StoreError).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from convo.exceptions import StoreError
from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store.sqlite_schema import INSERT_MESSAGE

Row = tuple[Any, ...]

_STATUS = {s.value: s for s in MessageStatus}
_DIRECTION = {d.value: d for d in Direction}
_CONVERSATION = {s.value: s for s in ConversationStatus}


def session_row(s: Session) -> Row:
    """The ``sessions`` row of ``s``; StoreError when its params or slots are not JSON data."""
    k = s.key
    params, slots = _dump(s, "params", s.params), _dump(s, "slots", s.slots)
    return (
        *(k.line, k.channel, k.contact, s.flow, s.flow_version, s.step, s.lang, params, slots),
        *(s.attempts, s.status.value, s.contact_name, s.timer_due, s.timer_step),
        *(s.created_at, s.updated_at),
    )


def session(row: Row) -> Session:
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


def message_row(m: MessageRecord, *, processed: bool) -> Row:
    """The ``messages`` row of ``m``; ``processed`` is the inbox flag (True for outbound)."""
    media = json.dumps(list(m.media_urls)) if m.media_urls else "[]"
    metadata = json.dumps(dict(m.metadata)) if m.metadata else "{}"
    return (
        *(m.id, m.direction.value, m.line, m.contact, m.channel, m.text, m.status.value),
        *(m.provider, m.provider_message_id, m.segments, m.price, m.error, media),
        *(int(processed), m.created_at, m.updated_at, metadata),
        *(m.attempts, m.next_attempt_at, m.requeued_at),
    )


def message(row: Row) -> MessageRecord:
    (id_, direction, line, contact, channel, text, status, provider, pid, *rest) = row
    segments, price, error, media, created_at, updated_at, metadata, *retry = rest
    attempts, next_attempt_at, requeued_at = retry
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
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        requeued_at=requeued_at,
    )


def insert_messages(cx: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert message rows; StoreError naming the id when one is already in the log."""
    before = cx.total_changes
    try:
        cx.executemany(INSERT_MESSAGE, rows)
    except sqlite3.IntegrityError as exc:
        # executemany stops at the first failing row: the rows before it went in.
        failed = rows[cx.total_changes - before][0]
        raise StoreError(f"message id {failed} is already in the log ({exc})") from None


def _dump(session: Session, field: str, value: dict[str, Any]) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session {session.key}: {field} must be JSON data ({exc})") from None
