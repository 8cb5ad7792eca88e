"""Rows of the SQL stores (SQLite and PostgreSQL) to and from convo's models.

Both stores keep sessions and messages in the same columns, in the same order: the order
the statements of :mod:`convo.store.sqlite_schema` and :mod:`convo.store.postgres_schema`
list; keep them in step. JSON columns (``params``, ``slots``, ``media_urls``,
``metadata``) hold compact JSON text; a value that is not JSON data is refused on the way
in with :class:`~convo.exceptions.StoreError`, and a corrupt one raises
``json.JSONDecodeError`` on the way out (each store reports it as StoreError). A row is
any iterable of column values: a tuple from sqlite3, a record from asyncpg.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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

Row = tuple[Any, ...]
"""A row on the way in: the values of its columns, in order."""

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


def session(row: Iterable[Any]) -> Session:
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


def message(row: Iterable[Any]) -> MessageRecord:
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


def _dump(session: Session, field: str, value: dict[str, Any]) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session {session.key}: {field} must be JSON data ({exc})") from None
