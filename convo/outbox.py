"""The outbox: sends the replies queued in the store through the provider of their line.

A turn queues its replies in the store in the same transaction that saves the conversation
(``SessionStore.save_turn``), so a reply exists exactly once whatever crashes. The outbox
learns that a recipient (one ``(line, contact)``) has work in two ways: :meth:`Outbox.submit`
names the recipients of the replies a turn of this process just queued (the fast path: no
store read), and a sweep of ``store.due_outbound()`` (woken by :meth:`Outbox.notify`, and
every ``sweep_interval``) finds the rest: replies queued by another process or by timers,
left over from before a restart, or whose backoff is over. It reads only recipients whose
oldest pending message is due, so however many messages wait out a backoff (a provider
that is down), the others queued in the store are seen.

Order. Per recipient, replies leave in the order they were created, always: the
recipient's sender (one task per recipient in this process) does not send the message it
was told about but claims, atomically in the store, the recipient's **oldest** pending
message (``store.claim_next``), and claims again until nothing is due. So order comes from
the store, whatever the backlog, restarts and processes, and not from how the outbox heard
of the work. A message waiting out a backoff blocks the later messages of its recipient
(that is what order means) but no other recipient. Different recipients are sent
concurrently.

Sending one message: take one of its provider's send slots and a token of its bucket
(``rate_limit`` messages/second; given back when nothing was due), claim the message
(``queued`` -> ``sending``, one more attempt, leased for ``claim_lease`` seconds: two
senders never hold the same message), call ``provider.send``, then record ``sent`` (or
what the provider said) with the provider's id, segments and price, and give the slot back.

Round trips. Recording a send's outcome and claiming the recipient's next message are one
store write (``store.record_outcome``), when that next message can go at once: a token of
the bucket is at hand (``try_acquire``: never ahead of a sender waiting for one) and the
sender has not sent :data:`RUN_LENGTH` messages in a row on its slot. The message claimed
so is sent on the same slot straight away, so its lease runs only while it is sent, as
any claim's. Usually the claim finds nothing (most turns queue one reply), and that answer
is what ends the sender: one write per message instead of a write and a claim.

Outcomes are durable. Once a provider has taken a message, the record of it (``sent``,
``failed``, ``dead``, or back to ``queued`` for a retry) is the only thing that stops it
from being sent again; were that write dropped (the database locked past its timeout,
read-only, full), its claim would lapse and it would be sent a second time. So the outbox
retries each such write, with a capped backoff, until the store takes it (or the outbox is
stopped); meanwhile the sender keeps its recipient (later messages wait, in order) and the
message stays claimed. Other store errors of a sender (a claim) are not retried here: the
recipient is left to a later sweep.

Failures (:mod:`convo.retry`). A permanent ``ProviderError`` (``ProviderRejected``,
``PartialDelivery``: the provider's final answer) marks the message ``failed`` at once, with
its code; ``ContactOptedOut`` (the recipient opted out at the provider or carrier) also puts
the contact on the line's suppression list. A transient one (``retryable``: cannot connect,
timeout, 429, 5xx) sends it back to ``queued`` with ``next_attempt_at`` set by the backoff
(or the provider's ``Retry-After``), and ``error`` "retrying: ..."; the attempt count and
that time are in the store, so a restart neither forgets a backoff nor hammers a provider
that is down. Retrying ends with the message's maximum age (``RetryPolicy.max_age``, ``[outbox]
max_age``): a transient failure past it makes the message a dead letter (``dead``, its last
error kept). A message is tried at least once, however old. An operator lists dead letters
(:meth:`Outbox.dead_letters`) and sends them again (:meth:`Outbox.retry_dead`): back to
``queued``, due at once, with a fresh age window, in per-recipient order.

Send slots: each provider has its own ``concurrency`` slots (sends in flight to it), and a
message waiting out a retry's backoff holds none. So a provider that is down or throttling
only ever slows its own messages: another provider's replies never wait behind them. By
default a provider gets as many slots as hold its ``rate_limit`` when each send takes up to
``IN_FLIGHT_SECONDS`` (Little's law: in flight = rate x time per send), between 1 and
``MAX_IN_FLIGHT``: more would not send faster, and every slot is a reply a crash may send
twice (below).

The worker (the sweep loop) survives any failure: a sweep that raises, whatever the
exception, is logged and tried again after a backoff (doubling up to ``sweep_interval``), and
the loop itself runs under a :class:`~convo.supervisor.Supervisor` (:meth:`Outbox.status`
says whether it is alive). A sender that fails (the store, a record it cannot read) is
logged and leaves its recipient's messages, in order, to a later sweep.

Crash safety: a message left ``sending`` by a crash is sent again when the outbox starts
(its first sweep releases the claims of the run before, ``store.release_claims``; senders
claim nothing until then), or by another process once the claim lapses (``claim_lease``,
``[outbox] claim_lease``, after it was claimed), because we cannot know whether the provider got it.
In that narrow window (the provider accepted the request but we died before writing
``sent``) the person may get it twice: at most one reply per send slot, so a crash sends at
most ``concurrency`` replies twice per provider (``[outbox] concurrency = 1`` makes it at
most one, at one send per round trip). None of our providers' send APIs takes an
idempotency key that would let the provider drop the second one. Where the provider
carries our id (Vonage ``client-ref``), its delivery report names our message, so the
duplicate is visible in the log; where it does not, the provider's message ids differ and
the two sends can only be matched by recipient and text.

Delivery reports and send results are written by :class:`convo.delivery.DeliveryReports`
(:meth:`Outbox.apply_report`): forward only, per-part receipts counted in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from convo.delivery import DeliveryReports
from convo.exceptions import ContactOptedOut, ProviderError, StoreError
from convo.logs import conversation_scope
from convo.models import (
    ConversationKey,
    DeliveryReport,
    MessageRecord,
    MessageStatus,
    OutboundMessage,
    SendResult,
)
from convo.providers.base import SmsProvider
from convo.rate_limits import RateBucket, TokenBucket, local_bucket
from convo.retry import RetryPolicy
from convo.store.base import CLAIM_LEASE, MessageLog, SendOutcome, Suppressions
from convo.supervisor import Supervisor

__all__ = ["Outbox", "RetryPolicy", "TokenBucket"]

log = logging.getLogger("convo.outbox")

PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
DISPATCH_WINDOW = 0.005  # seconds between two sweeps of the store while notified
SWEEP_RETRY = 0.1  # seconds before the first retry of a failed sweep; doubles after each
Recipient = tuple[str, str]  # (line, contact)
T = TypeVar("T")


AT_ONCE = 0.0  # "claim the recipient's next message at once": a time long past

RUN_LENGTH = 10
"""Messages one recipient's sender sends in a row on one send slot, each claimed with the
outcome of the one before (module docstring, "Round trips"), before it queues for a slot
again: a recipient with a long backlog does not keep a slot from the others."""

OUTCOME_FIRST_RETRY = 0.1  # seconds before the first retry of a failed outcome write; doubles
OUTCOME_MAX_RETRY = 5.0

# Default send slots per provider (module docstring, "Send slots").
IN_FLIGHT_SECONDS = 0.5
MAX_IN_FLIGHT = 100


def default_concurrency(rate_limit: float) -> int:
    """Sends in flight that hold ``rate_limit``/s when each takes ``IN_FLIGHT_SECONDS``."""
    return max(1, min(MAX_IN_FLIGHT, math.ceil(rate_limit * IN_FLIGHT_SECONDS)))


class Outbox:
    """Sends queued outbound messages; see the module docstring for the contract.

    ``providers`` maps provider names to adapters; ``lines`` maps our line numbers to the
    provider name that sends for them. A record whose line has no provider is marked
    ``failed`` with an error saying so (unless there is exactly one provider).
    ``concurrency`` is the number of sends in flight to each provider (None: derived from
    its ``rate_limit``, :func:`default_concurrency`); ``claim_lease`` the seconds a claim
    keeps a message its sender's; ``buckets(name, rate)`` makes each provider's rate limit
    (:mod:`convo.rate_limits`: in this process, or shared through the store by every
    process on it). ``clock`` is the
    wall clock (UNIX seconds) backoffs, claims and ages are measured with, ``rng`` the
    backoff's jitter (a float in [0, 1)). ``on_send`` is told the provider and the result
    of every attempt: ``sent``, ``retried``, ``failed`` or ``dead`` (the metrics).
    """

    def __init__(
        self,
        store: MessageLog,
        providers: Mapping[str, SmsProvider],
        lines: Mapping[str, str],
        *,
        policy: RetryPolicy | None = None,
        sweep_interval: float = 5.0,
        concurrency: int | None = None,
        claim_lease: float = CLAIM_LEASE,
        buckets: Callable[[str, float], RateBucket] = local_bucket,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        on_send: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self._on_send = on_send or (lambda provider, result: None)
        self.providers = dict(providers)
        self.lines = dict(lines)
        self.policy = policy or RetryPolicy()
        self.sweep_interval = sweep_interval
        self._rng = rng
        self._clock = clock
        self._reports = DeliveryReports(store)
        self.claim_lease = claim_lease
        self._buckets = {name: buckets(name, p.rate_limit) for name, p in self.providers.items()}
        self.concurrency = concurrency
        self._slots: dict[str, asyncio.Semaphore] = {}  # provider name -> its sends in flight
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        # Per recipient, the task sending its messages one at a time (module docstring),
        # and the recipients told of new work while their task runs: it claims once more.
        self._active: dict[Recipient, asyncio.Task[None]] = {}
        self._poked: set[Recipient] = set()
        # Set once the first sweep released the claims of a previous run (module
        # docstring, "Crash safety"); senders claim nothing before, or they could take
        # their own fresh claims for a dead run's.
        self._released = asyncio.Event()
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
        a sweep: their recipients' senders claim them from the store, oldest first, so a
        message handed over twice, or one already sent, is sent once. (Before
        :meth:`start`, they are sent once it has started.)"""
        for message in messages:
            self._enqueue((message.line, message.to), self._route(message.line))

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
        self._poked.clear()

    # -- the operator's side -----------------------------------------------------------------

    async def dead_letters(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[MessageRecord], int]:
        """One page (1-based) of the dead letters, newest first, and how many there are.
        ValueError for a page or page size below 1."""
        return await self.store.dead_letters(page, page_size)

    async def retry_dead(self, message_ids: Iterable[str] | None = None) -> list[str]:
        """Send dead letters again: those of ``message_ids`` that are dead, or every one
        (None). Each goes back to ``queued``, due at once, with a fresh age window, and is
        sent in its recipient's order (oldest first). Returns the ids requeued, oldest
        first; ids that are not dead letters are ignored."""
        ids: Sequence[str] | None = None if message_ids is None else list(message_ids)
        requeued = await self.store.requeue_dead(self._clock(), ids)
        if requeued:
            log.info("outbox: %d dead letter(s) queued again", len(requeued))
            self.notify()
        return requeued

    async def apply_report(self, report: DeliveryReport) -> MessageRecord | None:
        """Update the message a delivery report is about; None when it is unknown to us
        (:meth:`convo.delivery.DeliveryReports.apply`)."""
        return await self._reports.apply(report)

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
        # A window of recipients with work due, oldest first: recipients in backoff are not
        # in it, so they never crowd out the others; what is not read now, the next sweep
        # reads (reading the whole backlog each time made draining n messages O(n^2)).
        if not self._released.is_set():
            released = await self.store.release_claims(self._clock())
            if released:
                log.warning("outbox: %d message(s) left sending by a previous run", released)
            self._released.set()
        window = 2 * (self.concurrency or MAX_IN_FLIGHT) * max(1, len(self.providers))
        for record in await self.store.due_outbound(self._clock(), limit=window):
            route = self._route(record.line, record.provider)
            self._enqueue((record.line, record.contact), route)
        if not self._active:
            self._idle.set()

    def _enqueue(self, recipient: Recipient, route: str) -> None:
        self._idle.clear()
        if recipient in self._active:
            self._poked.add(recipient)  # its sender claims once more before it stops
            return
        self._active[recipient] = asyncio.create_task(self._send_to(recipient, route))

    async def _send_to(self, recipient: Recipient, route: str) -> None:
        """Send ``recipient``'s due messages, oldest first, until none is due; a backoff of
        its oldest message is waited out here, holding no send slot. Lines logged meanwhile
        carry the recipient's conversation key."""
        try:
            with conversation_scope(ConversationKey(recipient[0], "sms", recipient[1])):
                await self._send_all(recipient, route)
        except Exception:
            # The store failed, or a record cannot be read: leave this recipient's messages
            # to a later sweep, in order.
            log.exception("outbox: sending to %s failed; will retry on the next sweep", recipient)
        finally:
            self._poked.discard(recipient)
            self._active.pop(recipient, None)
            if not self._active:
                self._idle.set()

    async def _send_all(self, recipient: Recipient, route: str) -> None:
        resume: float | None = None  # the end of the backoff just waited out
        await self._released.wait()
        while True:
            self._poked.discard(recipient)
            next_at = await self._send_next(recipient, route, resume)
            if next_at is None:  # nothing due
                if recipient in self._poked:
                    continue  # work was queued while the store said so
                return
            wait = next_at - self._clock()
            resume = next_at if wait > 0 else None
            if wait > 0:
                await asyncio.sleep(wait)

    async def _send_next(
        self, recipient: Recipient, route: str, resume: float | None
    ) -> float | None:
        """Claim and send ``recipient``'s oldest message if it is due, then the ones after
        it while each can go at once (module docstring, "Round trips"). None when the last
        claim found nothing due; else when to claim again: :data:`AT_ONCE`, or the end of
        a backoff."""
        line, contact = recipient
        bucket = self._buckets.get(route)
        async with self._slot(route):
            if bucket is not None:
                await bucket.acquire()  # before the claim: the claim's lease is for sending
            # After a backoff we set, its end: a wall clock may lag the loop's timer a bit.
            now = self._clock() if resume is None else max(self._clock(), resume)
            record = await self.store.claim_next(line, contact, now, lease=self.claim_lease)
            if record is None:
                if bucket is not None:
                    bucket.refund()
                return None
            sent = 0  # messages sent in a row on this slot
            while True:
                provider = self.provider_for(record)
                if provider is None:
                    error = f"no provider for line {record.line}"
                    failed = SendOutcome(
                        record.id, MessageStatus.FAILED, record.provider, error=error
                    )
                    await self._record(failed, None)
                    return AT_ONCE
                if provider.name != route:
                    break
                result = await _call(provider, record)
                sent += 1
                # The next message is claimed with this one's outcome, in one store write,
                # when it can be sent at once on this slot: a token at hand, and this slot
                # not held too long by one recipient.
                take = sent < RUN_LENGTH and (bucket is None or bucket.try_acquire())
                next_at, claimed = await self._settle(
                    record, provider, result, self._clock() if take else None
                )
                if claimed is None:
                    if take and bucket is not None:
                        bucket.refund()
                    return next_at
                record = claimed
        # The record names another provider than its line's: send under that one's slot.
        if bucket is not None:
            bucket.refund()
        async with self._slot(provider.name):
            await self._buckets[provider.name].acquire()
            result = await _call(provider, record)
        next_at, _ = await self._settle(record, provider, result, None)
        return next_at

    async def _settle(
        self,
        record: MessageRecord,
        provider: SmsProvider,
        outcome: SendResult | ProviderError,
        claim_at: float | None,
    ) -> tuple[float | None, MessageRecord | None]:
        """Record what came of sending the claimed ``record`` and, with ``claim_at`` and a
        final outcome, claim the recipient's next message in the same write. Returns when
        to claim again (:data:`AT_ONCE`, the end of a backoff, or None: the claim found
        nothing due) and the message claimed, if any."""
        if isinstance(outcome, SendResult):
            sent = SendOutcome(
                record.id,
                outcome.status,
                outcome.provider,
                outcome.provider_message_id,
                outcome.segments,
                outcome.price,
            )
            updated, claimed = await self._record(sent, claim_at)
            if updated is not None:
                await self._reports.recorded_send(updated)
            self._on_send(provider.name, "sent")
            return _then(claim_at, claimed)
        error = str(outcome)
        if not outcome.retryable:
            self._on_send(provider.name, "failed")
            log.warning("message %s to %s failed: %s", record.id, record.contact, error)
            failed = SendOutcome(record.id, MessageStatus.FAILED, provider.name, error=error)
            _, claimed = await self._record(failed, claim_at)
            if isinstance(outcome, ContactOptedOut) and isinstance(self.store, Suppressions):
                # The provider will refuse every text to them: stop queueing any, as a STOP
                # sent to us would (they opt in again by texting START).
                log.warning("%s opted out of %s at %s", record.contact, record.line, provider.name)
                await self.store.set_suppressed(record.line, record.contact, True)
            return _then(claim_at, claimed)
        # Not before the claim (next_attempt_at is its time plus the lease): a clock that
        # stands still in a test still moves on from one backoff to the next.
        now = max(self._clock(), record.next_attempt_at - self.claim_lease)
        retry_at = self.policy.next_attempt(record, outcome, now, self._rng)
        if retry_at is None:
            self._on_send(provider.name, "dead")
            log.warning(
                "message %s to %s is a dead letter: %d attempts in %.0f s failed; last: %s",
                *(record.id, record.contact, record.attempts, now - record.queued_since, error),
            )
            dead = SendOutcome(record.id, MessageStatus.DEAD, provider.name, error=error)
            _, claimed = await self._record(dead, claim_at)
            return _then(claim_at, claimed)
        self._on_send(provider.name, "retried")
        log.info(
            "message %s: %s; attempt %d, next in %.2fs",
            *(record.id, error, record.attempts, retry_at - now),
        )
        await _until_stored(
            f"the retry of {record.id}",
            lambda: self.store.defer_message(record.id, until=retry_at, error=f"retrying: {error}"),
        )
        return retry_at, None  # the recipient's next message waits behind this one

    async def _record(
        self, outcome: SendOutcome, claim_at: float | None
    ) -> tuple[MessageRecord | None, MessageRecord | None]:
        """``store.record_outcome``, retried until the store takes it (module docstring,
        "Outcomes are durable")."""
        return await _until_stored(
            f"the outcome of sending {outcome.message_id}",
            lambda: self.store.record_outcome(outcome, claim_at=claim_at, lease=self.claim_lease),
        )

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
            provider = self.providers.get(route)
            size = self.concurrency
            if size is None:
                size = default_concurrency(provider.rate_limit) if provider else 1
            slots = self._slots[route] = asyncio.Semaphore(size)
        return slots


def _then(
    claim_at: float | None, claimed: MessageRecord | None
) -> tuple[float | None, MessageRecord | None]:
    """What :meth:`Outbox._settle` returns after a final outcome: claim again at once when
    no claim came with it; else the claimed message, or None when nothing was due."""
    if claim_at is None:
        return AT_ONCE, None
    return (AT_ONCE if claimed is not None else None), claimed


async def _until_stored(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """``write()``'s result once it succeeds; a StoreError is retried after a backoff
    (logged when it first fails and when it finally succeeds, not at each retry)."""
    delay = OUTCOME_FIRST_RETRY
    failures = 0
    while True:
        try:
            result = await write()
        except StoreError as exc:
            if failures == 0:
                log.warning("outbox: cannot record %s (%s); retrying until stored", what, exc)
            failures += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, OUTCOME_MAX_RETRY)
            continue
        if failures:
            log.info("outbox: recorded %s after %d failed attempt(s)", what, failures)
        return result


async def _call(provider: SmsProvider, record: MessageRecord) -> SendResult | ProviderError:
    """Send ``record`` through ``provider``: its result, or the error it failed with."""
    try:
        return await provider.send(_message(record))
    except ProviderError as exc:
        return exc


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
