"""The outbox: sends the replies queued in the store through the provider of their line.

A turn queues its replies in the store in the same transaction that saves the conversation
(``SessionStore.save_turn``), so a reply exists exactly once whatever crashes. The outbox
learns of them in two ways: :meth:`Outbox.submit` hands it the replies a turn of this
process just queued (the fast path: no store read), and a sweep of
``store.pending_outbound()`` (woken by :meth:`Outbox.notify`, and every ``sweep_interval``)
finds the rest: replies queued by another process, left over from before a restart, or
queued without a hand-over. Each id is queued in memory once; the store has the last word.

Sending one message: take one of its provider's send slots, claim it (one atomic store
update to ``sending``, forward only: a message another sender finished meanwhile stays as it
is and is skipped), wait for the provider's token bucket (``rate_limit`` messages/second),
call ``provider.send``, give the slot back, then record ``sent`` (or what the provider said)
with the provider's id, segments and price. ``RateLimited`` (honouring ``retry_after``) and
``ProviderUnavailable`` are retried with exponential backoff and full jitter up to
``max_attempts``; any other ``ProviderError`` (``ProviderRejected``, ``PartialDelivery``)
marks it ``failed`` at once.
Messages to one recipient go out one at a time, oldest first, so a turn's replies arrive in
order; different recipients are sent concurrently.

Send slots: each provider has its own ``concurrency`` slots (sends in flight to it), and a
message waiting out a retry's backoff holds none. So a provider that is down or throttling
only ever slows its own messages: another provider's replies never wait behind them.

The worker (the sweep loop) survives any failure: a sweep that raises, whatever the
exception, is logged and tried again after a backoff (doubling up to ``sweep_interval``), and
the loop itself runs under a :class:`~convo.supervisor.Supervisor` (:meth:`Outbox.status`
says whether it is alive). A failed send of one recipient's messages is logged and leaves
them, in order, to a later sweep.

Crash safety: a message left ``sending`` by a crash is sent again on start, because we
cannot know whether the provider got it. In that narrow window (the provider accepted the
request but we died before writing ``sent``) the person may get it twice. Where the provider
carries our id (Vonage ``client-ref``), its delivery report names our message, so the
duplicate is visible in the log; where it does not, the provider's message ids differ and
the two sends can only be matched by recipient and text. Attempt counts live in memory, so a
restart gives a failing message a fresh set of attempts.

Delivery reports (:meth:`apply_report`) find the message by ``client_ref`` (our id) or by
``(provider, provider_message_id)``, and never move a status backwards (a final status stays
final; ``delivered`` is not undone by a late ``sent``): every status change but a retry's
requeue is ``update_message(..., forward_only=True)``, atomic in the store.

A provider that reports each part of a long text on its own (Vonage: ``per_part``
reports) never has a part's id or price written over the message's (the first part's id
and the total price, from the send). One part ``failed``/``undelivered`` makes the message
so at once, with that part's error; it becomes ``delivered`` only when as many distinct
parts as it has ``segments`` are delivered, and stays ``sent`` until then. The delivered
parts are kept in the store (``add_delivered_part``), so receipts may reach different
processes or arrive across a restart. A part delivered before the send's result is recorded
(the part count is only known then) is settled when it is, by the process that sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from convo.exceptions import ProviderError, RateLimited
from convo.models import (
    DeliveryReport,
    Direction,
    MessageRecord,
    MessageStatus,
    OutboundMessage,
    SendResult,
)
from convo.providers.base import SmsProvider
from convo.store.base import MessageLog
from convo.supervisor import Supervisor

log = logging.getLogger("convo.outbox")

PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
DISPATCH_WINDOW = 0.005  # seconds between two sweeps of the store while notified
SWEEP_RETRY = 0.1  # seconds before the first retry of a failed sweep; doubles after each
_FAILED_PART = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``max(1, rate)``; ``acquire`` waits for one."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate limit must be greater than 0, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()  # first come, first served

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt ``n`` (1-based) failed -> wait
    ``uniform(0, min(max_delay, base_delay * 2**(n-1)))``; a ``retry_after`` is honoured."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, error: ProviderError, rng: Callable[[], float]) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after
        return rng() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))


class Outbox:
    """Sends queued outbound messages; see the module docstring for the contract.

    ``providers`` maps provider names to adapters; ``lines`` maps our line numbers to the
    provider name that sends for them. A record whose line has no provider is marked
    ``failed`` with an error saying so (unless there is exactly one provider).
    ``concurrency`` is the number of sends in flight to each provider.
    """

    def __init__(
        self,
        store: MessageLog,
        providers: Mapping[str, SmsProvider],
        lines: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
        sweep_interval: float = 5.0,
        concurrency: int = 100,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.lines = dict(lines)
        self.policy = policy or RetryPolicy()
        self.sweep_interval = sweep_interval
        self._rng = rng
        self._buckets = {name: TokenBucket(p.rate_limit) for name, p in self.providers.items()}
        self.concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}  # provider name -> its sends in flight
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        # Per recipient (line, contact): (id, provider name) waiting, oldest first, and the
        # task sending them one at a time (so a turn's replies arrive in order).
        self._queues: dict[tuple[str, str], deque[tuple[str, str]]] = {}
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._known: set[str] = set()  # ids in a queue or being sent here
        # Messages with parts delivered before their send was recorded -> how many: the
        # count is checked again then (module docstring).
        self._early_parts: dict[str, int] = {}
        self._supervisor: Supervisor | None = None  # runs the sweep loop once started

    def __repr__(self) -> str:
        return f"<Outbox providers={sorted(self.providers)} active={len(self._active)}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; its first sweep picks up what a previous process left. It may
        be stopped (:meth:`aclose`) from another task than the one that started it."""
        if self._supervisor is None:
            self._supervisor = Supervisor()
            self._supervisor.start()
            self._supervisor.run("outbox", self._run)

    def status(self) -> dict[str, bool]:
        """``{"outbox": alive}``: whether the worker runs (False before start, after close,
        and while it waits to be restarted after a failure)."""
        alive = self._supervisor is not None and self._supervisor.status().get("outbox", False)
        return {"outbox": alive}

    def notify(self) -> None:
        """Wake the worker: messages were queued in the store; sweep it soon."""
        self._wake.set()

    def submit(self, messages: Iterable[OutboundMessage]) -> None:
        """Send ``messages``, just queued in the store by this process, without waiting for
        a sweep. Ids already queued or being sent here are ignored."""
        for message in messages:
            self._enqueue((message.line, message.to), message.id, self._route(message.line))

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is pending or being sent. True when
        the outbox emptied; False leaves the rest queued for the next start."""
        deadline = time.monotonic() + timeout
        while True:
            self._idle.clear()
            if not self._active and not await self.store.pending_outbound(limit=1):
                return True
            self.notify()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), min(remaining, 0.2))

    async def aclose(self) -> None:
        """Stop the worker and any send in progress (what was not sent stays queued)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await supervisor.aclose()
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._active.clear()

    # -- delivery reports --------------------------------------------------------------------

    async def apply_report(self, report: DeliveryReport) -> MessageRecord | None:
        """Update the message a delivery report is about; None when it is unknown to us."""
        record = None
        if report.client_ref:
            record = await self.store.get_message(report.client_ref)
            if record is not None and record.direction is not Direction.OUTBOUND:
                record = None
        if record is None and report.provider_message_id:
            record = await self.store.find_message(report.provider, report.provider_message_id)
        if record is None:
            log.info(
                "%s: delivery report for unknown message %s",
                report.provider,
                report.provider_message_id or report.client_ref,
            )
            return None
        error = None
        if report.error_code or report.error_text:
            error = " ".join(x for x in (report.error_code, report.error_text) if x)
        if report.per_part:
            return await self._apply_part(record, report, error)
        return await self._advance(
            record,
            report.status,
            provider_message_id=report.provider_message_id or None,
            price=report.price,
            error=error,
        )

    async def _apply_part(
        self, record: MessageRecord, report: DeliveryReport, error: str | None
    ) -> MessageRecord | None:
        """One part's receipt: never the part's id or price over the message's; final
        only from all the parts (module docstring)."""
        if record.status.final:
            return record  # a final status stays, and so does its error
        if report.status in _FAILED_PART:
            return await self._advance(record, report.status, error=error)
        if report.status is MessageStatus.DELIVERED:
            delivered = await self.store.add_delivered_part(record.id, report.provider_message_id)
            if record.status is not MessageStatus.SENT:
                self._early_parts[record.id] = delivered  # the part count comes with the send
                return record
            return await self._settle(record, delivered)
        if error is not None:  # no verdict yet (accepted, buffered, unknown): keep its error
            return await self.store.update_message(record.id, error=error)
        return record

    async def _settle(self, record: MessageRecord, delivered: int) -> MessageRecord | None:
        """``delivered`` once every part of the ``sent`` message is; else as it is."""
        if delivered < record.segments:
            return record  # parts outstanding: stays sent
        return await self._advance(record, MessageStatus.DELIVERED)

    async def _advance(
        self,
        record: MessageRecord,
        status: MessageStatus,
        *,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        price: float | None = None,
        error: str | None = None,
    ) -> MessageRecord | None:
        """Set ``status`` only if it moves the message forward (a final status stays);
        the other fields are written in any case."""
        return await self.store.update_message(
            record.id,
            status=status,
            provider=provider,
            provider_message_id=provider_message_id,
            segments=segments,
            price=price,
            error=error,
            forward_only=True,
        )

    # -- the worker --------------------------------------------------------------------------

    async def _run(self) -> None:
        retry = SWEEP_RETRY
        while True:
            self._wake.clear()
            try:
                await self._sweep()
            except Exception:
                # Whatever broke (the store, a record it cannot read, a bug), the worker
                # lives on. Wake-ups wait too, so a broken store is not read in a tight loop.
                delay = min(retry, self.sweep_interval)
                log.exception("outbox sweep failed; trying again in %.2fs", delay)
                await asyncio.sleep(delay)
                retry = delay * 2
                continue
            retry = SWEEP_RETRY
            if self._active:
                # Under load many callers notify at once: gather those wake-ups for a
                # moment, so one store read serves them all.
                await asyncio.sleep(DISPATCH_WINDOW)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_interval)

    async def _sweep(self) -> None:
        # Only a window of the oldest messages: reading the whole backlog on every sweep
        # made draining n messages cost O(n^2). What is not read now, the next sweep reads.
        window = 2 * self.concurrency * max(1, len(self.providers))
        pending = await self.store.pending_outbound(limit=window)
        for record in pending:
            route = self._route(record.line, record.provider)
            self._enqueue((record.line, record.contact), record.id, route)
        if not self._active:
            self._idle.set()

    def _enqueue(self, recipient: tuple[str, str], message_id: str, route: str) -> None:
        if message_id in self._known:
            return
        self._known.add(message_id)
        self._idle.clear()
        self._queues.setdefault(recipient, deque()).append((message_id, route))
        if recipient not in self._active:
            task = asyncio.create_task(self._send_queue(recipient))
            self._active[recipient] = task

    async def _send_queue(self, recipient: tuple[str, str]) -> None:
        queue = self._queues[recipient]
        try:
            while queue:
                await self._send_one(*queue[0])
                self._known.discard(queue.popleft()[0])
        except Exception:
            # The store failed, or a record cannot be read: leave this recipient's messages
            # to a later sweep, in order.
            log.exception("outbox: sending to %s failed; will retry on the next sweep", recipient)
        finally:
            for message_id, _ in queue:
                self._known.discard(message_id)
            del self._queues[recipient]
            self._active.pop(recipient, None)
            if not self._active:
                self._idle.set()

    def provider_for(self, record: MessageRecord) -> SmsProvider | None:
        return self.providers.get(self._route(record.line, record.provider))

    def _route(self, line: str, provider: str = "") -> str:
        """The name of the provider that sends for ``line`` (``provider`` when the message
        names one), or "" when there is none."""
        name = provider or self.lines.get(line)
        if name is None and len(self.providers) == 1:
            name = next(iter(self.providers))
        return name or ""

    def _slot(self, route: str) -> asyncio.Semaphore:
        slots = self._slots.get(route)
        if slots is None:
            slots = self._slots[route] = asyncio.Semaphore(self.concurrency)
        return slots

    async def _send_one(self, message_id: str, route: str) -> None:
        attempt = 1
        while True:
            async with self._slot(route):
                # Claim it in one atomic, forward-only step: a message finished meanwhile (a
                # report, another process) stays as it is, and is never sent twice.
                record = await self.store.update_message(
                    message_id, status=MessageStatus.SENDING, forward_only=True
                )
                if record is None or record.status is not MessageStatus.SENDING:
                    return
                provider = self.provider_for(record)
                if provider is None:
                    error = f"no provider for line {record.line}"
                    await self._advance(record, MessageStatus.FAILED, error=error)
                    return
                if provider.name != route:
                    # The record names another provider than the one it was queued for:
                    # claim it again (a no-op) under that provider's slots.
                    route = provider.name
                    continue
                await self._buckets[provider.name].acquire()
                try:
                    outcome: SendResult | ProviderError = await provider.send(_message(record))
                except ProviderError as exc:
                    outcome = exc
            # Out of the slot: a message waiting out a backoff holds no slot of its provider.
            if isinstance(outcome, SendResult):
                await self._record(record, outcome)
                return
            if not outcome.retryable or attempt == self.policy.max_attempts:
                log.warning("message %s to %s failed: %s", message_id, record.contact, outcome)
                error = str(outcome)
                await self._advance(
                    record, MessageStatus.FAILED, provider=provider.name, error=error
                )
                return
            delay = self.policy.delay(attempt, outcome, self._rng)
            log.info("message %s: %s; retry %d in %.2fs", message_id, outcome, attempt, delay)
            await self.store.update_message(
                message_id, status=MessageStatus.QUEUED, error=f"retrying: {outcome}"
            )
            await asyncio.sleep(delay)
            attempt += 1

    async def _record(self, record: MessageRecord, result: SendResult) -> None:
        updated = await self._advance(
            record,
            result.status,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            segments=result.segments,
            price=result.price,
        )
        early = self._early_parts.pop(record.id, None)  # parts delivered before the send
        if updated is not None and early is not None and updated.status is MessageStatus.SENT:
            await self._settle(updated, early)


def _message(record: MessageRecord) -> OutboundMessage:
    """The outbound message a queued log line stands for."""
    return OutboundMessage(
        line=record.line,
        to=record.contact,
        text=record.text,
        channel=record.channel,
        media_urls=record.media_urls,
        id=record.id,
        created_at=record.created_at,
        metadata=record.metadata,
    )
