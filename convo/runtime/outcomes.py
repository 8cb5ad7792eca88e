"""The outbox's view of the message log: what a provider said about a send is never lost.

Once a provider has taken a message, the record of it (``sent`` with the provider's id,
``failed``, or back to ``queued`` for a retry) is the only thing that stops the message
from being sent again. The outbox claims a message (``sending``), sends it, then writes the
outcome; when that write fails (the database locked past its timeout, read-only, full) and
is dropped, the message stays ``sending``: its claim lapses, or the next start releases it,
and it is sent a second time.

:class:`DurableOutcomes` wraps the store the runtime gives the outbox: every write of a
send's outcome is retried, with a capped backoff, until the store takes it (or the outbox
is stopped). Meanwhile the sender keeps its recipient (later messages wait, in order) and
the message stays claimed, so nothing else sends it. Everything else goes to the store
as it is, errors included:

* ``update_message`` naming a ``provider``: only the outbox's record of its own send
  passes one (delivery reports never do, and they must fail fast: their webhook is then
  answered 503 and the provider retries it);
* ``defer_message``: only a sender calls it, after a failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from convo.exceptions import StoreError
from convo.models import MessageRecord, MessageStatus
from convo.store.base import MessageLog

log = logging.getLogger("convo.outbox")
T = TypeVar("T")

FIRST_RETRY = 0.1  # seconds before the first retry of a failed outcome write; doubles
MAX_RETRY = 5.0


class DurableOutcomes:
    """``store`` for the outbox, with outcome writes retried until stored (module
    docstring). :meth:`wrap` gives it as the ``MessageLog`` it stands for."""

    def __init__(self, store: MessageLog) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<DurableOutcomes {self._store!r}>"

    @classmethod
    def wrap(cls, store: MessageLog) -> MessageLog:
        # Every other MessageLog method is the store's own (__getattr__), which mypy cannot
        # see through: the cast is the one place that says so.
        return cast(MessageLog, cls(store))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def update_message(
        self,
        message_id: str,
        *,
        status: MessageStatus | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        segments: int | None = None,
        price: float | None = None,
        error: str | None = None,
        forward_only: bool = False,
    ) -> MessageRecord | None:
        def write() -> Awaitable[MessageRecord | None]:
            return self._store.update_message(
                message_id,
                status=status,
                provider=provider,
                provider_message_id=provider_message_id,
                segments=segments,
                price=price,
                error=error,
                forward_only=forward_only,
            )

        if provider is None:  # not a send's outcome (module docstring)
            return await write()
        return await _until_stored(f"the outcome of sending {message_id}", write)

    async def defer_message(
        self, message_id: str, *, until: float, error: str
    ) -> MessageRecord | None:
        return await _until_stored(
            f"the retry of {message_id}",
            lambda: self._store.defer_message(message_id, until=until, error=error),
        )


async def _until_stored(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """``write()``'s result once it succeeds; a StoreError is retried after a backoff
    (logged when it first fails and when it finally succeeds, not at each retry)."""
    delay = FIRST_RETRY
    failures = 0
    while True:
        try:
            result = await write()
        except StoreError as exc:
            if failures == 0:
                log.warning("outbox: cannot record %s (%s); retrying until stored", what, exc)
            failures += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY)
            continue
        if failures:
            log.info("outbox: recorded %s after %d failed attempt(s)", what, failures)
        return result
