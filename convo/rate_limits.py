"""Provider rate limits: a token bucket per provider, in one process or shared by all.

The outbox takes a token of its provider's bucket before each send (``rate_limit``
messages per second, bursts up to :data:`BURST_SECONDS` of that rate, at least one) and
gives it back when nothing was due. Two buckets implement :class:`RateBucket`:

* :class:`TokenBucket`, in this process's memory: the limit of one process (memory and
  SQLite stores, which one process holds);
* :class:`SharedTokenBucket`, over a store that keeps the bucket for every process on it
  (:class:`~convo.store.base.SharedRateLimits`, PostgreSQL: one row per provider updated in
  one atomic statement on the database's clock), so the provider's limit holds for all the
  processes and machines together, not for each.

A shared bucket does not ask the store for every send: it takes a *batch* of tokens at a
time, enough for :data:`BATCH_WINDOW` seconds at the bucket's rate (1 below 20/s), and uses
them up locally; tokens of a batch not used within that window are dropped, not kept for a
later burst. The store counts a batch as spent when it hands it out, so the processes
together never exceed the limit; they may stay a little under it.

:func:`bucket_factory` picks the kind for a store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from convo.store.base import SharedRateLimits

BURST_SECONDS = 0.2
"""A bucket holds at most this many seconds of its rate (at least one token): after a
quiet spell the outbox sends that burst at once, then at the rate. A provider counts its
limit over windows of its own; a whole second of rate on top of the steady rate would
double what it sees in one of them and draw 429s, so the burst stays well below it."""


def burst(rate: float) -> float:
    """The most tokens a bucket of ``rate`` tokens a second holds (:data:`BURST_SECONDS`)."""
    return max(1.0, rate * BURST_SECONDS)


BATCH_WINDOW = 0.05
"""Seconds of a shared bucket's rate that one process takes from the store at a time."""


class RateBucket(Protocol):
    """What the outbox needs of a rate limit."""

    async def acquire(self) -> None:
        """Wait for a token and take it."""

    def try_acquire(self) -> bool:
        """Take a token if one is at hand now and nobody waits for one; never waits."""

    def refund(self) -> None:
        """Give back a token taken for a send that did not happen."""


class TokenBucket:
    """``rate`` tokens per second, bursts up to :func:`burst` of them; ``acquire`` waits
    for one."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate limit must be greater than 0, got {rate}")
        self.rate = rate
        self.capacity = burst(rate)
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()  # first come, first served

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                if self._take():
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def try_acquire(self) -> bool:
        """A token if one is at hand and nobody waits for one (they came first)."""
        return not self._lock.locked() and self._take()

    def refund(self) -> None:
        """Give back a token taken for a send that did not happen."""
        self._tokens = min(self.capacity, self._tokens + 1.0)

    def _take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class SharedTokenBucket:
    """Bucket ``name`` of ``limits``, ``rate`` tokens per second for every process on the
    store together (module docstring). ``acquire`` waits its turn: in this process first
    come, first served; across processes in the order the store handed out their batches."""

    def __init__(
        self,
        limits: SharedRateLimits,
        name: str,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate limit must be greater than 0, got {rate}")
        self.limits = limits
        self.name = name
        self.rate = rate
        self.batch = max(1, int(rate * BATCH_WINDOW))
        self._clock = clock
        self._tokens = 0  # left of the batch in hand
        self._expires = 0.0  # when they lapse (self._clock)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            if self._tokens >= 1 and self._clock() < self._expires:
                self._tokens -= 1
                return
            wait = await self.limits.take_tokens(self.name, self.rate, self.batch)
            if wait > 0:
                await asyncio.sleep(wait)  # the batch is ours from then on
            self._tokens = self.batch - 1
            self._expires = self._clock() + BATCH_WINDOW

    def try_acquire(self) -> bool:
        """A token of the batch in hand, if there is one and nobody waits for one."""
        if self._lock.locked() or self._tokens < 1 or self._clock() >= self._expires:
            return False
        self._tokens -= 1
        return True

    def refund(self) -> None:
        """Keep the token for this process's next send (within the batch's window)."""
        if self._clock() < self._expires:
            self._tokens = min(self.batch, self._tokens + 1)


def local_bucket(name: str, rate: float) -> RateBucket:
    """Provider ``name``'s bucket in this process."""
    return TokenBucket(rate)


def bucket_factory(store: object) -> Callable[[str, float], RateBucket]:
    """How the outbox makes each provider's bucket (name, rate) on ``store``: shared when
    the store keeps rate limits for several processes, else in this process."""
    if not isinstance(store, SharedRateLimits):
        return local_bucket
    limits = store

    def shared(name: str, rate: float) -> RateBucket:
        return SharedTokenBucket(limits, name, rate)

    return shared
