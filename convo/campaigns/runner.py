"""The campaign runner: starts each campaign's recipients, paced, never twice, never lost.

One runner per serving process (:mod:`convo.runtime`), run as a supervised background
loop. Every :data:`POLL` seconds (or at once when :meth:`CampaignRunner.wake` is called) it
reads the running campaigns from the store; a campaign whose ``start_at`` has come gets a
*pacer*, which:

1. claims a small batch of due recipients in the store (``pending`` -> ``starting``, one
   atomic statement: :meth:`~convo.campaigns.storage.CampaignStore.claim_recipients`);
2. for each, in order: a contact inside the campaign's quiet hours, in *their* time zone,
   goes back to ``pending``, due when those hours end; otherwise it waits for its slot
   (``rate_per_second``, capped at the line's provider rate limit) and is started by the
   :data:`Starter`, which refuses a contact who opted out *now* (a STOP that arrived
   while the campaign ran counts);
3. settles it in the store: ``started`` (with its first text's id), ``failed`` or
   ``skipped_opted_out``. When the store fails there (the start's outcome is unknown), the
   next poll settles it as recovery does (below), once the store answers.

When a claim finds nothing and no start is in flight, the campaign is marked ``done``
(the store refuses while a recipient is still pending, held by quiet hours). A campaign
paused or cancelled stops taking starts within one poll; the recipients its pacer had
claimed but not started go back to ``pending``.

Pacing. Starts follow a fixed schedule, one every ``1/rate`` seconds from the pacer's
start; a pacer that fell behind (a slow store) restarts its schedule from now rather than
catching up in a burst, so the rate is never exceeded, and the outbox, which sends at most
at the provider's ``rate_limit``, sends the first texts at that pace. On a store several
processes share (:class:`~convo.store.base.SharedRateLimits`), their pacers of one
campaign also take a token per claimed recipient from the campaign's bucket in the store,
and wait until the bucket has them, so together they keep to the rate: beyond the
bucket's first second of tokens (it starts full), one process's batches follow another's.

Crash safety (0 lost, 0 started twice). A recipient is claimed before its start and
settled after. A process killed in between leaves it ``starting``; when the runner starts
it first resolves every such claim (:meth:`CampaignRunner.recover`), before claiming
anything: if the conversation store holds a conversation with that contact on the
campaign's line and channel created at or after the claim, the start happened (its
replies were queued in the same transaction, and the outbox sends them) and the recipient
is ``started``; otherwise it did not, and the recipient is ``pending`` again. A call is
the exception: the conversation is prepared before the provider is asked to call, so a
kill between the two counts the call as placed: at most once, never twice.

Several processes on one store (PostgreSQL) each run a runner, and their pacers claim
from the same campaigns: the store's claim gives each recipient to one of them. A process
that dies while the others run on leaves claims that nobody restarts to recover, so the
runner also recovers every :data:`RECOVER_EVERY` seconds. The store lists the claims no
living process holds (its own included; on a store one process holds, every claim), and
the runner leaves out those its own pacers hold: what it holds is noted under the same
lock as its claims are taken and as that list is read, so a claim is never both started by
a pacer and settled by recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from convo.campaigns.model import Campaign, CampaignStatus, Recipient, RecipientState
from convo.exceptions import ConfigError, ConvoError, StoreError
from convo.models import Channel, ConversationKey, Direction
from convo.store.base import MessageQuery, SharedRateLimits

if TYPE_CHECKING:
    from convo.campaigns.storage import StoreWithCampaigns

log = logging.getLogger("convo.campaigns")

POLL = 0.5  # seconds between two reads of the running campaigns
#: The most a pacer claims at once: about this many seconds of starts at its rate, so a
#: pause stops it within that much and few claims wait in memory.
CLAIM_AHEAD = 0.5
MAX_IN_FLIGHT = 64  # starts under way at once, per campaign
FALL_BEHIND = 0.05  # seconds late before a pacer restarts its schedule instead of bursting
RECOVER_EVERY = 5.0  # seconds between two looks for claims a stopped process left


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Start ``flow`` with ``to`` from ``line`` on ``channel``."""

    line: str
    channel: Channel
    to: str
    flow: str
    params: Mapping[str, Any] = field(default_factory=dict)
    language: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class StartOutcome:
    """What a start did: ``started`` (``message_id``: its first text, if any), ``opted_out``
    (nothing sent) or ``failed`` (``error`` says why; nothing sent)."""

    kind: Literal["started", "opted_out", "failed"]
    message_id: str | None = None
    error: str | None = None


Starter = Callable[[StartRequest], Awaitable[StartOutcome]]


