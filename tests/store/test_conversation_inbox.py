"""``MessageLog.unprocessed_of``: one conversation's stored but unprocessed texts."""

from __future__ import annotations

from convo.models import ConversationKey, InboundMessage, MessageRecord
from convo.store.base import Store

LINE, ALICE, BOB = "+32470000100", "+32470000001", "+32470000002"


def text(sender: str, n: int, *, line: str = LINE, at: float = 0.0) -> MessageRecord:
    message = InboundMessage(
        line=line,
        sender=sender,
        text=f"t{n}",
        provider="vonage",
        provider_message_id=f"{sender}-{line}-{n}",
        received_at=at or 1000.0 + n,
    )
    return MessageRecord.inbound(message)


async def test_a_conversations_unprocessed_texts_oldest_first(any_store: Store) -> None:
    store = any_store
    key = ConversationKey(LINE, "sms", ALICE)
    late, early, other_contact, other_line = (
        text(ALICE, 2),
        text(ALICE, 1),
        text(BOB, 1),
        text(ALICE, 3, line="+32470000199"),
    )
    for record in (late, early, other_contact, other_line):
        assert await store.add_inbound(record)
    same_time = text(ALICE, 4, at=1002.0)  # ties keep the order they were stored in
    assert await store.add_inbound(same_time)
    assert [r.id for r in await store.unprocessed_of(key)] == [early.id, late.id, same_time.id]
    assert [r.id for r in await store.unprocessed_of(key, limit=1)] == [early.id]
    await store.mark_processed(early.id)
    assert [r.id for r in await store.unprocessed_of(key)] == [late.id, same_time.id]
    assert await store.unprocessed_of(ConversationKey(LINE, "voice", ALICE)) == []
