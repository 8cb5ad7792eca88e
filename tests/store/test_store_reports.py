"""The web console's reads (``Reports``), the step visits and the call log ``save_turn``
records, against every store backend (memory, SQLite in tmp_path, PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store import Store
from convo.store.base import ConversationQuery, MessageQuery, StepCount
from tests.conftest import BACKENDS, open_backend

LINE = "+32470000100"
OTHER_LINE = "+32470000200"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        assert isinstance(backend, Store)
        yield backend


def person(n: int) -> str:
    return f"+3247000{n:04d}"


def session(n: int, *, step: str = "confirm", at: float = 1000.0, **changes: object) -> Session:
    s = Session(
        key=ConversationKey(LINE, "sms", person(n)),
        flow="appointment",
        flow_version="1",
        step=step,
        lang="nl",
        created_at=at,
        updated_at=at,
    )
    return dataclasses.replace(s, **changes)  # type: ignore[arg-type]  # test data


def reply(n: int, text: str, at: float, line: str = LINE) -> MessageRecord:
    return MessageRecord(
        id=f"out-{n}-{at}",
        direction=Direction.OUTBOUND,
        line=line,
        contact=person(n),
        text=text,
        status=MessageStatus.QUEUED,
        created_at=at,
        updated_at=at,
    )


async def test_conversations_newest_first_paged_with_their_last_message(store: Store) -> None:
    for n in range(5):
        await store.save_turn(session(n, at=1000.0 + n), outbound=[reply(n, f"hello {n}", 1000.0)])
    await store.save_turn(session(3, at=1010.0), outbound=[reply(3, "later", 1010.0)])
    # a message on another line is not this conversation's
    await store.add_outbound([reply(3, "elsewhere", 1020.0, line=OTHER_LINE)])

    rows, total = await store.list_conversations(ConversationQuery(page_size=2))
    assert total == 5
    assert [r.session.key.contact for r in rows] == [person(3), person(4)]
    assert rows[0].last_message is not None and rows[0].last_message.text == "later"
    assert rows[1].last_message is not None and rows[1].last_message.text == "hello 4"

    rows, total = await store.list_conversations(ConversationQuery(page=3, page_size=2))
    assert [r.session.key.contact for r in rows] == [person(0)] and total == 5
    rows, _ = await store.list_conversations(ConversationQuery(page=4, page_size=2))
    assert rows == []


async def test_conversation_filters(store: Store) -> None:
    await store.save_turn(session(1, step="confirm"))
    await store.save_turn(session(2, step="done", status=ConversationStatus.ENDED))
    await store.save_turn(session(3, step="done", flow="survey"))
    rows, total = await store.list_conversations(ConversationQuery(flow="appointment"))
    assert total == 2 and {r.session.key.contact for r in rows} == {person(1), person(2)}
    rows, total = await store.list_conversations(ConversationQuery(step="done"))
    assert total == 2
    rows, total = await store.list_conversations(
        ConversationQuery(step="done", status=ConversationStatus.ACTIVE)
    )
    assert total == 1 and rows[0].session.key.contact == person(3)
    assert rows[0].last_message is None
    _, total = await store.list_conversations(ConversationQuery(line=OTHER_LINE))
    assert total == 0


async def test_conversation_query_pages_start_at_one(store: Store) -> None:
    with pytest.raises(ValueError, match="page must be 1"):
        await store.list_conversations(ConversationQuery(page=0))


async def test_step_counts_reached_ended_and_abandoned(store: Store) -> None:
    # 1: confirm -> done (ended); 2: confirm, silent since 1000 (abandoned at idle 1500);
    # 3: confirm -> pick_date, recent; 4: confirm, answered again on the same step.
    for n in (1, 2, 3, 4):
        await store.save_turn(session(n, step="confirm", at=1000.0))
    await store.save_turn(
        session(1, step="done", at=1100.0, created_at=1000.0, status=ConversationStatus.ENDED)
    )
    await store.save_turn(session(3, step="pick_date", at=1900.0, created_at=1000.0))
    await store.save_turn(session(4, step="confirm", at=1950.0, created_at=1000.0, attempts=1))

    counts = await store.step_counts("appointment", 0.0, 2000.0, idle_before=1500.0)
    assert counts == [
        StepCount("confirm", reached=4, ended=0, abandoned=1),
        StepCount("done", reached=1, ended=1, abandoned=0),
        StepCount("pick_date", reached=1, ended=0, abandoned=0),
    ]
    # the period bounds the visits and the last changes
    counts = await store.step_counts("appointment", 1050.0, 2000.0, idle_before=1500.0)
    assert counts == [
        StepCount("done", reached=1, ended=1, abandoned=0),
        StepCount("pick_date", reached=1, ended=0, abandoned=0),
    ]
    assert await store.step_counts("survey", 0.0, 2000.0, idle_before=1500.0) == []


async def test_a_new_conversation_after_an_ended_one_visits_again(store: Store) -> None:
    await store.save_turn(session(1, step="confirm", status=ConversationStatus.ENDED))
    await store.save_turn(session(1, step="confirm", at=1200.0))  # started anew
    counts = await store.step_counts("appointment", 0.0, 2000.0, idle_before=0.0)
    assert counts == [StepCount("confirm", reached=2, ended=0, abandoned=0)]


async def test_erasure_forgets_the_step_visits(store: Store) -> None:
    await store.save_turn(session(1, step="confirm"))
    await store.save_turn(session(2, step="confirm"))
    await store.erase_contact(person(1))
    counts = await store.step_counts("appointment", 0.0, 2000.0, idle_before=0.0)
    assert counts == [StepCount("confirm", reached=1, ended=0, abandoned=0)]


def call_record(n: int, direction: Direction, status: MessageStatus) -> MessageRecord:
    return MessageRecord(
        id=f"call-{n}",
        direction=direction,
        line=LINE,
        contact=person(1),
        text=f"said {n}",
        status=status,
        channel="voice",
        created_at=1000.0 + n,
        updated_at=1000.0 + n,
    )


async def test_a_call_log_is_a_record_never_a_text_to_turn_or_send(store: Store) -> None:
    heard = call_record(1, Direction.INBOUND, MessageStatus.RECEIVED)
    said = call_record(2, Direction.OUTBOUND, MessageStatus.DELIVERED)
    await store.save_turn(session(1), call_log=[heard, said])
    page, total = await store.list_messages(MessageQuery(number=person(1)))
    assert total == 2 and [m.text for m in page] == ["said 2", "said 1"]
    assert await store.unprocessed_inbound() == []
    assert await store.pending_outbound() == []
    assert await store.due_outbound(now=10**10) == []
    with pytest.raises(ValueError, match="voice message with status received"):
        await store.save_turn(
            session(1), call_log=[call_record(3, Direction.INBOUND, MessageStatus.DELIVERED)]
        )
    with pytest.raises(ValueError, match="voice message with status delivered"):
        queued = dataclasses.replace(said, id="call-4", status=MessageStatus.QUEUED)
        await store.save_turn(session(1), call_log=[queued])
    _, total = await store.list_messages(MessageQuery(number=person(1)))
    assert total == 2  # a refused turn logs nothing


async def test_step_visits_before_a_time_are_pruned(store: Store) -> None:
    await store.save_turn(session(1, step="confirm", at=1000.0))
    await store.save_turn(session(1, step="done", at=2000.0, created_at=1000.0))
    await store.save_turn(session(2, step="confirm", at=2500.0))
    assert await store.prune_step_visits(2000.0) == 1  # the visit at 1000 only
    counts = await store.step_counts("appointment", 0.0, 3000.0, idle_before=0.0)
    assert counts == [
        StepCount("confirm", reached=1, ended=0, abandoned=0),
        StepCount("done", reached=1, ended=0, abandoned=0),
    ]
    assert await store.prune_step_visits(2000.0) == 0
