"""Argument checks every store backend makes, so each refuses the same calls the same way.

A backend calls these before it changes anything: a refused call raises ``ValueError``
(a caller's mistake, not a store failure) and leaves the store as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from convo.models import Contact, Direction, MessageRecord, MessageStatus
from convo.store.base import ConversationQuery, MessageQuery


def check_query(query: MessageQuery | ConversationQuery) -> None:
    """Raise ValueError when a page request cannot be served."""
    what = "message" if isinstance(query, MessageQuery) else "conversation"
    if query.page < 1:
        raise ValueError(f"{what} query: page must be 1 or more, got {query.page}")
    if query.page_size < 1:
        raise ValueError(f"{what} query: page_size must be 1 or more, got {query.page_size}")


def check_inbound(record: MessageRecord) -> None:
    """Raise ValueError for an outbound record given as an inbound one."""
    if record.direction is not Direction.INBOUND:
        raise ValueError(f"add_inbound: message {record.id} is {record.direction.value}")


def check_outbound(records: Sequence[MessageRecord]) -> None:
    """Raise ValueError for an inbound record among outbound ones."""
    for record in records:
        if record.direction is not Direction.OUTBOUND:
            raise ValueError(f"message {record.id} is inbound; only outbound messages go here")


def check_call_log(records: Sequence[MessageRecord]) -> None:
    """Raise ValueError unless every record is a call's: channel ``voice``, ``received``
    (what the caller did) or ``delivered`` (what the call said), so none is ever taken
    for a text to turn or a reply to send."""
    for record in records:
        expected = (
            MessageStatus.RECEIVED
            if record.direction is Direction.INBOUND
            else MessageStatus.DELIVERED
        )
        if record.channel != "voice" or record.status is not expected:
            raise ValueError(
                f"call log: message {record.id} must be a voice message with status "
                f"{expected.value}, got {record.channel} {record.status.value}"
            )


def check_fragment(group: str, index: int, total: int) -> None:
    """Raise ValueError for a part number that cannot be right."""
    if total < 1 or not 1 <= index <= total:
        raise ValueError(f"fragment group {group!r}: part {index} of {total} is not a valid part")


_FIELDS_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
"""One encoder for every contact (``json.dumps`` with options builds a new one per call)."""


def contact_json(contact: Contact) -> str:
    """A contact's ``fields`` as JSON text; ValueError when they are not JSON data."""
    try:
        return _FIELDS_ENCODER.encode(dict(contact.fields))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"contact {contact.number}: fields must be JSON data ({exc})") from None
