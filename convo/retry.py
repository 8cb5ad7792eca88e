"""When the outbox tries a failed send again, and when it stops: the retry policy.

A transient failure (a ``ProviderError`` whose ``retryable`` is true: the provider cannot be
reached, timed out, throttled us or answered 5xx) is tried again after a backoff:
exponential (``base_delay * 2**(n-1)`` after the ``n``-th attempt), capped at ``max_delay``,
with full jitter, unless the provider said how long to wait (``Retry-After``, which wins,
capped at :data:`MAX_RETRY_AFTER`). Retrying ends with the message's **maximum age**
(``max_age``, 24 hours by default: the window in which providers themselves keep retrying
a message): a transient failure at or past that age makes the message a dead letter, and
no attempt is ever scheduled past it. The age counts from the message's creation, or from
the last time an operator sent it again (``MessageRecord.queued_since``). Permanent
failures are not this module's business: they fail the message at once.

:func:`parse_retry_after` reads a ``Retry-After`` header value: an integer number of
seconds or an HTTP date. Anything else (garbage, a negative number, ``inf``, ``nan``) gives
None, and the caller falls back to its backoff.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convo.exceptions import ProviderError
from convo.models import MessageRecord

if TYPE_CHECKING:
    from convo.config import OutboxSettings

log = logging.getLogger("convo.outbox")

DEFAULT_MAX_AGE = 24 * 3600.0
MAX_RETRY_AFTER = 300.0
"""The longest ``Retry-After`` honoured, in seconds: a provider asking for more (or a
broken proxy saying "retry in a year") gets this."""

_SECONDS = re.compile(r"\d+(?:\.\d+)?")  # RFC 9110 says digits; a decimal is harmless


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value at wall-clock time ``now``: a number of
    seconds, or an HTTP date (a date already past means at once, 0). At most
    :data:`MAX_RETRY_AFTER`. None for anything else."""
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None  # not an HTTP date: those are always GMT
    seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff and maximum age of transient send failures (module docstring).

    ``max_attempts`` is deprecated and ignored: the maximum age ends retrying (a count of
    attempts cannot say how long a provider outage lasts). It is still accepted, so
    existing ``[outbox] max_attempts`` settings keep working; giving one logs a warning.
    """

    max_attempts: int | None = None
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_age: float = DEFAULT_MAX_AGE

    @classmethod
    def from_settings(cls, settings: OutboxSettings) -> RetryPolicy:
        """The policy ``[outbox]`` of convo.toml describes."""
        return cls(settings.max_attempts, settings.base_delay, settings.max_delay, settings.max_age)

    def __post_init__(self) -> None:
        if not (self.max_age > 0 and math.isfinite(self.max_age)):
            raise ValueError(f"max_age must be a finite time above 0 seconds, got {self.max_age}")
        if self.max_attempts is not None:
            log.warning(
                "[outbox] max_attempts is deprecated and ignored: failed sends are retried "
                "until the message is max_age old (%.0f s), then dead-lettered",
                self.max_age,
            )

    def delay(self, attempt: int, error: ProviderError, rng: Callable[[], float]) -> float:
        """Seconds to wait after attempt ``attempt`` (1-based) failed with ``error``: the
        provider's ``retry_after`` when it gave one (capped), else ``uniform(0,
        min(max_delay, base_delay * 2**(attempt-1)))`` with ``rng()`` in [0, 1)."""
        retry_after: float | None = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(0.0, retry_after), MAX_RETRY_AFTER)
        exponent = min(max(attempt - 1, 0), 64)  # 2**64 * base_delay is past any cap
        return rng() * min(self.max_delay, self.base_delay * 2.0**exponent)

    def deadline(self, record: MessageRecord) -> float:
        """When ``record`` reaches its maximum age (wall clock)."""
        return record.queued_since + self.max_age

    def next_attempt(
        self, record: MessageRecord, error: ProviderError, now: float, rng: Callable[[], float]
    ) -> float | None:
        """When to try ``record`` again after its latest attempt (``record.attempts``)
        failed with the transient ``error`` at ``now``; None when it is past its maximum
        age (a dead letter). Never later than the maximum age."""
        deadline = self.deadline(record)
        if now >= deadline:
            return None
        return min(now + self.delay(record.attempts, error, rng), deadline)
