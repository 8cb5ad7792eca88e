"""``MessageLog.last_sent_to`` (the shared-code rule's question), on every store backend:
memory, SQLite in tmp_path, and PostgreSQL in a schema of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.models import Direction, MessageRecord, MessageStatus
from convo.store import Store
from tests.conftest import BACKENDS, open_backend

CODE = "8937"
OTHER_LINE = "8888"
ALICE = "+32470000001"
BOB = "+32470000002"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        assert isinstance(backend, Store)
        yield backend


def message(
    n: int,
    at: float,
    status: MessageStatus,
    *,
    line: str = CODE,
    contact: str = ALICE,
    direction: Direction = Direction.OUTBOUND,
) -> MessageRecord:
    return MessageRecord(
        id=f"m-{n}", direction=direction, line=line, contact=contact, text=f"text {n}",
        status=status, provider="enco", provider_message_id=f"e-{n}",
        created_at=at, updated_at=at + 500,
    )  # fmt: skip


async def test_last_sent_to_is_the_newest_sent_message_of_that_line_to_that_contact(
    store: Store,
) -> None:
    assert await store.last_sent_to(CODE, ALICE, 0.0) is None
    await store.add_outbound(
        [
            message(1, 1000.0, MessageStatus.DELIVERED),
            message(2, 2000.0, MessageStatus.SENT),
            message(3, 2500.0, MessageStatus.UNDELIVERED, contact=BOB),
            # None of these counts for Alice on the code:
            message(4, 3000.0, MessageStatus.SENT, line=OTHER_LINE),  # another line
            message(5, 3100.0, MessageStatus.QUEUED),  # not sent (yet)
            message(6, 3200.0, MessageStatus.FAILED),  # refused
            message(7, 3300.0, MessageStatus.DEAD),  # given up
        ]
    )
    await store.add_inbound(message(8, 3400.0, MessageStatus.RECEIVED, direction=Direction.INBOUND))
    assert await store.last_sent_to(CODE, ALICE, 0.0) == 2000.0
    assert await store.last_sent_to(CODE, ALICE, 2000.0) == 2000.0  # "since" is inclusive
    assert await store.last_sent_to(CODE, ALICE, 2000.5) is None
    assert await store.last_sent_to(CODE, BOB, 0.0) == 2500.0
    assert await store.last_sent_to(OTHER_LINE, ALICE, 0.0) == 3000.0
    # Its status moves on (a late receipt): it still counts, from when it was created.
    await store.update_message("m-5", status=MessageStatus.SENT)
    assert await store.last_sent_to(CODE, ALICE, 0.0) == 3100.0


async def test_last_sent_to_forgets_an_erased_contact(store: Store) -> None:
    await store.add_outbound([message(1, 1000.0, MessageStatus.SENT)])
    await store.erase_contact(ALICE)
    assert await store.last_sent_to(CODE, ALICE, 0.0) is None