class CampaignRunner:
    """Runs the campaigns of ``store`` (module docstring).

    ``starter`` starts one conversation; ``rate_limit(line, channel)`` is the most starts
    per second that line's provider takes (a campaign never goes faster);
    ``flow_params(flow)`` names the params a flow declares, which a recipient's own
    fields of the same name override."""

    def __init__(
        self,
        store: StoreWithCampaigns,
        starter: Starter,
        *,
        rate_limit: Callable[[str, Channel], float],
        flow_params: Callable[[str], Collection[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.starter = starter
        self.rate_limit = rate_limit
        self.flow_params = flow_params
        self.clock = clock
        self._pacers: dict[str, asyncio.Task[None]] = {}
        self._status: dict[str, CampaignStatus] = {}
        self._wake = asyncio.Event()
        self._stopped_here: set[str] = set()
        self._unrunnable: set[str] = set()  # logged once: their line is not configured
        self._unsettled: list[Recipient] = []  # starts whose outcome the store refused
        self._holding: set[tuple[str, int]] = set()  # (campaign, seq) its pacers claimed
        self._claiming = asyncio.Lock()  # claims taken and noted vs. the recovery's list
        self._next_recovery = 0.0  # time.monotonic() of the next periodic recovery

    def wake(self, changed: Campaign | None = None) -> None:
        """Read the campaigns now: one was created, or ``changed`` was paused, resumed or
        cancelled in this process, which its pacer heeds before its next start."""
        if changed is not None and changed.status is not CampaignStatus.RUNNING:
            self._status.pop(changed.id, None)
            self._stopped_here.add(changed.id)  # a poll reading the store now may miss it
        self._wake.set()

    def rate_of(self, campaign: Campaign) -> float:
        """Starts per second for ``campaign``: its own rate, never above the line's limit."""
        limit = self.rate_limit(campaign.line, campaign.channel)
        return min(campaign.rate_per_second, limit) if campaign.rate_per_second > 0 else limit

    async def run(self) -> None:
        """Recover, then run until cancelled (the supervisor restarts it after a failure);
        cancelling it stops every pacer, giving back their unstarted claims."""
        try:
            await self.recover()
            while True:
                await self.poll()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL)
        finally:
            await self._stop_pacers()

    async def poll(self) -> None:
        """Give every running campaign whose start time has come a pacer; note the status
        of the others, so their pacers stop."""
        if self._unsettled:
            await self._retry_unsettled()
        if time.monotonic() >= self._next_recovery:
            await self.recover()
        now = self.clock()
        self._stopped_here.clear()
        running = await self.store.list_campaigns(CampaignStatus.RUNNING)
        running = [c for c in running if c.id not in self._stopped_here]
        self._status = {c.id: c.status for c in running}
        for campaign in running:
            task = self._pacers.get(campaign.id)
            if campaign.start_at <= now and (task is None or task.done()):
                self._pacers[campaign.id] = asyncio.create_task(
                    self._pace(campaign), name=f"convo-campaign-{campaign.id}"
                )
        for campaign_id in [i for i, t in self._pacers.items() if t.done()]:
            task = self._pacers.pop(campaign_id)
            if not task.cancelled() and task.exception() is not None:
                log.error("campaign %s: pacer failed", campaign_id, exc_info=task.exception())

    async def recover(self) -> int:
        """Settle the claims a stopped process left ``starting`` (module docstring);
        returns how many. :meth:`run` calls it first, whenever it (re)starts, and
        :meth:`poll` every :data:`RECOVER_EVERY` seconds; the claims this runner's pacers
        hold, and the starts waiting to be settled, are left to them."""
        settled = 0
        while True:
            async with self._claiming:
                mine = self._holding | {(r.campaign_id, r.seq) for r in self._unsettled}
                batch = await self.store.interrupted()
            cut_short = [r for r in batch if (r.campaign_id, r.seq) not in mine]
            if not cut_short:
                break
            for r in cut_short:  # each settled, so the next batch holds others
                await self._settle_cut_short(r)
                settled += 1
        self._next_recovery = time.monotonic() + RECOVER_EVERY
        if settled:
            log.info("campaigns: settled %d start(s) cut short by a stop", settled)
        return settled

    async def _settle_cut_short(self, r: Recipient) -> None:
        """Settle claim ``r``, whose start's outcome was lost, from the conversations."""
        campaign = await self.store.get_campaign(r.campaign_id)
        message_id = await self._started_by(campaign, r) if campaign else None
        if message_id is None:
            await self.store.settle(r.campaign_id, r.seq, RecipientState.PENDING, now=self.clock())
        else:
            await self.store.settle(
                r.campaign_id,
                r.seq,
                RecipientState.STARTED,
                now=r.claimed_at or 0.0,
                message_id=message_id or None,
            )

    async def _retry_unsettled(self) -> None:
        waiting, self._unsettled = self._unsettled, []
        for i, r in enumerate(waiting):
            try:
                await self._settle_cut_short(r)
            except StoreError:
                self._unsettled.extend(waiting[i:])  # still failing: next poll
                return

    async def _started_by(self, campaign: Campaign, r: Recipient) -> str | None:
        """None when the claim ``r`` started nothing; else the id of the first text its
        start queued ("" when it queued none: a call)."""
        key = ConversationKey(campaign.line, campaign.channel, r.number)
        session = await self.store.get_session(key)
        claimed = r.claimed_at or 0.0
        if session is None or session.created_at < claimed:
            return None
        query = MessageQuery(direction=Direction.OUTBOUND, number=r.number, page_size=50)
        messages, _ = await self.store.list_messages(query)  # newest first
        since = [m for m in messages if m.line == campaign.line and m.created_at >= claimed]
        return since[-1].id if since else ""

    # -- one campaign ---------------------------------------------------------------------

    async def _pace(self, campaign: Campaign) -> None:
        try:
            rate = self.rate_of(campaign)
        except ConfigError as exc:  # its line left the configuration since it was created
            if campaign.id not in self._unrunnable:
                self._unrunnable.add(campaign.id)
                log.error("campaign %s cannot run: %s", campaign.id, exc)
            return
        batch = max(1, min(500, int(rate * CLAIM_AHEAD)))
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()
        params = self.flow_params(campaign.flow)
        claimed: list[Recipient] = []
        origin, sent = time.monotonic(), 0
        shared = self.store if isinstance(self.store, SharedRateLimits) else None
        try:
            while self._status.get(campaign.id) is CampaignStatus.RUNNING:
                async with self._claiming:
                    claimed = await self.store.claim_recipients(campaign.id, self.clock(), batch)
                    self._holding.update((campaign.id, r.seq) for r in claimed)
                if not claimed:
                    if in_flight:
                        await asyncio.wait(in_flight)
                        continue
                    await self._finish(campaign)
                    return
                if shared is not None:  # the other processes' pacers: after theirs
                    bucket = f"campaign:{campaign.id}"
                    await asyncio.sleep(await shared.take_tokens(bucket, rate, len(claimed)))
                while claimed:
                    if self._status.get(campaign.id) is not CampaignStatus.RUNNING:
                        return
                    r = claimed.pop(0)
                    held = self._held_until(campaign, r)
                    if held is not None:
                        try:
                            await self.store.settle(
                                campaign.id,
                                r.seq,
                                RecipientState.PENDING,
                                now=self.clock(),
                                not_before=held,
                            )
                        finally:  # if that failed, the claim is left to recovery
                            self._holding.discard((campaign.id, r.seq))
                        continue
                    due = origin + sent / rate
                    late = time.monotonic() - due
                    if late > FALL_BEHIND:
                        origin, sent = time.monotonic(), 0
                    elif late < 0:
                        await asyncio.sleep(-late)
                        if self._status.get(campaign.id) is not CampaignStatus.RUNNING:
                            claimed.insert(0, r)  # paused while it waited: give it back
                            return
                    sent += 1
                    await slots.acquire()
                    task = asyncio.create_task(self._start(campaign, r, params, slots))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        finally:
            # Paused, cancelled or stopped: what was claimed and not started waits again
            # (or, when the store refuses, is left to recovery).
            for r in claimed:
                with contextlib.suppress(StoreError):
                    await self.store.settle(
                        campaign.id, r.seq, RecipientState.PENDING, now=self.clock()
                    )
                self._holding.discard((campaign.id, r.seq))
            if in_flight:
                await asyncio.wait(in_flight)

    def _held_until(self, campaign: Campaign, r: Recipient) -> float | None:
        if campaign.quiet_hours is None:
            return None
        return campaign.quiet_hours.held_until(self.clock(), r.timezone)

    async def _start(
        self,
        campaign: Campaign,
        r: Recipient,
        declared: Collection[str],
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            own = {k: v for k, v in r.fields.items() if k in declared}
            request = StartRequest(
                line=campaign.line,
                channel=campaign.channel,
                to=r.number,
                flow=campaign.flow,
                params={**campaign.params, **own},
                language=r.language,
                name=r.name,
            )
            try:
                outcome = await self.starter(request)
            except StoreError:
                raise  # the start may not have happened: recovery decides at the next start
            except ConvoError as exc:
                outcome = StartOutcome("failed", error=str(exc))
            state = {
                "started": RecipientState.STARTED,
                "opted_out": RecipientState.SKIPPED_OPTED_OUT,
                "failed": RecipientState.FAILED,
            }[outcome.kind]
            if outcome.kind == "failed":
                log.warning(
                    "campaign %s: row %d not started: %s", campaign.id, r.row, outcome.error
                )
            await self.store.settle(
                campaign.id,
                r.seq,
                state,
                now=self.clock(),
                message_id=outcome.message_id,
                error=outcome.error,
            )
        except StoreError as exc:
            # Started or not, the store could not say: the next poll settles it the way a
            # restart would (recovery), once the store answers again.
            self._unsettled.append(r)
            log.warning(
                "campaign %s: row %d not settled (%s); settled once the store answers",
                campaign.id,
                r.row,
                exc,
            )
        finally:
            self._holding.discard((campaign.id, r.seq))
            slots.release()

    async def _finish(self, campaign: Campaign) -> None:
        after = await self.store.set_campaign_status(campaign.id, CampaignStatus.DONE, self.clock())
        if after is not None and after.status is CampaignStatus.DONE:
            self._status.pop(campaign.id, None)
            counts = await self.store.campaign_counts(campaign.id)
            log.info("campaign %s (%s) done: %s", campaign.id, campaign.name, counts.to_json())
        else:
            await asyncio.sleep(POLL)  # some are held by quiet hours: look again later

    async def _stop_pacers(self) -> None:
        tasks = list(self._pacers.values())
        self._pacers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
