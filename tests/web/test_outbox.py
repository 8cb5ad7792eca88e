"""The outbox against a tiny Telefoon-shaped provider on loopback, over every store."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderUnavailable, RateLimited
from convo.metrics import Metrics, TimedStore
from convo.models import DeliveryReport, MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import RUN_LENGTH, Outbox, RetryPolicy, TokenBucket
from convo.providers.telefoon_sms import TelefoonSms
from convo.rate_limits import BURST_SECONDS, burst
from convo.store.base import Store

LINE = "+32460000101"
ALICE = "+32470000001"
BOB = "+32470000002"


class FakeProvider:
    """POST /messages answers the scripted statuses in turn, then 201."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/messages", self.send)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        status = self.script.pop(0) if self.script else 201
        if status == 201:
            return web.json_response(
                {
                    "id": f"tf-{next(self.ids)}",
                    "status": "queued",
                    "direction": "outbound",
                    "from": body["from"],
                    "to": body["to"],
                    "num_segments": 1,
                    "price": "0.0750",
                },
                status=201,
            )
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.json_response({"error": "scripted"}, status=status, headers=headers)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def outbox_for(
    store: Store, http: httpx.AsyncClient, fake: FakeProvider, **options: Any
) -> tuple[Outbox, TestServer]:
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    provider = TelefoonSms.from_config(
        "telefoon_sms",
        {"api_key": "k", "allow_unsigned": True, "base_url": str(server.make_url(""))},
        http,
    )
    options = {
        "policy": RetryPolicy(base_delay=0.01, max_delay=0.02),
        "sweep_interval": 0.1,
        **options,
    }
    outbox = Outbox(store, {"telefoon_sms": provider}, {LINE: "telefoon_sms"}, **options)
    return outbox, server


async def add(store: Store, *texts: str, to: str = ALICE, at: float = 0) -> list[MessageRecord]:
    """Queue ``texts`` to ``to`` in the store, created at ``at`` (0: now)."""
    records = [
        MessageRecord.outbound(OutboundMessage(LINE, to, t, created_at=at or time.time()))
        for t in texts
    ]
    await store.add_outbound(records)
    return records


async def queue(store: Store, *texts: str, to: str = ALICE) -> list[str]:
    records = [MessageRecord.outbound(OutboundMessage(LINE, to, t)) for t in texts]
    await store.add_outbound(records)
    return [r.id for r in records]


async def run(outbox: Outbox, server: TestServer) -> None:
    outbox.start()
    try:
        assert await outbox.drain(5)
    finally:
        await outbox.aclose()
        await server.close()


