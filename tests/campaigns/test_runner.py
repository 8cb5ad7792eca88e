"""The campaign runner over a memory store, with a start function written for the test: a
start whose outcome the store lost is settled from the conversations (started once, or
started again when it never happened), without a restart."""

from __future__ import annotations

import asyncio
import time

from convo.campaigns.model import Campaign, CampaignStatus, NewRecipient
from convo.campaigns.runner import CampaignRunner, StartOutcome, StartRequest
from convo.exceptions import StoreError
from convo.models import ConversationKey, MessageRecord, OutboundMessage, Session
from convo.store import MemoryStore

LINE = "+32460000103"
LOST_ANSWER, REFUSED, FINE = "+32470111801", "+32470111802", "+32470111803"


async def test_starts_the_store_failed_to_settle_are_settled_once_it_answers() -> None:
    store = MemoryStore()
    campaign = Campaign("c1", "c1", "reminder", LINE, "sms", 100.0, created_at=1.0)
    await store.create_campaign(campaign)
    await store.add_recipients("c1", [NewRecipient(n, i) for i, n in
                                      enumerate((LOST_ANSWER, REFUSED, FINE), 2)])  # fmt: skip
    calls: list[str] = []

    async def start(request: StartRequest) -> StartOutcome:
        calls.append(request.to)
        first_time = calls.count(request.to) == 1
        if request.to == REFUSED and first_time:
            raise StoreError("database is locked")  # nothing was started
        key = ConversationKey(LINE, "sms", request.to)
        text = OutboundMessage(LINE, request.to, "Hello")
        await store.save_turn(Session(key, "reminder", "1", "remind", "nl"),
                              outbound=[MessageRecord.outbound(text)])  # fmt: skip
        if request.to == LOST_ANSWER:
            raise StoreError("disk I/O error")  # started, but its answer was lost
        return StartOutcome("started", message_id=text.id)

    runner = CampaignRunner(store, start, rate_limit=lambda line, channel: 100.0,
                            flow_params=lambda flow: ())  # fmt: skip
    running = asyncio.create_task(runner.run())
    try:
        for _ in range(200):  # bounded: 10 s
            done = await store.get_campaign("c1")
            assert done is not None
            if done.status is CampaignStatus.DONE:
                break
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert done.status is CampaignStatus.DONE
    assert sorted(calls) == sorted([LOST_ANSWER, REFUSED, REFUSED, FINE])  # none twice
    counts = await store.campaign_counts("c1")
    assert (counts.started, counts.pending, counts.failed) == (3, 0, 0)


async def test_recovery_while_running_leaves_the_starts_under_way_alone() -> None:
    store = MemoryStore()
    await store.create_campaign(Campaign("c1", "c1", "reminder", LINE, "sms", 100.0))
    await store.add_recipients("c1", [NewRecipient(FINE, 2)])
    # c2's time has not come: the runner claims none of it; a claim of it nobody holds is
    # what a process that stopped would leave behind.
    later = Campaign("c2", "c2", "reminder", LINE, "sms", 100.0, start_at=time.time() + 3600)
    await store.create_campaign(later)
    await store.add_recipients("c2", [NewRecipient(REFUSED, 2)])
    [orphan] = await store.claim_recipients("c2", 1.0, 1)
    under_way, go_on = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def start(request: StartRequest) -> StartOutcome:
        calls.append(request.to)
        if request.to == FINE:
            under_way.set()
            await go_on.wait()
        return StartOutcome("started")

    runner = CampaignRunner(store, start, rate_limit=lambda line, channel: 100.0,
                            flow_params=lambda flow: ())  # fmt: skip
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(under_way.wait(), 10)
        assert await runner.recover() == 0  # the start under way is its pacer's
        assert (await store.campaign_counts("c1")).pending == 1
        # The orphan went back to pending at the runner's start (no conversation since).
        assert (await store.campaign_counts("c2")).pending == 1
        [again] = await store.claim_recipients("c2", 3.0, 1)
        assert again.seq == orphan.seq
        assert await runner.recover() == 1  # a claim it does not hold: settled
        go_on.set()
        for _ in range(200):  # bounded: 10 s
            done = await store.get_campaign("c1")
            assert done is not None
            if done.status is CampaignStatus.DONE:
                break
            await asyncio.sleep(0.05)
    finally:
        go_on.set()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert done.status is CampaignStatus.DONE
    assert calls == [FINE]  # started once, and c2 (not due) not at all
    assert (await store.campaign_counts("c1")).started == 1
    assert (await store.campaign_counts("c2")).pending == 1
