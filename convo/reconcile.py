"""Status reconciliation: catching up on delivery reports that never came.

A provider's status callback can be lost (our server was down, a proxy refused it, the
provider gave up), and then a message stays ``sent`` in the log forever. Two remedies:

* :class:`Reconciler`, for providers that can be asked about one message
  (:class:`StatusLookup`: ``get_message(provider_message_id) -> DeliveryReport``; Telefoon
  SMS, Telefonie SMS, Enco). Every :attr:`Reconciler.interval` seconds it finds outbound
  messages still ``sent`` whose last update is more than ``after`` seconds old
  (``[outbox] reconcile_after``, default 10 minutes), asks their provider, and applies the
  answer through ``Outbox.apply_report`` (so a status only ever moves forward). Applying an
  answer updates the message, so a message the provider still calls ``sent`` is asked about
  again ``after`` seconds later, not every round. Messages created more than
  ``give_up_after`` seconds ago (default 48 h) are left alone: the provider will not learn
  more, and the scan stays bounded. At most ``batch`` messages are asked about per round.
  When two or more of a provider's messages are due and it can list its messages
  (:class:`StatusListing`: Telefoon and Telefonie ``GET /messages``, Enco ``GET /logs``),
  the round asks once in bulk instead: one listing of its outbound messages reaching back
  to the oldest due message's creation (less :data:`CLOCK_SKEW`), at most one page (100
  messages) per due message, so a listing never costs more requests than the lookups it
  replaces. Due
  messages the listing did not reach (older than it went, or erased at the provider) are
  then asked about one by one, as before.
* :func:`retrack_deliveries`, at start, for providers that poll delivery statuses
  themselves but only for messages sent by this process (:class:`DeliveryTracking`: Enco
  with ``delivery_callbacks`` off): every message of theirs still ``sent`` is handed to
  ``track_delivery`` again, so a restart does not orphan them.

Failures: a provider that throttles or is unavailable (``RateLimited``,
``ProviderUnavailable``) is skipped for the rest of the round; one that rejects the lookup
(``ProviderRejected``: it no longer knows the message, e.g. erased) is not asked about that
message again until ``give_up_after`` has passed. Store errors propagate to the caller (the
server's loop logs them and tries again next round). The scan pages through the log newest
first; a message whose status changes during the scan may be skipped, and is found the next
round.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from convo.exceptions import ProviderError, ProviderRejected
from convo.models import DeliveryReport, Direction, MessageRecord, MessageStatus
from convo.providers.base import SmsProvider
from convo.store.base import MessageLog, MessageQuery

log = logging.getLogger("convo.reconcile")

DEFAULT_AFTER = 600.0
DEFAULT_GIVE_UP_AFTER = 48 * 3600.0
PAGE_SIZE = 200
# Our created_at and the provider's date_created come from two clocks, and a message is
# created in our log before it reaches the provider: a listing reaches back this much further.
CLOCK_SKEW = 300.0


@runtime_checkable
class StatusLookup(Protocol):
    """A provider that can say where one message is (Telefoon SMS, Telefonie SMS, Enco)."""

    name: str

    async def get_message(self, provider_message_id: str) -> DeliveryReport: ...


@runtime_checkable
class StatusListing(Protocol):
    """A :class:`StatusLookup` that can also list its outbound messages in bulk (Telefoon
    SMS, Telefonie SMS: ``GET /messages``; Enco: ``GET /logs``)."""

    name: str

    async def outbound_reports(self, since: float, *, max_pages: int) -> list[DeliveryReport]:
        """Reports on outbound messages created since ``since`` (UNIX time), at most
        ``max_pages`` requests; may include older messages and need not be complete."""
        ...


@runtime_checkable
class DeliveryTracking(Protocol):
    """A provider that polls delivery statuses of the messages it was told to track (Enco)."""

    name: str
    delivery_callbacks: bool

    def track_delivery(
        self, provider_message_id: str, client_ref: str | None = None, status: str = ""
    ) -> None: ...


async def sent_messages(
    store: MessageLog, *, created_after: float, page_size: int = PAGE_SIZE
) -> AsyncIterator[MessageRecord]:
    """Outbound messages whose status is ``sent``, newest first, created after
    ``created_after`` (a UNIX time)."""
    page = 1
    while True:
        query = MessageQuery(
            direction=Direction.OUTBOUND,
            status=MessageStatus.SENT,
            page=page,
            page_size=page_size,
        )
        records, _total = await store.list_messages(query)
        for record in records:
            if record.created_at < created_after:
                return
            yield record
        if len(records) < page_size:
            return
        page += 1


async def retrack_deliveries(
    store: MessageLog,
    providers: Iterable[SmsProvider],
    *,
    max_age: float = DEFAULT_GIVE_UP_AFTER,
    clock: Callable[[], float] = time.time,
) -> int:
    """Hand every message still ``sent`` (created in the last ``max_age`` seconds) back to
    its provider's ``track_delivery`` when that provider polls instead of getting callbacks.
    Returns how many were handed back."""
    trackers = {
        p.name: p for p in providers if isinstance(p, DeliveryTracking) and not p.delivery_callbacks
    }
    if not trackers:
        return 0
    count = 0
    async for record in sent_messages(store, created_after=clock() - max_age):
        tracker = trackers.get(record.provider)
        if tracker is not None and record.provider_message_id:
            tracker.track_delivery(record.provider_message_id, record.id)
            count += 1
    if count:
        log.info("tracking the delivery of %d message(s) sent before the restart", count)
    return count


class Reconciler:
    """Asks providers about messages stuck in ``sent``; see the module docstring.

    ``apply`` is what records a report (``Outbox.apply_report``). Providers in
    ``providers`` that are not :class:`StatusLookup` are ignored.
    """

    def __init__(
        self,
        store: MessageLog,
        providers: Mapping[str, SmsProvider],
        apply: Callable[[DeliveryReport], Awaitable[MessageRecord | None]],
        *,
        after: float = DEFAULT_AFTER,
        give_up_after: float = DEFAULT_GIVE_UP_AFTER,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if after <= 0 or give_up_after <= 0 or batch < 1:
            raise ValueError("after and give_up_after must be > 0 and batch >= 1")
        self.store = store
        self.lookups: dict[str, StatusLookup] = {
            name: p for name, p in providers.items() if isinstance(p, StatusLookup)
        }
        self.apply = apply
        self.after = after
        self.give_up_after = give_up_after
        self.batch = batch
        self.clock = clock
        self._not_before: dict[str, float] = {}  # message id -> when it may be asked again

    def __repr__(self) -> str:
        return f"<Reconciler providers={sorted(self.lookups)} after={self.after}s>"

    @property
    def interval(self) -> float:
        """Seconds between rounds: half of ``after``, between 50 ms and one minute."""
        return min(60.0, max(0.05, self.after / 2))

    async def due(self) -> list[MessageRecord]:
        """The messages to ask about now (at most ``batch``), newest first."""
        now = self.clock()
        self._not_before = {k: t for k, t in self._not_before.items() if t > now}
        found: list[MessageRecord] = []
        async for record in sent_messages(self.store, created_after=now - self.give_up_after):
            if (
                record.provider in self.lookups
                and record.provider_message_id
                and now - record.updated_at >= self.after
                and record.id not in self._not_before
            ):
                found.append(record)
                if len(found) >= self.batch:
                    break
        return found

    async def reconcile(self) -> int:
        """One round; returns how many messages changed status."""
        changed = 0
        paused: set[str] = set()
        due = await self.due()
        listed: dict[str, DeliveryReport] = {}  # "provider/provider id" -> listed report
        by_provider: dict[str, list[MessageRecord]] = {}
        for record in due:
            by_provider.setdefault(record.provider, []).append(record)
        for name, records in by_provider.items():
            lister = self.lookups[name]
            if len(records) < 2 or not isinstance(lister, StatusListing):
                continue  # one lookup is never dearer than a listing
            since = min(r.created_at for r in records) - CLOCK_SKEW
            try:
                reports = await lister.outbound_reports(since, max_pages=len(records))
            except ProviderError as exc:
                log.warning("reconcile: %s paused this round: %s", name, exc)
                paused.add(name)
                continue
            listed.update({f"{name}/{r.provider_message_id}": r for r in reports})
        for record in due:
            if record.provider in paused:
                continue
            now = self.clock()
            found = listed.get(f"{record.provider}/{record.provider_message_id}")
            if found is not None:
                self._not_before[record.id] = now + self.after
                changed += await self._apply(record, found)
                continue
            self._not_before[record.id] = now + self.after
            try:
                report = await self.lookups[record.provider].get_message(record.provider_message_id)
            except ProviderRejected as exc:
                log.info("reconcile: %s does not know message %s: %s", record.provider,
                         record.id, exc)  # fmt: skip
                self._not_before[record.id] = now + self.give_up_after
                continue
            except ProviderError as exc:
                log.warning("reconcile: %s paused this round: %s", record.provider, exc)
                paused.add(record.provider)
                continue
            changed += await self._apply(record, report)
        return changed

    async def _apply(self, record: MessageRecord, report: DeliveryReport) -> int:
        """Record ``report`` about ``record``; 1 when its status changed, else 0."""
        updated = await self.apply(dataclasses.replace(report, client_ref=record.id))
        if updated is None or updated.status is record.status:
            return 0
        log.info("reconcile: message %s is %s", record.id, updated.status.value)
        return 1
