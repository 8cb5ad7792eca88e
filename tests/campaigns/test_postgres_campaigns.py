"""Campaigns on PostgreSQL shared by several store instances (each one a process's pool and
presence lock): claims never overlap, a gone process's claims pass to one other process
after their lease, and two campaign runners start each recipient of one campaign once.

Every test runs on the real server in a schema of its own (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from convo.campaigns.model import Campaign, CampaignStatus, NewRecipient, RecipientState
from convo.campaigns.runner import CampaignRunner, Starter, StartOutcome, StartRequest
from convo.models import (
    ConversationKey,
    Direction,
    MessageRecord,
    OutboundMessage,
    Session,
)
from convo.store.base import MessageQuery
from convo.store.postgres import PostgresStore

LINE = "+32460000104"


def people(count: int) -> list[NewRecipient]:
    return [NewRecipient(f"+3247{n:07d}", n + 2) for n in range(count)]


@pytest.fixture
def small_pools(postgres_url: str) -> str:
    """The schema's URL with pools of 4 connections: the test server is shared."""
    return f"{postgres_url}&pool_size=4"


@pytest.fixture
async def stores(small_pools: str) -> AsyncIterator[list[PostgresStore]]:
    """Three store instances on one schema: three processes, as far as the database sees."""
    opened = [PostgresStore(small_pools) for _ in range(3)]
    for store in opened:
        await store.open()
    try:
        yield opened
    finally:
        for store in opened:
            await store.close()


async def campaign_of(store: PostgresStore, count: int, rate: float = 100.0) -> Campaign:
    campaign = Campaign("c1", "c1", "reminder", LINE, "sms", rate, created_at=1.0)
    await store.create_campaign(campaign)
    assert await store.add_recipients("c1", people(count)) == count
    return campaign


async def test_claims_racing_from_two_processes_never_overlap(
    stores: list[PostgresStore],
) -> None:
    a, b, _ = stores
    await campaign_of(a, 600)
    taken: list[int] = []

    async def claimer(store: PostgresStore) -> None:
        while found := await store.claim_recipients("c1", 10.0, 7):
            taken.extend(r.seq for r in found)

    # Four claimers per process, all at once: the same rows are due for every one of them.
    await asyncio.gather(*(claimer(s) for s in (a, b) for _ in range(4)))
    assert sorted(taken) == list(range(1, 601))  # every row once: none twice, none left
    counts = await a.campaign_counts("c1")
    assert (counts.pending, counts.started) == (600, 0)  # all starting (pending counts them)


async def test_a_gone_processs_claims_pass_to_one_other_after_their_lease(
    stores: list[PostgresStore], small_pools: str
) -> None:
    a, b, c = stores
    await campaign_of(a, 6)
    gone = PostgresStore(small_pools)
    gone.claim_lease = 0.0  # its claims may pass on as soon as it is gone
    await gone.open()
    mine = await a.claim_recipients("c1", 50.0, 2)  # a lives on: its claims stay its own
    left = await gone.claim_recipients("c1", 60.0, 2)
    slow = PostgresStore(small_pools)  # the default lease: a minute
    await slow.open()
    recent = await slow.claim_recipients("c1", 70.0, 2)
    assert [r.seq for r in (*mine, *left, *recent)] == [1, 2, 3, 4, 5, 6]
    assert await b.interrupted() == []  # all three processes live
    await gone.close()
    await slow.close()  # gone as well, but its claims are a second old
    taken = await b.interrupted()
    assert [(r.seq, r.state, r.claimed_at) for r in taken] == [
        (3, RecipientState.STARTING, 60.0),
        (4, RecipientState.STARTING, 60.0),
    ]
    assert await c.interrupted() == []  # b has them now, and b lives
    assert [r.seq for r in await b.interrupted()] == [3, 4]  # its own, until it settles them
    assert [r.seq for r in await a.interrupted()] == [
        1,
        2,
    ]  # a's own: its runner skips those it holds


async def test_two_runners_start_each_recipient_of_one_campaign_once(
    stores: list[PostgresStore],
) -> None:
    a, b, _ = stores
    total = 500
    await campaign_of(a, total, rate=400.0)
    started: list[str] = []
    by_process: Counter[int] = Counter()
    both_in = asyncio.Event()

    def starter(index: int, store: PostgresStore) -> Starter:
        async def start(request: StartRequest) -> StartOutcome:
            started.append(request.to)
            by_process[index] += 1
            if len(by_process) == 2:
                both_in.set()
            # Each runner's first start waits for the other's: both are claiming from now.
            await asyncio.wait_for(both_in.wait(), 30)
            key = ConversationKey(LINE, "sms", request.to)
            text = MessageRecord.outbound(OutboundMessage(LINE, request.to, "Reminder"))
            await store.save_turn(Session(key, "reminder", "1", "remind", "nl"), outbound=[text])
            return StartOutcome("started", message_id=text.id)

        return start

    runners = [
        CampaignRunner(
            store,
            starter(i, store),
            rate_limit=lambda line, channel: 1000.0,
            flow_params=lambda flow: (),
        )
        for i, store in enumerate((a, b))
    ]
    running = [asyncio.create_task(r.run()) for r in runners]
    try:
        for _ in range(600):  # bounded: 60 s
            now = await a.get_campaign("c1")
            assert now is not None
            if now.status is CampaignStatus.DONE:
                break
            await asyncio.sleep(0.1)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert now.status is CampaignStatus.DONE
    assert len(started) == total
    assert Counter(started).most_common(1)[0][1] == 1  # nobody started twice
    assert set(by_process) == {0, 1}  # both processes started some
    counts = await b.campaign_counts("c1")
    assert (counts.started, counts.pending, counts.sent) == (total, 0, 0)


