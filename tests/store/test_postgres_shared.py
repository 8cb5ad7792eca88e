"""What processes on one PostgreSQL database share: rate limits and outbox notices.

Two store instances on one schema play two processes (each has its own pool and
connections, as two processes do).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from convo.exceptions import StoreError
from convo.models import MessageRecord, OutboundMessage
from convo.rate_limits import BATCH_WINDOW, SharedTokenBucket, bucket_factory
from convo.runtime.loops import notice_listener
from convo.store import open_store
from convo.store.base import Store
from tests.conftest import admin_postgres_url, postgres_schema
from tests.e2e.sms_world import eventually


@pytest.fixture
async def two_stores() -> AsyncIterator[tuple[Store, Store]]:
    async with postgres_schema() as url:
        first, second = open_store(url), open_store(url)
        await first.open()
        await second.open()
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


async def test_a_bucket_starts_full_and_queues_what_it_lacks(
    two_stores: tuple[Store, Store],
) -> None:
    store, _ = two_stores
    assert bucket_factory(store) is not None
    assert await store.take_tokens("vonage", 10.0, 1) == 0.0  # type: ignore[attr-defined]
    wait = await store.take_tokens("vonage", 10.0, 14)  # type: ignore[attr-defined]
    assert 0.4 < wait <= 0.5  # 9 were left: 5 more at 10/s
    assert await store.take_tokens("other", 10.0, 10) == 0.0  # type: ignore[attr-defined]


async def test_the_limit_holds_for_two_processes_together(
    two_stores: tuple[Store, Store],
) -> None:
    rate, each = 40.0, 40
    buckets = [SharedTokenBucket(store, "vonage", rate) for store in two_stores]  # type: ignore[arg-type]

    async def send_all(bucket: SharedTokenBucket) -> None:
        for _ in range(each):
            await bucket.acquire()

    began = time.monotonic()
    await asyncio.gather(*(send_all(b) for b in buckets))
    took = time.monotonic() - began
    # 80 sends: 40 in the first burst, 40 more at 40/s. Each process alone would have let
    # its 40 go at once; the shared bucket makes the two wait about a second.
    assert took >= (2 * each - rate) / rate * 0.9


async def test_a_shared_bucket_gives_at_once_only_what_its_batch_holds(
    two_stores: tuple[Store, Store],
) -> None:
    store, _ = two_stores
    now = [0.0]
    bucket = SharedTokenBucket(store, "vonage", 200.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not bucket.try_acquire()  # no batch in hand yet: never asks the store
    await bucket.acquire()  # takes a batch of 10 (0.05 s at 200/s), uses one
    assert sum(bucket.try_acquire() for _ in range(20)) == bucket.batch - 1 == 9
    bucket.refund()
    now[0] += BATCH_WINDOW  # the batch lapses: what is left of it is not used
    assert not bucket.try_acquire()


async def test_queued_messages_wake_the_other_processes(two_stores: tuple[Store, Store]) -> None:
    listening, queuing = two_stores
    woken: list[str] = []
    listener = asyncio.create_task(listening.listen(woken.append))  # type: ignore[attr-defined]
    try:
        async with postgres_schema() as elsewhere:  # another deployment: not a notice for us
            stranger = open_store(elsewhere)
            await stranger.open()
            try:
                await asyncio.sleep(0.2)  # LISTEN is in place
                await stranger.add_outbound([_reply(0)])
                await queuing.add_outbound([_reply(1)])

                async def heard() -> bool:
                    return bool(woken)

                await eventually(heard, "an outbox notice", 5)
                await asyncio.sleep(0.2)
                assert woken == ["outbox"]
            finally:
                await stranger.close()
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener


async def test_listening_fails_loudly_when_its_connection_goes(
    two_stores: tuple[Store, Store],
) -> None:
    store, _ = two_stores
    admin = await asyncpg.connect(admin_postgres_url())
    since = await admin.fetchval("SELECT clock_timestamp()")
    listener = asyncio.create_task(store.listen(lambda topic: None))  # type: ignore[attr-defined]
    try:

        async def terminated() -> bool:
            done = await admin.fetchval(  # this test's listener, no one else's
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %convo_outbox%' AND backend_start >= $1",
                since,
            )
            return bool(done)

        await eventually(terminated, "the listening connection", 5)
        with pytest.raises(StoreError, match="notices"):
            await asyncio.wait_for(listener, 10)
    finally:
        await admin.close()
        listener.cancel()


async def test_the_runtime_listens_again_after_losing_its_connection(
    two_stores: tuple[Store, Store],
) -> None:
    listening, queuing = two_stores
    wakes: list[float] = []
    admin = await asyncpg.connect(admin_postgres_url())
    since = await admin.fetchval("SELECT clock_timestamp()")
    loop = asyncio.create_task(
        notice_listener(listening, lambda: wakes.append(time.monotonic()))()  # type: ignore[arg-type]
    )
    try:

        async def terminated() -> bool:
            done = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %convo_outbox%' AND backend_start >= $1",
                since,
            )
            return bool(done)

        await eventually(terminated, "the listening connection", 5)

        async def listening_again() -> bool:
            return bool(wakes) and bool(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %convo_outbox%' AND backend_start > $1",
                    since,
                )
            )

        await eventually(listening_again, "a new listening connection", 10)
        before = len(wakes)  # one wake after the reconnection, for a notice it may have missed
        await queuing.add_outbound([_reply(2)])

        async def woken() -> bool:
            return len(wakes) > before

        await eventually(woken, "the notice after the reconnection", 5)
        assert not loop.done()
    finally:
        await admin.close()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


def _reply(n: int) -> MessageRecord:
    return MessageRecord.outbound(
        OutboundMessage(line="+3225550120", to=f"+3247000{n:04d}", text="hi")
    )
