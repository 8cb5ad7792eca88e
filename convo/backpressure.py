"""Backpressure: inbound texts are refused while the outbox is too far behind.

Every inbound text is stored before its webhook is acknowledged, and its replies are
queued in the store; if texts keep arriving faster than replies can be sent (a provider's
rate limit, a slow or failing provider, a machine at its limit), the outbox grows without
bound and every acknowledgement promises a reply that may come minutes or hours late. So
when the outbox falls behind by more than ``[outbox] max_backlog`` replies pending
(``queued`` or ``sending``, due or waiting out a backoff) or ``max_lag`` seconds (how long
the oldest reply that is due has waited, since it was queued), inbound SMS webhooks are
answered 503 with ``Retry-After`` (:class:`~convo.exceptions.Overloaded`, through the web
app's error middleware) and store nothing: the provider keeps the text and retries it, as
it does while the store cannot write. A provider polled for its texts (Enco) is not polled
for them meanwhile. Delivery reports, call webhooks and texts already acknowledged (long
texts' parts, recovery) are never refused.

:meth:`Backpressure.refresh` reads the two measures from the store (one count over the
outbox's index, and the oldest due reply); the runtime runs it every
:data:`REFRESH_INTERVAL` seconds, so a webhook never waits for it and
:meth:`Backpressure.check` costs nothing. It clears by itself: the first refresh that
finds both measures within their limits accepts texts again. Each episode is logged
twice, when it starts and when it ends (with how many texts were refused), not once per
refused webhook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from convo.exceptions import Overloaded
from convo.store.base import MessageLog

log = logging.getLogger("convo.backpressure")

#: Seconds between two reads of the outbox's backlog.
REFRESH_INTERVAL = 0.5
#: Seconds a refused provider is told to wait before it retries.
RETRY_AFTER = 5


class Backpressure:
    """Whether the outbox in ``store`` is within ``max_backlog`` replies and ``max_lag``
    seconds (module docstring); a limit of 0 is no limit. ``clock`` is the wall clock
    (UNIX seconds) messages are stamped with."""

    def __init__(
        self,
        store: MessageLog,
        *,
        max_backlog: int,
        max_lag: float,
        retry_after: int = RETRY_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_backlog = max_backlog
        self.max_lag = max_lag
        self.retry_after = retry_after
        self._clock = clock
        self._behind: str | None = None  # why texts are refused now, or None
        self._since = 0.0
        self._refused = 0

    @property
    def enabled(self) -> bool:
        return self.max_backlog > 0 or self.max_lag > 0

    @property
    def behind(self) -> bool:
        """True while inbound texts are refused."""
        return self._behind is not None

    def check(self) -> None:
        """Raise :class:`~convo.exceptions.Overloaded` while the outbox is behind."""
        if self._behind is not None:
            self._refused += 1
            raise Overloaded(
                f"the outbox is behind ({self._behind}); try again later",
                retry_after=self.retry_after,
            )

    async def refresh(self) -> None:
        """Read the backlog from the store; start or end an episode (logged once each).
        Store errors propagate (the state stays as it was)."""
        if not self.enabled:
            return
        now = self._clock()
        depth = await self.store.outbox_depth() if self.max_backlog > 0 else 0
        lag = 0.0
        if self.max_lag > 0:
            oldest = await self.store.due_outbound(now, limit=1)
            lag = max(0.0, now - oldest[0].queued_since) if oldest else 0.0
        reasons = []
        if self.max_backlog > 0 and depth > self.max_backlog:
            reasons.append(f"{depth} replies pending, more than max_backlog {self.max_backlog}")
        if self.max_lag > 0 and lag > self.max_lag:
            reasons.append(f"the oldest due reply waited {lag:.0f} s, max_lag {self.max_lag:g} s")
        if reasons and self._behind is None:
            self._since, self._refused = now, 0
            log.warning(
                "outbox behind: %s; inbound texts are refused (503) until it catches up",
                "; ".join(reasons),
            )
        elif not reasons and self._behind is not None:
            measured = [f"{depth} replies pending"] if self.max_backlog > 0 else []
            if self.max_lag > 0:
                measured.append(f"the oldest due reply waited {lag:.0f} s")
            log.warning(
                "outbox caught up (%s): inbound texts accepted again after %.0f s; "
                "%d webhook(s) refused meanwhile",
                *(", ".join(measured), now - self._since, self._refused),
            )
        self._behind = "; ".join(reasons) or None