async def test_retries_throttling_and_5xx_then_records_the_result(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([429, 503, 500])
    outbox, server = await outbox_for(any_store, http, fake)
    [mid] = await queue(any_store, "hello")
    await run(outbox, server)
    assert len(fake.requests) == 4
    record = await any_store.get_message(mid)
    assert record is not None
    assert record.status == MessageStatus.SENT
    assert (record.provider, record.provider_message_id) == ("telefoon_sms", "tf-1")
    assert record.segments == 1 and record.price == pytest.approx(0.075)


async def test_permanent_rejection_is_not_retried(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([400])
    outbox, server = await outbox_for(any_store, http, fake)
    [mid] = await queue(any_store, "hello")
    await run(outbox, server)
    assert len(fake.requests) == 1
    record = await any_store.get_message(mid)
    assert record is not None and record.status == MessageStatus.FAILED
    assert record.error and "400" in record.error


async def test_transient_failures_past_the_maximum_age_make_a_dead_letter(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    clock = [1000.0]  # the wall clock the outbox sees; it stands still unless moved here
    fake = FakeProvider([503] * 3 + [500] * 1000)
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_age=3600)
    outbox, server = await outbox_for(any_store, http, fake, policy=policy, clock=lambda: clock[0])
    [mid] = [r.id for r in await add(any_store, "hello", at=1000.0)]
    outbox.start()
    try:
        for _ in range(500):  # more attempts than max_attempts ever allowed, within the age
            if len(fake.requests) >= 8:
                break
            await asyncio.sleep(0.01)
        record = await any_store.get_message(mid)
        assert record is not None and record.status in (MessageStatus.QUEUED, MessageStatus.SENDING)
        clock[0] = 1000.0 + 3600  # the message reaches its maximum age
        for _ in range(500):
            record = await any_store.get_message(mid)
            if record is not None and record.status is MessageStatus.DEAD:
                break
            await asyncio.sleep(0.01)
        assert await outbox.drain(5)
    finally:
        await outbox.aclose()
        await server.close()
    assert record is not None and record.status is MessageStatus.DEAD
    assert record.error is not None and "500" in record.error  # the last error is kept
    assert record.attempts == len(fake.requests) >= 8


async def test_one_recipient_gets_messages_in_order(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([429])  # the first message is throttled once
    outbox, server = await outbox_for(any_store, http, fake)
    await queue(any_store, "one", "two", "three")
    await run(outbox, server)
    assert [r["body"] for r in fake.requests] == ["one", "one", "two", "three"]


def store_calls(metrics: Metrics, method: str) -> int:
    """How many times the outbox called the store's ``method`` (the store's metrics)."""
    return sum(metrics.store_seconds.series(method).counts)


async def test_each_message_takes_one_store_write_claiming_the_next_with_it(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    metrics = Metrics()
    store = TimedStore.wrap(any_store, metrics)
    fake = FakeProvider([])
    # A rate limit far above what is sent: a token is always at hand. Only the first sweep
    # reads the store (a later one, seeing Alice between two runs, would make her sender
    # claim once more at its end: right, but not what is counted here).
    outbox, server = await outbox_for(
        store, http, fake, buckets=lambda _, __: TokenBucket(1e6), sweep_interval=3600
    )
    await queue(store, *(f"a{i}" for i in range(RUN_LENGTH + 2)))
    await queue(store, "b0", to=BOB)
    outbox.start()
    try:
        # The write that records the last message is the senders' last store call.
        for _ in range(1000):
            if not await any_store.pending_outbound(limit=1):
                break
            await asyncio.sleep(0.01)
    finally:
        await outbox.aclose()
        await server.close()
    to_alice = [r["body"] for r in fake.requests if r["to"] == ALICE]
    assert to_alice == [f"a{i}" for i in range(RUN_LENGTH + 2)]  # in order
    assert len(fake.requests) == RUN_LENGTH + 3  # each once
    # A claim per recipient and per run of RUN_LENGTH messages on one slot; every other
    # message came with the outcome of the one before, and the last outcome found nothing.
    assert store_calls(metrics, "claim_next") == 3
    assert store_calls(metrics, "record_outcome") == RUN_LENGTH + 3
    assert store_calls(metrics, "update_message") == 0


async def test_without_a_token_at_hand_the_next_message_is_claimed_on_its_own(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    metrics = Metrics()
    store = TimedStore.wrap(any_store, metrics)
    fake = FakeProvider([])
    # 5/s with a burst of one token: none is at hand when a send's outcome is recorded.
    outbox, server = await outbox_for(store, http, fake, buckets=lambda _, __: TokenBucket(5.0))
    assert TokenBucket(5.0).capacity == 1.0
    await queue(store, "one", "two", "three")
    await run(outbox, server)
    assert [r["body"] for r in fake.requests] == ["one", "two", "three"]
    assert store_calls(metrics, "claim_next") >= 3


async def test_message_left_sending_by_a_crash_is_sent_on_start(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    [mid] = await queue(any_store, "again")
    await any_store.update_message(mid, status=MessageStatus.SENDING)
    fake = FakeProvider([])
    outbox, server = await outbox_for(any_store, http, fake)
    await run(outbox, server)
    assert [r["body"] for r in fake.requests] == ["again"]
    record = await any_store.get_message(mid)
    assert record is not None and record.status == MessageStatus.SENT


async def test_delivery_reports_move_status_forward_only(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([])
    outbox, server = await outbox_for(any_store, http, fake)
    [mid] = await queue(any_store, "hello")
    await run(outbox, server)
    report = DeliveryReport("telefoon_sms", "tf-1", MessageStatus.DELIVERED, price=0.08)
    updated = await outbox.apply_report(report)
    assert updated is not None and updated.status == MessageStatus.DELIVERED
    assert updated.price == pytest.approx(0.08)
    late = DeliveryReport("telefoon_sms", "tf-1", MessageStatus.SENT)
    after = await outbox.apply_report(late)
    assert after is not None and after.status == MessageStatus.DELIVERED
    by_ref = DeliveryReport("telefoon_sms", "", MessageStatus.UNDELIVERED, client_ref=mid)
    final = await outbox.apply_report(by_ref)
    assert final is not None and final.status == MessageStatus.DELIVERED  # final stays final
    assert (
        await outbox.apply_report(DeliveryReport("telefoon_sms", "nope", MessageStatus.SENT))
        is None
    )


def test_backoff_is_exponential_with_full_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    err = ProviderUnavailable("down")
    assert [policy.delay(n, err, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.delay(3, err, lambda: 0.5) == 2.0
    assert policy.delay(1, RateLimited("slow", retry_after=7.5), lambda: 1.0) == 7.5
    assert policy.delay(2, RateLimited("slow"), lambda: 1.0) == 2.0


async def test_token_bucket_limits_the_rate() -> None:
    bucket = TokenBucket(50.0)
    start = time.monotonic()
    for _ in range(20):  # a burst of 10, then 10 more at 50/s
        await bucket.acquire()
    assert time.monotonic() - start >= 0.15
    with pytest.raises(ValueError, match="rate limit"):
        TokenBucket(0)


def test_token_bucket_bursts_well_below_a_second_of_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(50.0, clock=lambda: now[0])
    assert bucket.capacity == burst(50.0) == 50.0 * BURST_SECONDS < 50.0
    assert sum(bucket.try_acquire() for _ in range(60)) == 10  # full: the burst, no more
    now[0] += 0.1
    assert sum(bucket.try_acquire() for _ in range(60)) == 5  # then the rate
    now[0] += 3600.0
    assert sum(bucket.try_acquire() for _ in range(60)) == 10  # a long quiet spell: the burst
    bucket.refund()
    assert bucket.try_acquire() and not bucket.try_acquire()
    assert TokenBucket(2.0).capacity == 1.0  # at least one token, however slow


async def test_unknown_line_fails_with_a_clear_error(any_store: Store) -> None:
    outbox = Outbox(any_store, {}, {}, sweep_interval=0.1)
    [mid] = await queue(any_store, "hello")
    outbox.start()
    try:
        assert await outbox.drain(5)
    finally:
        await outbox.aclose()
    record = await any_store.get_message(mid)
    assert record is not None and record.status == MessageStatus.FAILED
    assert record.error == f"no provider for line {LINE}"
    await asyncio.sleep(0)


async def test_submitted_replies_go_out_without_a_sweep_and_only_once(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([])
    outbox, server = await outbox_for(any_store, http, fake)
    outbox.sweep_interval = 3600  # only the first sweep, at start, reads the store
    outbox.start()
    try:
        await asyncio.sleep(0.05)  # that first sweep found nothing
        messages = [OutboundMessage(LINE, ALICE, t) for t in ("one", "two", "three")]
        await any_store.add_outbound([MessageRecord.outbound(m) for m in messages])
        outbox.submit(messages)
        outbox.submit(messages[:1])  # handed over twice: still sent once
        for _ in range(500):  # no sweep runs: only the hand-over can send them
            if len(fake.requests) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(fake.requests) == 3
        assert await outbox.drain(5)
    finally:
        await outbox.aclose()
        await server.close()
    assert [r["body"] for r in fake.requests] == ["one", "two", "three"]  # in order, once
    for message in messages:
        record = await any_store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT


async def test_a_message_waiting_out_a_backoff_holds_no_send_slot(
    any_store: Store, http: httpx.AsyncClient
) -> None:
    fake = FakeProvider([503])  # Alice's message fails once, then waits 30 s
    outbox, server = await outbox_for(
        any_store,
        http,
        fake,
        policy=RetryPolicy(base_delay=30.0, max_delay=30.0),
        rng=lambda: 1.0,  # no jitter: the backoff is the full 30 s
        concurrency=1,  # one slot: Bob's message needs the one Alice's would hold
    )
    outbox.start()
    try:
        [alice] = await queue(any_store, "first", to=ALICE)
        for _ in range(500):
            if fake.requests:
                break
            await asyncio.sleep(0.01)
        [bob] = await queue(any_store, "second", to="+32470000002")
        outbox.notify()
        for _ in range(500):
            if len(fake.requests) == 2:
                break
            await asyncio.sleep(0.01)
        assert [r["body"] for r in fake.requests] == ["first", "second"]
        waiting = await any_store.get_message(alice)
        assert waiting is not None and waiting.status is MessageStatus.QUEUED
        assert waiting.error is not None and waiting.error.startswith("retrying: ")
        for _ in range(500):
            sent = await any_store.get_message(bob)
            if sent is not None and sent.status is MessageStatus.SENT:
                break
            await asyncio.sleep(0.01)
        assert sent is not None and sent.status is MessageStatus.SENT
    finally:
        await outbox.aclose()
        await server.close()
