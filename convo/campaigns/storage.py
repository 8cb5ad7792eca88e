"""What a store keeps of campaigns: :class:`CampaignStore`.

Crash safety rests on two atomic steps. :meth:`CampaignStore.claim_recipients` moves due
``pending`` recipients of a running campaign to ``starting`` (with the time of the claim)
in one statement, so two runners never take the same one, even in two processes on one
PostgreSQL database; :meth:`CampaignStore.settle` records what became of each afterwards.
A process that dies between the two leaves its claims ``starting``;
:meth:`CampaignStore.interrupted` lists them for the runner's recovery, which decides from
the conversation store whether each start happened (:mod:`convo.campaigns.runner`).

Keeping campaigns is a capability of a store beside :class:`~convo.store.base.Store`:
memory, SQLite and PostgreSQL have it, and :func:`campaigns_of` gives a store as one (an
error names a store that keeps none).

A campaign's recipients are added in batches (:meth:`CampaignStore.add_recipients`), so
100,000 contacts stream from a CSV into the store without being held in memory; a number
already in the campaign becomes a ``skipped_duplicate`` row, decided by the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from convo.campaigns.model import (
    Campaign,
    CampaignCounts,
    CampaignStatus,
    NewRecipient,
    Recipient,
    RecipientState,
)
from convo.exceptions import ConfigError
from convo.store.base import Store


@runtime_checkable
class CampaignStore(Protocol):
    async def create_campaign(self, campaign: Campaign) -> None:
        """Store a new campaign (no recipients yet). StoreError when its id is taken."""

    async def add_recipients(self, campaign_id: str, recipients: Sequence[NewRecipient]) -> int:
        """Append ``recipients`` to the campaign, in order, in one transaction. A usable
        one whose number the campaign already has is kept as ``skipped_duplicate``.
        Returns how many became ``pending``."""

    async def get_campaign(self, campaign_id: str) -> Campaign | None: ...

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        """Campaigns (of ``status``, or all), newest first."""

    async def set_campaign_status(
        self, campaign_id: str, status: CampaignStatus, now: float
    ) -> Campaign | None:
        """Move the campaign to ``status`` if :data:`~convo.campaigns.model.TRANSITIONS`
        allows it from where it is (one atomic step), and return it as it is after: the
        caller compares ``status`` to learn whether it moved. None for no such campaign.
        ``done`` is refused while a recipient is pending or starting."""

    async def campaign_counts(self, campaign_id: str) -> CampaignCounts:
        """Where its recipients are (:class:`~convo.campaigns.model.CampaignCounts`); the
        delivery, reply and completion counts come from the message log and sessions."""

    async def claim_recipients(self, campaign_id: str, now: float, limit: int) -> list[Recipient]:
        """Atomically take at most ``limit`` pending recipients due at ``now``
        (``not_before <= now``) of a *running* campaign, in order (``not_before``, then
        row order): each becomes ``starting`` with ``claimed_at = now``. Empty when the
        campaign is not running."""

    async def settle(
        self,
        campaign_id: str,
        seq: int,
        state: RecipientState,
        *,
        now: float,
        not_before: float = 0.0,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record what became of a claimed recipient: ``started`` (at ``now``, with the
        start's first ``message_id``), ``failed`` or ``skipped_opted_out`` (with
        ``error``), or ``pending`` again, due at ``not_before`` (held by quiet hours, or
        its claim given back)."""

    async def interrupted(self, limit: int = 500) -> list[Recipient]:
        """Recipients left ``starting`` (of any campaign), oldest claims first, that no
        other living process holds: a runner calls it when it starts, before it claims
        anything, and now and then as it runs, leaving out the claims it holds itself.
        Memory and SQLite are held by one process: every claim. A store shared by several
        lists the caller's own claims and those of processes that are gone, and hands
        each to the caller, so two processes never settle the same one."""


@runtime_checkable
class StoreWithCampaigns(Store, CampaignStore, Protocol):
    """A complete store that keeps campaigns too (memory, SQLite, PostgreSQL)."""


def campaigns_of(store: Store) -> StoreWithCampaigns:
    """``store`` as a store of campaigns; ConfigError when its backend keeps none."""
    if not isinstance(store, CampaignStore):
        raise ConfigError(
            f"campaigns: the store {store!r} keeps no campaigns "
            "(memory://, SQLite and PostgreSQL do)"
        )
    return store
