"""The campaign part of the store contract, against every backend: memory, SQLite (in
tmp_path) and PostgreSQL (a schema of its own, see tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.campaigns.model import (
    Campaign,
    CampaignStatus,
    NewRecipient,
    QuietHours,
    RecipientState,
)
from convo.exceptions import StoreError
from convo.models import (
    ConversationKey,
    ConversationStatus,
    Direction,
    MessageRecord,
    MessageStatus,
    Session,
)
from convo.store import Store
from tests.conftest import BACKENDS, open_backend

LINE = "+32460000103"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


def campaign(id_: str = "c1", *, created_at: float = 100.0, **kw: object) -> Campaign:
    values: dict[str, object] = {
        "id": id_,
        "name": "December reminders",
        "flow": "reminder",
        "line": LINE,
        "channel": "sms",
        "rate_per_second": 20.0,
        "params": {"date": "2026-12-01"},
        "quiet_hours": QuietHours.parse("21:00-09:00"),
        "created_at": created_at,
        "updated_at": created_at,
    }
    values.update(kw)
    return Campaign(**values)  # type: ignore[arg-type]


def person(n: int, row: int | None = None, **kw: object) -> NewRecipient:
    return NewRecipient(f"+3247000{n:04d}", row or n + 1, timezone="Europe/Brussels", **kw)  # type: ignore[arg-type]


async def test_a_campaign_is_kept_with_its_settings(store: Store) -> None:
    await store.create_campaign(campaign())
    assert await store.get_campaign("c1") == campaign()
    assert await store.get_campaign("nope") is None
    with pytest.raises(StoreError):
        await store.create_campaign(campaign())


async def test_duplicates_are_decided_by_the_store_across_batches(store: Store) -> None:
    await store.create_campaign(campaign())
    first = [person(1), person(2), person(1, row=4)]
    bad = NewRecipient("0000", 5, state=RecipientState.SKIPPED_INVALID, error="not a number")
    assert await store.add_recipients("c1", first) == 2
    assert await store.add_recipients("c1", [bad, person(2, row=6), person(3, row=7)]) == 1
    counts = await store.campaign_counts("c1")
    assert (counts.total, counts.pending, counts.skipped_duplicate, counts.skipped_invalid) == (
        6,
        3,
        2,
        1,
    )


async def test_claims_take_due_recipients_of_running_campaigns_in_order(store: Store) -> None:
    await store.create_campaign(campaign())
    await store.add_recipients("c1", [person(n) for n in range(1, 6)])
    first = await store.claim_recipients("c1", 1000.0, 2)
    assert [r.seq for r in first] == [1, 2]
    assert all(r.state is RecipientState.STARTING and r.claimed_at == 1000.0 for r in first)
    # Held by quiet hours: due later, so the next claim skips it.
    await store.settle("c1", 1, RecipientState.PENDING, now=1000.0, not_before=5000.0)
    await store.settle("c1", 2, RecipientState.STARTED, now=1001.0, message_id="m-2")
    assert [r.seq for r in await store.claim_recipients("c1", 1002.0, 10)] == [3, 4, 5]
    assert [r.seq for r in await store.claim_recipients("c1", 5000.0, 10)] == [1]
    paused = await store.set_campaign_status("c1", CampaignStatus.PAUSED, 6000.0)
    assert paused is not None and paused.status is CampaignStatus.PAUSED
    for seq in (3, 4, 5, 1):
        await store.settle("c1", seq, RecipientState.PENDING, now=6000.0)
    assert await store.claim_recipients("c1", 7000.0, 10) == []  # paused: nothing


async def test_claims_left_starting_are_listed_as_interrupted(store: Store) -> None:
    await store.create_campaign(campaign())
    await store.add_recipients("c1", [person(1), person(2)])
    await store.claim_recipients("c1", 50.0, 1)
    [left] = await store.interrupted()
    assert (left.seq, left.state, left.claimed_at) == (1, RecipientState.STARTING, 50.0)


async def test_status_moves_only_where_allowed(store: Store) -> None:
    await store.create_campaign(campaign())
    await store.add_recipients("c1", [person(1)])
    done = await store.set_campaign_status("c1", CampaignStatus.DONE, 1.0)
    assert done is not None and done.status is CampaignStatus.RUNNING  # one is pending
    cancelled = await store.set_campaign_status("c1", CampaignStatus.CANCELLED, 2.0)
    assert cancelled is not None and cancelled.status is CampaignStatus.CANCELLED
    resumed = await store.set_campaign_status("c1", CampaignStatus.RUNNING, 3.0)
    assert resumed is not None and resumed.status is CampaignStatus.CANCELLED  # for good
    assert await store.set_campaign_status("nope", CampaignStatus.PAUSED, 4.0) is None


async def test_list_is_newest_first_and_filters_by_status(store: Store) -> None:
    await store.create_campaign(campaign("old", created_at=1.0))
    await store.create_campaign(campaign("new", created_at=2.0, status=CampaignStatus.PAUSED))
    assert [c.id for c in await store.list_campaigns()] == ["new", "old"]
    assert [c.id for c in await store.list_campaigns(CampaignStatus.PAUSED)] == ["new"]


async def test_counts_follow_delivery_replies_and_completion(store: Store) -> None:
    await store.create_campaign(campaign())
    await store.add_recipients("c1", [person(n) for n in range(1, 5)])
    claimed = await store.claim_recipients("c1", 1000.0, 4)
    for r in claimed:
        key = ConversationKey(LINE, "sms", r.number)
        text = MessageRecord(
            id=f"m-{r.seq}",
            direction=Direction.OUTBOUND,
            line=LINE,
            contact=r.number,
            text="Hello",
            status=MessageStatus.QUEUED,
            created_at=1000.5,
            updated_at=1000.5,
        )
        ended = ConversationStatus.ENDED if r.seq == 3 else ConversationStatus.ACTIVE
        s = Session(key, "reminder", "1", "ask", "nl", status=ended, created_at=1000.5)
        await store.save_turn(s, outbound=[text])
    for r in claimed[:3]:
        await store.settle("c1", r.seq, RecipientState.STARTED, now=1001.0, message_id=f"m-{r.seq}")
    await store.settle("c1", 4, RecipientState.FAILED, now=1001.0, error="refused")
    await store.update_message("m-1", status=MessageStatus.DELIVERED)
    await store.update_message("m-2", status=MessageStatus.SENT)
    await store.update_message("m-3", status=MessageStatus.UNDELIVERED)
    reply = MessageRecord(
        id="in-1",
        direction=Direction.INBOUND,
        line=LINE,
        contact=claimed[0].number,
        text="1",
        status=MessageStatus.RECEIVED,
        created_at=1002.0,
        updated_at=1002.0,
    )
    await store.add_inbound(reply)
    counts = await store.campaign_counts("c1")
    assert counts.to_json() == {
        "total": 4,
        "pending": 0,
        "started": 3,
        "sent": 2,
        "delivered": 1,
        "failed": 2,  # the refused start and the undelivered text
        "replied": 1,
        "completed": 1,
        "skipped_opted_out": 0,
        "skipped_invalid": 0,
        "skipped_duplicate": 0,
    }
    done = await store.set_campaign_status("c1", CampaignStatus.DONE, 2000.0)
    assert done is not None and done.status is CampaignStatus.DONE


async def test_erasure_forgets_a_contacts_campaign_rows(store: Store) -> None:
    await store.create_campaign(campaign())
    await store.add_recipients("c1", [person(1), person(2)])
    await store.erase_contact(person(1).number)
    counts = await store.campaign_counts("c1")
    assert (counts.total, counts.pending) == (1, 1)
    # The number may be given again: it is no longer in the campaign.
    assert await store.add_recipients("c1", [person(1, row=9)]) == 1


def test_quiet_hours_hold_until_their_end_in_the_contacts_zone() -> None:
    quiet = QuietHours.parse("21:00-09:00")
    import datetime as dt
    from zoneinfo import ZoneInfo

    brussels = ZoneInfo("Europe/Brussels")
    late = dt.datetime(2026, 12, 4, 22, 30, tzinfo=brussels).timestamp()
    until = quiet.held_until(late, "Europe/Brussels")
    assert until == dt.datetime(2026, 12, 5, 9, 0, tzinfo=brussels).timestamp()
    early = dt.datetime(2026, 12, 5, 7, 0, tzinfo=brussels).timestamp()
    assert quiet.held_until(early, "Europe/Brussels") == until
    # 22:30 in Brussels is 16:30 in New York: not quiet there.
    assert quiet.held_until(late, "America/New_York") is None
    assert dataclasses.replace(quiet, end=quiet.start).held_until(late, "UTC") is None
    with pytest.raises(ValueError, match="HH:MM"):
        QuietHours.parse("21h-9h")
