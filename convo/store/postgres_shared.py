"""What the processes on one PostgreSQL database share besides rows: rate limits, notices.

* **Rate buckets** (:class:`~convo.store.base.SharedRateLimits`): one row per bucket
  (``rate_buckets``: tokens left and when that was, in seconds on the *database's* clock,
  so machines whose clocks differ still share one limit). :data:`TAKE_TOKENS` refills and
  takes in one ``INSERT ... ON CONFLICT DO UPDATE``, which PostgreSQL runs under the row's
  lock: two processes never take the same token. Tokens may go below zero: a caller that
  took them early waits until the bucket has refilled them (``-tokens / rate`` seconds),
  and the next caller queues behind it, so callers are served in the order they asked.
* **Notices** (:class:`~convo.store.base.Notices`): a statement that queues outbound
  messages outside a turn (``add_outbound``, ``requeue_dead``) also runs
  :data:`NOTIFY_OUTBOX` in its transaction; PostgreSQL delivers it at commit to every
  connection that ran ``LISTEN`` on the channel. The payload is the schema, so two convo
  deployments in two schemas of one database do not wake each other. :func:`listen` holds
  such a connection (its own, never a pooled one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from convo.exceptions import StoreError

OUTBOX_CHANNEL = "convo_outbox"

RATE_BUCKETS = """
CREATE TABLE rate_buckets (
    name TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    stamp DOUBLE PRECISION NOT NULL
);
"""
"""The migration that adds the buckets' table."""

# $1 bucket, $2 rate (tokens/s), $3 capacity, $4 tokens taken. A new bucket starts full.
TAKE_TOKENS = """
INSERT INTO rate_buckets AS b (name, tokens, stamp)
SELECT $1::text, $3::float8 - $4::float8, extract(epoch FROM clock_timestamp())::float8
ON CONFLICT (name) DO UPDATE SET
    tokens = least($3::float8, b.tokens + greatest(0, EXCLUDED.stamp - b.stamp) * $2::float8)
        - $4::float8,
    stamp = greatest(b.stamp, EXCLUDED.stamp)
RETURNING tokens
"""

NOTIFY_OUTBOX = f"SELECT pg_notify('{OUTBOX_CHANNEL}', current_schema())"


async def take_tokens(cx: Any, bucket: str, rate: float, count: int) -> float:
    """Take ``count`` tokens of ``bucket`` on connection ``cx``; seconds to wait before
    using them (:meth:`convo.store.base.SharedRateLimits.take_tokens`)."""
    if rate <= 0 or count < 1:
        raise ValueError(f"rate limit {rate} and count {count}: both must be above 0")
    left = float(await cx.fetchval(TAKE_TOKENS, bucket, rate, max(1.0, rate), count))
    return max(0.0, -left / rate)


async def listen(url: str, wake: Callable[[str], None], *, where: str, timeout: float) -> None:
    """On a connection of its own to ``url``, call ``wake("outbox")`` for each outbox
    notice of this schema until cancelled; StoreError (``where``: what failed) when the
    connection cannot be made or is lost."""
    try:
        cx = await asyncpg.connect(url, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"{where}: listening for notices failed: {exc}") from exc
    lost = asyncio.Event()
    try:
        schema = await cx.fetchval("SELECT current_schema()")

        def notice(con_ref: Any, pid: int, channel: str, payload: object) -> None:
            if payload == schema:
                wake("outbox")

        await cx.add_listener(OUTBOX_CHANNEL, notice)
        cx.add_termination_listener(lambda _cx: lost.set())
        await lost.wait()
        raise StoreError(f"{where}: the connection listening for notices was lost")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"{where}: listening for notices failed: {exc}") from exc
    finally:
        if not cx.is_closed():
            cx.terminate()
