"""The retry policy: capped exponential backoff with jitter, Retry-After, the maximum age."""

from __future__ import annotations

import dataclasses

import pytest

from convo.exceptions import ProviderUnavailable, RateLimited
from convo.models import MessageRecord, OutboundMessage
from convo.retry import MAX_RETRY_AFTER, RetryPolicy, parse_retry_after


def record(created_at: float, attempts: int, requeued_at: float | None = None) -> MessageRecord:
    message = OutboundMessage("+32460000101", "+32470000001", "hi", created_at=created_at)
    queued = MessageRecord.outbound(message)
    return dataclasses.replace(queued, attempts=attempts, requeued_at=requeued_at)


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    err = ProviderUnavailable("down")
    assert [policy.delay(n, err, lambda: 1.0) for n in (1, 2, 3, 4, 500)] == [1, 2, 4, 5, 5]
    assert policy.delay(3, err, lambda: 0.5) == 2.0


def test_a_providers_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert policy.delay(1, RateLimited("slow", retry_after=7.5), lambda: 1.0) == 7.5
    assert policy.delay(1, ProviderUnavailable("503", retry_after=20), lambda: 1.0) == 20
    assert policy.delay(1, RateLimited("slow", retry_after=1e9), lambda: 1.0) == MAX_RETRY_AFTER
    assert policy.delay(2, RateLimited("slow"), lambda: 1.0) == 2.0


def test_retrying_ends_at_the_maximum_age_counted_from_the_last_requeue() -> None:
    policy = RetryPolicy(base_delay=60.0, max_delay=60.0, max_age=3600)
    err = ProviderUnavailable("down")
    young = record(created_at=1000.0, attempts=3)
    assert policy.next_attempt(young, err, 1100.0, lambda: 1.0) == 1160.0
    assert policy.next_attempt(young, err, 4590.0, lambda: 1.0) == 4600.0  # never past it
    assert policy.next_attempt(young, err, 4600.0, lambda: 1.0) is None  # a dead letter
    requeued = record(created_at=1000.0, attempts=1, requeued_at=9000.0)
    assert policy.next_attempt(requeued, err, 9100.0, lambda: 1.0) == 9160.0
    with pytest.raises(ValueError, match="max_age"):
        RetryPolicy(max_age=0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        ("301", MAX_RETRY_AFTER),
        ("Thu, 01 Jan 1970 00:16:40 GMT", 0.0),  # 1000: already past
        ("Thu, 01 Jan 1970 00:18:20 GMT", 100.0),  # 1100
        ("Thu, 01 Jan 1970 02:00:00 GMT", MAX_RETRY_AFTER),
        ("Thu, 01 Jan 1970 00:18:20", None),  # no zone: not an HTTP date
        ("-1", None),
        ("inf", None),
        ("nan", None),
        ("Infinity", None),
        ("0x10", None),
        ("tomorrow", None),
        ("", None),
    ],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, now=1000.0) == seconds
