"""The server's periodic background work, each as one named tick at an interval.

:func:`background_loops` lists them; the runtime runs each with
:meth:`convo.supervisor.Supervisor.every` (a tick that raises anything is logged with its
traceback and the loop's name, and the next tick still runs on time):

* ``timers`` (every second): fire due step timeouts (``engine.fire_timers``) and wake the
  outbox when some fired, so their replies go out now rather than at the next sweep;
* ``long texts`` (every ``min(5, concat_timeout / 4)`` seconds): deliver what arrived of long
  texts whose missing parts are overdue (``intake.expire_fragments``);
* ``reconcile`` (``Reconciler.interval``), only when a provider can be asked about one
  message: look up messages stuck in ``sent`` (``convo.reconcile``);
* ``poll NAME`` (the provider's ``poll_interval``) for each provider without inbound
  webhooks (``PollingSmsProvider``, e.g. Enco): fetch inbound texts into the intake and
  delivery reports into the outbox. A provider that is down or refuses (``ProviderError``)
  is logged as one warning line, not a traceback: it is an expected condition that recurs
  every few seconds while it lasts;
* ``backpressure`` (every :data:`convo.backpressure.REFRESH_INTERVAL` seconds), when
  ``[outbox] max_backlog`` or ``max_lag``, or ``[webhooks] max_pending_turns``, is set:
  whether inbound texts are refused (:mod:`convo.backpressure`); a polled provider's texts
  are not fetched meanwhile;
* ``prune seen`` (hourly; more often when ``[store] seen_retention`` is shorter than a day:
  24 times per retention period, at least every 50 ms): forget the seen tokens (provider
  message ids kept to drop retries) and erasure's tombstones (keyed hashes of erased
  messages' ids, kept to drop replays) older than ``seen_retention``, so both stay bounded.
  Each is thus kept between ``seen_retention`` and 1/24 more.

Several processes on one shared store (``convo serve --workers``, several machines) each
run every loop: none needs to run in one process only, because each is safe twice through
the store. Timers: firing is a turn under the conversation's lock that reads the timer
again, so the second process finds it moved. Long texts: two processes may both deliver
an expired group, but the joined text carries its first part's provider id, so the second
is a duplicate to ``add_inbound``.
Reconciliation: a report is applied forward only, so two lookups of one message change it
once (they do ask the provider twice). Polling: a provider hands each inbound text out
once (``new-only``), and a repeat is a duplicate to ``add_inbound``. Pruning: deleting what
is older than a time twice deletes it once. Inbound recovery: the engine re-reads a text
under its conversation's lock before turning it.

Beside them, on a store that announces work between processes (``Notices``, PostgreSQL),
:func:`notice_listener` is a loop of its own: it wakes the outbox when another process
queued messages, and when its connection is lost it logs one warning and listens again
after a backoff (1 s, doubling to 30 s), waking the outbox then in case a notice was missed.
It never counts as failed: the outbox's sweep covers what notices would have said.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convo.backpressure import REFRESH_INTERVAL, Backpressure
from convo.exceptions import ProviderError, StoreError
from convo.providers.base import PollingSmsProvider, SmsProvider
from convo.reconcile import Reconciler
from convo.supervisor import Body

if TYPE_CHECKING:
    from convo.config import Settings
    from convo.intake import Intake
    from convo.outbox import Outbox
    from convo.runtime.system import TurnEngine
    from convo.store.base import Notices, Store

log = logging.getLogger("convo.runtime")

TIMER_INTERVAL = 1.0
PRUNE_INTERVAL = 3600.0


def prune_interval(retention: float) -> float:
    """Seconds between two prunings of seen tokens kept ``retention`` seconds."""
    return min(PRUNE_INTERVAL, max(0.05, retention / 24))


@dataclass(frozen=True, slots=True)
class Loop:
    """One periodic job: ``tick()`` runs now, then ``interval`` seconds after each tick."""

    name: str
    interval: float
    tick: Body


def background_loops(
    settings: Settings,
    *,
    store: Store,
    engine: TurnEngine,
    outbox: Outbox,
    intake: Intake,
    providers: Mapping[str, SmsProvider],
    backpressure: Backpressure | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Loop]:
    """The loops of a serving runtime, in start order (see the module docstring)."""

    async def fire_timers() -> None:
        if await engine.fire_timers():
            outbox.notify()

    async def expire_long_texts() -> None:
        await intake.expire_fragments()

    concat = settings.webhooks.concat_timeout
    loops = [
        Loop("timers", TIMER_INTERVAL, fire_timers),
        Loop("long texts", min(5.0, concat / 4), expire_long_texts),
    ]
    if backpressure is not None and backpressure.enabled:
        loops.append(Loop("backpressure", REFRESH_INTERVAL, backpressure.refresh))
    after = settings.outbox.reconcile_after
    reconciler = Reconciler(store, providers, outbox.apply_report, after=after)
    if reconciler.lookups:

        async def reconcile() -> None:
            await reconciler.reconcile()

        loops.append(Loop("reconcile", reconciler.interval, reconcile))
    for provider in providers.values():
        if isinstance(provider, PollingSmsProvider):
            loops.append(
                Loop(
                    f"poll {provider.name}",
                    provider.poll_interval,
                    poller(provider, intake, outbox, backpressure),
                )
            )
    retention = settings.store.seen_retention

    visits = settings.store.visits_retention

    async def prune_seen() -> None:
        forgotten = await store.prune_seen(clock() - retention)
        if forgotten:
            log.info("forgot %d seen id(s) and tombstone(s) older than %ss", forgotten, retention)
        forgotten = await store.prune_step_visits(clock() - visits)
        if forgotten:
            log.info("forgot %d step visit(s) older than %ss", forgotten, visits)

    loops.append(Loop("prune seen", prune_interval(retention), prune_seen))
    return loops


NOTICE_RETRY = 1.0
NOTICE_MAX_RETRY = 30.0


def notice_listener(store: Notices, wake: Callable[[], None]) -> Body:
    """Listen to ``store``'s notices for good, calling ``wake()`` for each outbox notice
    (module docstring)."""

    async def listen() -> None:
        delay = NOTICE_RETRY
        while True:
            began = time.monotonic()
            try:
                await store.listen(lambda topic: wake() if topic == "outbox" else None)
            except StoreError as exc:
                if time.monotonic() - began > NOTICE_MAX_RETRY:
                    delay = NOTICE_RETRY  # it had been listening: a new outage
                log.warning("%s; the outbox sweeps meanwhile; listening again in %gs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, NOTICE_MAX_RETRY)
                wake()  # a notice sent meanwhile is lost: look at the outbox once

    return listen


def poller(
    provider: PollingSmsProvider,
    intake: Intake,
    outbox: Outbox,
    backpressure: Backpressure | None = None,
) -> Body:
    """One poll of ``provider``: inbound texts to the intake (none fetched while
    ``backpressure`` refuses them: the provider keeps them), reports to the outbox."""

    async def poll() -> None:
        try:
            behind = backpressure is not None and backpressure.behind
            inbound = [] if behind else await provider.poll_inbound()
            for message in inbound:
                await intake.accept(message)
            for report in await provider.poll_status():
                await outbox.apply_report(report)
        except ProviderError as exc:
            log.warning(
                "%s: polling failed (%s); trying again in %ss",
                provider.name,
                exc,
                provider.poll_interval,
            )

    return poll
