"""The outbox: sends the replies queued in the store through the provider of their line.

A turn queues its replies in the store in the same transaction that saves the conversation
(``SessionStore.save_turn``); the outbox only ever reads them from there, so a reply exists
exactly once whatever crashes. One worker loop is woken by :meth:`Outbox.notify` (after a
turn) and by a periodic sweep of ``store.pending_outbound()`` (for replies queued by another
process, or left over from before a restart).

Sending one message: re-read it (another sender may have finished it), mark it ``sending``,
wait for the provider's token bucket (``rate_limit`` messages/second), call
``provider.send``, then mark it ``sent`` (or what the provider said) with the provider's id,
segments and price. ``RateLimited`` (honouring ``retry_after``) and ``ProviderUnavailable``
are retried with exponential backoff and full jitter up to ``max_attempts``; any other
``ProviderError`` (``ProviderRejected``, ``PartialDelivery``) marks it ``failed`` at once.
Messages to one recipient go out one at a time, oldest first, so a turn's replies arrive in
order; different recipients are sent concurrently.

Crash safety: a message left ``sending`` by a crash is sent again on start, because we
cannot know whether the provider got it. In that narrow window (the provider accepted the
request but we died before writing ``sent``) the person may get it twice. Where the provider
carries our id (Vonage ``client-ref``), its delivery report names our message, so the
duplicate is visible in the log; where it does not, the provider's message ids differ and
the two sends can only be matched by recipient and text. Attempt counts live in memory, so a
restart gives a failing message a fresh set of attempts.

Delivery reports (:meth:`apply_report`) find the message by ``client_ref`` (our id) or by
``(provider, provider_message_id)``, and never move a status backwards (a final status stays
final; ``delivered`` is not undone by a late ``sent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from convo.exceptions import ConvoError, ProviderError, RateLimited
from convo.models import (
    ConversationKey,
    DeliveryReport,
    Direction,
    MessageRecord,
    MessageStatus,
    OutboundMessage,
    SendResult,
)
from convo.providers.base import SmsProvider
from convo.store.base import MessageLog
from convo.store.locks import LocalLocks

log = logging.getLogger("convo.outbox")

# Order of the lifecycle: an update never moves a message to a lower rank.
RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
}
PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
DISPATCH_WINDOW = 0.005  # seconds between two reads of the outbox while senders are busy


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
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._active: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Per conversation, not one global lock: a global one made every status update
        # queue behind all other store calls in flight (it capped sending near 175/s).
        self._status_locks = LocalLocks()
        self._worker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Outbox providers={sorted(self.providers)} active={len(self._active)}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker; its first sweep picks up what a previous process left."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="convo-outbox")

    def notify(self) -> None:
        """Wake the worker: new messages were queued."""
        self._wake.set()

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
        tasks = [t for t in (self._worker, *self._active.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
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
        return await self._advance(
            record,
            report.status,
            provider_message_id=report.provider_message_id or None,
            price=report.price,
            error=error,
        )

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
        message_id = record.id
        key = ConversationKey(record.line, record.channel, record.contact)
        async with self._status_locks.lock(key):
            current = await self.store.get_message(message_id)
            if current is None:
                return None
            forward = not current.status.final and RANK.get(status, 0) > RANK.get(current.status, 0)
            return await self.store.update_message(
                message_id,
                status=status if forward else None,
                provider=provider,
                provider_message_id=provider_message_id,
                segments=segments,
                price=price,
                error=error,
            )

    # -- the worker --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._dispatch()
            except ConvoError:
                log.exception("outbox sweep failed; trying again in %ss", self.sweep_interval)
            if self._active:
                # Under load every finished send wakes the worker: gather those wake-ups
                # for a moment, so one store read serves many of them.
                await asyncio.sleep(DISPATCH_WINDOW)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_interval)

    async def _dispatch(self) -> None:
        # Read the store only when a sender is free, and only a window of the oldest
        # messages: re-reading the whole backlog after every finished send made draining a
        # backlog of n messages cost O(n^2) (2000 queued replies took 27 s to send, not 3 s).
        free = self.concurrency - len(self._active)
        if free <= 0:
            return  # every sender is busy; the next one to finish wakes the worker
        pending = await self.store.pending_outbound(limit=2 * self.concurrency)
        queues: dict[tuple[str, str], list[str]] = {}
        for record in pending:
            queues.setdefault((record.line, record.contact), []).append(record.id)
        for recipient, ids in queues.items():
            if free <= 0:
                break
            if recipient not in self._active:
                task = asyncio.create_task(self._send_queue(recipient, ids))
                self._active[recipient] = task
                free -= 1
        if not self._active:
            self._idle.set()

    async def _send_queue(self, recipient: tuple[str, str], ids: list[str]) -> None:
        try:
            async with self._slots:
                for message_id in ids:
                    await self._send_one(message_id)
        except ConvoError:
            log.exception("outbox: sending to %s failed; will retry on the next sweep", recipient)
        finally:
            self._active.pop(recipient, None)
            self.notify()  # messages queued for them meanwhile; or the outbox is idle now

    def provider_for(self, record: MessageRecord) -> SmsProvider | None:
        name = record.provider or self.lines.get(record.line)
        if name is None and len(self.providers) == 1:
            name = next(iter(self.providers))
        return self.providers.get(name) if name else None

    async def _send_one(self, message_id: str) -> None:
        record = await self.store.get_message(message_id)
        if record is None or record.status not in PENDING:
            return  # sent meanwhile (a report, another process): never send it twice
        provider = self.provider_for(record)
        if provider is None:
            await self.store.update_message(
                message_id,
                status=MessageStatus.FAILED,
                error=f"no provider for line {record.line}",
            )
            return
        message = OutboundMessage(
            line=record.line,
            to=record.contact,
            text=record.text,
            channel=record.channel,
            media_urls=record.media_urls,
            id=record.id,
            created_at=record.created_at,
        )
        for attempt in range(1, self.policy.max_attempts + 1):
            await self.store.update_message(
                message_id, status=MessageStatus.SENDING, provider=provider.name
            )
            await self._buckets[provider.name].acquire()
            try:
                result = await provider.send(message)
            except ProviderError as exc:
                if not exc.retryable or attempt == self.policy.max_attempts:
                    log.warning("message %s to %s failed: %s", message_id, record.contact, exc)
                    await self._advance(record, MessageStatus.FAILED, error=str(exc))
                    return
                delay = self.policy.delay(attempt, exc, self._rng)
                log.info("message %s: %s; retry %d in %.2fs", message_id, exc, attempt, delay)
                await self.store.update_message(
                    message_id, status=MessageStatus.QUEUED, error=f"retrying: {exc}"
                )
                await asyncio.sleep(delay)
            else:
                await self._record(record, result)
                return

    async def _record(self, record: MessageRecord, result: SendResult) -> None:
        await self._advance(
            record,
            result.status,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            segments=result.segments,
            price=result.price,
        )