async def test_two_runners_of_one_campaign_keep_to_its_rate_together(
    stores: list[PostgresStore],
) -> None:
    a, b, _ = stores
    total, rate = 140, 20.0
    await campaign_of(a, total, rate=rate)
    at: list[float] = []  # time.monotonic() of each start

    async def start(request: StartRequest) -> StartOutcome:
        at.append(time.monotonic())
        return StartOutcome("opted_out")  # nothing to store: only the pace counts here

    runners = [
        CampaignRunner(
            store, start, rate_limit=lambda line, channel: 1000.0, flow_params=lambda flow: ()
        )
        for store in (a, b)
    ]
    running = [asyncio.create_task(r.run()) for r in runners]
    try:
        for _ in range(600):  # bounded: 60 s
            now = await a.get_campaign("c1")
            assert now is not None
            if now.status is CampaignStatus.DONE:
                break
            await asyncio.sleep(0.1)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert now.status is CampaignStatus.DONE and len(at) == total
    # The campaign's bucket starts with a second of starts (20) and then gives 20 a second:
    # the last of 140 cannot start before 6 s after the first (each runner alone at 20 a
    # second would be done in 3.5). A slow machine only makes it later.
    assert max(at) - min(at) >= (total - rate) / rate - 0.5


# A process of its own on the schema at argv[1]: a campaign runner whose starts open the
# conversation and queue its first text, as convo's do; from the 15th on, a start hangs
# after that (its outcome never recorded), and the process says "stuck" once.
DOOMED = """
import asyncio, sys
from convo.campaigns.runner import CampaignRunner, StartOutcome
from convo.models import ConversationKey, MessageRecord, OutboundMessage, Session
from convo.store.postgres import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1])
    store.claim_lease = 0.5
    await store.open()
    done = 0

    async def start(request):
        nonlocal done
        key = ConversationKey(request.line, "sms", request.to)
        text = MessageRecord.outbound(OutboundMessage(request.line, request.to, "Reminder"))
        await store.save_turn(Session(key, "reminder", "1", "remind", "nl"), outbound=[text])
        done += 1
        if done >= 15:
            if done == 15:
                print("stuck", flush=True)
            await asyncio.Event().wait()
        return StartOutcome("started", message_id=text.id)

    runner = CampaignRunner(store, start, rate_limit=lambda line, channel: 1000.0,
                            flow_params=lambda flow: ())
    await runner.run()

asyncio.run(main())
"""


async def test_a_killed_processs_claims_are_finished_by_another_once_each(
    stores: list[PostgresStore], small_pools: str
) -> None:
    a, b, _ = stores
    total = 100
    await campaign_of(a, total, rate=200.0)
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-c", DOOMED, small_pools),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert doomed.stdout is not None and doomed.stderr is not None
        line = await asyncio.wait_for(doomed.stdout.readline(), 60)
        assert line == b"stuck\n", line + await doomed.stderr.read()
    finally:
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
    left = await a.campaign_counts("c1")
    assert left.started < 15 and left.pending > total - 15  # claims open when it died

    async def start(request: StartRequest) -> StartOutcome:
        key = ConversationKey(LINE, "sms", request.to)
        text = MessageRecord.outbound(OutboundMessage(LINE, request.to, "Reminder"))
        await b.save_turn(Session(key, "reminder", "1", "remind", "nl"), outbound=[text])
        return StartOutcome("started", message_id=text.id)

    runner = CampaignRunner(
        b, start, rate_limit=lambda line, channel: 1000.0, flow_params=lambda flow: ()
    )
    running = asyncio.create_task(runner.run())
    try:
        for _ in range(600):  # bounded: 60 s (its lease, then the next look: about 5 s)
            now = await a.get_campaign("c1")
            assert now is not None
            if now.status is CampaignStatus.DONE:
                break
            await asyncio.sleep(0.1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert now.status is CampaignStatus.DONE
    counts = await a.campaign_counts("c1")
    assert (counts.started, counts.pending) == (total, 0)
    first_texts = Counter[str]()
    for n in range(total):
        query = MessageQuery(direction=Direction.OUTBOUND, number=f"+3247{n:07d}")
        first_texts[f"+3247{n:07d}"] = (await a.list_messages(query))[1]
    assert set(first_texts.values()) == {1}  # each started once: none lost, none twice
