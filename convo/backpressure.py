"""Backpressure: inbound texts are refused while convo is too far behind to answer them.

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

The same holds when the turns fall behind rather than the sends: texts are acknowledged
faster than their turns run (a store that answers slowly, hooks that wait, a machine at its
limit) and each acknowledged text waits, in memory, for a turn. So when more than
``[webhooks] max_pending_turns`` texts acknowledged by this process have turns that have
not finished, inbound texts are refused the same way. That count is the intake's own
(:attr:`convo.intake.Intake.in_flight`, no store read), so :meth:`Backpressure.check`
refuses the very text that would go over it; a refresh logs the end of such an episode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from convo.exceptions import Overloaded
from convo.store.base import MessageLog

log = logging.getLogger("convo.backpressure")

#: Seconds between two reads of the outbox's backlog.
REFRESH_INTERVAL = 0.5
#: Seconds a refused provider is told to wait before it retries.
RETRY_AFTER = 5


@dataclass
class _Episode:
    """A time during which texts are refused: since when, and how many so far."""

    since: float
    refused: int = 0


class Backpressure:
    """Whether the outbox in ``store`` is within ``max_backlog`` replies and ``max_lag``
    seconds, and the turns within ``max_pending_turns`` (``pending_turns()`` counts them)
    (module docstring); a limit of 0 is no limit. ``clock`` is the wall clock (UNIX
    seconds) messages are stamped with."""

    def __init__(
        self,
        store: MessageLog,
        *,
        max_backlog: int,
        max_lag: float,
        max_pending_turns: int = 0,
        pending_turns: Callable[[], int] = lambda: 0,
        retry_after: int = RETRY_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_backlog = max_backlog
        self.max_lag = max_lag
        self.max_pending_turns = max_pending_turns
        self._pending_turns = pending_turns
        self.retry_after = retry_after
        self._clock = clock
        self._behind: str | None = None  # why the outbox is behind now, or None
        self._outbox = _Episode(0.0)  # the outbox's last episode
        self._turns: _Episode | None = None  # while the turns are behind

    @property
    def enabled(self) -> bool:
        return self.max_backlog > 0 or self.max_lag > 0 or self.max_pending_turns > 0

    @property
    def behind(self) -> bool:
        """True while inbound texts are refused."""
        return self._behind is not None or self._turns_behind()

    def check(self) -> None:
        """Raise :class:`~convo.exceptions.Overloaded` while the outbox or the turns are
        behind."""
        if self._behind is not None:
            self._outbox.refused += 1
            raise Overloaded(
                f"the outbox is behind ({self._behind}); try again later",
                retry_after=self.retry_after,
            )
        if self._turns_behind():
            pending = self._pending_turns()
            if self._turns is None:
                self._turns = _Episode(self._clock())
                log.warning(
                    "turns behind: %d texts wait for their turns, max_pending_turns %d; "
                    "inbound texts are refused (503) until they catch up",
                    *(pending, self.max_pending_turns),
                )
            self._turns.refused += 1
            raise Overloaded(
                f"the turns are behind ({pending} texts wait for theirs, max_pending_turns "
                f"{self.max_pending_turns}); try again later",
                retry_after=self.retry_after,
            )

    def _turns_behind(self) -> bool:
        limit = self.max_pending_turns
        return limit > 0 and self._pending_turns() >= limit

    async def refresh(self) -> None:
        """Read the backlog from the store; start or end an episode (logged once each).
        Store errors propagate (the state stays as it was)."""
        if not self.enabled:
            return
        now = self._clock()
        if self._turns is not None and not self._turns_behind():
            episode, self._turns = self._turns, None
            log.warning(
                "turns caught up (%d texts wait for theirs): inbound texts accepted again "
                "after %.0f s; %d webhook(s) refused meanwhile",
                *(self._pending_turns(), now - episode.since, episode.refused),
            )
        if self.max_backlog <= 0 and self.max_lag <= 0:
            return
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
            self._outbox = _Episode(now)
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
                *(", ".join(measured), now - self._outbox.since, self._outbox.refused),
            )
        self._behind = "; ".join(reasons) or None
