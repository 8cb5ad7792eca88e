"""The memory store's campaigns (:class:`~convo.campaigns.storage.CampaignStore`), mixed
into :class:`~convo.store.memory.MemoryStore`: the reference the SQLite statements follow.
As in the rest of that store, no method awaits, so each is atomic on the event loop."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from convo.campaigns.model import (
    TRANSITIONS,
    Campaign,
    CampaignCounts,
    CampaignStatus,
    NewRecipient,
    Recipient,
    RecipientState,
)
from convo.exceptions import StoreError
from convo.models import ConversationKey, ConversationStatus, Direction, MessageStatus
from convo.store.campaign_rows import counts_from

if TYPE_CHECKING:
    from convo.models import MessageRecord, Session

_SKIPPED_AT_ENTRY = frozenset({RecipientState.SKIPPED_INVALID, RecipientState.SKIPPED_DUPLICATE})
_OPEN = frozenset({RecipientState.PENDING, RecipientState.STARTING})
_LEFT = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED})
_FAILED = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.DEAD})


class MemoryCampaigns:
    """The campaign methods of the memory store (module docstring)."""

    if TYPE_CHECKING:  # MemoryStore's
        _messages: dict[str, MessageRecord]
        _sessions: dict[ConversationKey, tuple[Session, str]]

    def __init__(self) -> None:
        self._campaigns: dict[str, Campaign] = {}
        self._recipients: dict[str, dict[int, Recipient]] = {}  # campaign id -> seq -> row
        self._last_seq: dict[str, int] = {}
        self._numbers: dict[str, dict[str, int]] = {}  # campaign id -> usable number -> row

    async def create_campaign(self, campaign: Campaign) -> None:
        if campaign.id in self._campaigns:
            raise StoreError(f"campaign {campaign.id!r} exists already")
        json.dumps(campaign.params)  # what SQLite could not keep fails here too
        self._campaigns[campaign.id] = campaign
        self._recipients[campaign.id] = {}
        self._last_seq[campaign.id] = 0
        self._numbers[campaign.id] = {}

    async def add_recipients(self, campaign_id: str, recipients: Sequence[NewRecipient]) -> int:
        if campaign_id not in self._campaigns:
            raise StoreError(f"no campaign {campaign_id!r}")
        rows, numbers = self._recipients[campaign_id], self._numbers[campaign_id]
        pending = 0
        for new in recipients:
            state, error = new.state, new.error
            if state is RecipientState.PENDING and new.number in numbers:
                state = RecipientState.SKIPPED_DUPLICATE
                error = f"the same number as row {numbers[new.number]}"
            if state not in _SKIPPED_AT_ENTRY:
                numbers[new.number] = new.row
            pending += state is RecipientState.PENDING
            seq = self._last_seq[campaign_id] = self._last_seq[campaign_id] + 1
            rows[seq] = Recipient(
                campaign_id=campaign_id,
                seq=seq,
                number=new.number,
                row=new.row,
                timezone=new.timezone,
                name=new.name,
                language=new.language,
                fields=dict(new.fields),
                state=state,
                error=error,
            )
        return pending

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        found = [c for c in self._campaigns.values() if status is None or c.status is status]
        found.sort(key=lambda c: c.id)
        found.sort(key=lambda c: c.created_at, reverse=True)
        return found

    async def set_campaign_status(
        self, campaign_id: str, status: CampaignStatus, now: float
    ) -> Campaign | None:
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            return None
        still_open = any(r.state in _OPEN for r in self._recipients[campaign_id].values())
        if campaign.status in TRANSITIONS[status] and not (
            status is CampaignStatus.DONE and still_open
        ):
            campaign = dataclasses.replace(campaign, status=status, updated_at=now)
            self._campaigns[campaign_id] = campaign
        return campaign

    async def campaign_counts(self, campaign_id: str) -> CampaignCounts:
        campaign = self._campaigns.get(campaign_id)
        rows = list(self._recipients.get(campaign_id, {}).values())
        states = Counter(r.state.value for r in rows)
        sent = delivered = failed = replied = completed = 0
        if campaign is not None:
            last_reply: dict[str, float] = {}
            for m in self._messages.values():
                if m.direction is Direction.INBOUND and m.line == campaign.line:
                    last_reply[m.contact] = max(last_reply.get(m.contact, 0.0), m.created_at)
            for r in rows:
                if r.state is not RecipientState.STARTED:
                    continue
                claimed = r.claimed_at or 0.0
                message = self._messages.get(r.message_id) if r.message_id else None
                status = message.status if message else None
                voice = r.message_id is None and campaign.channel == "voice"
                sent += status in _LEFT or voice
                delivered += status is MessageStatus.DELIVERED
                failed += status in _FAILED
                replied += last_reply.get(r.number, -1.0) >= claimed
                key = ConversationKey(campaign.line, campaign.channel, r.number)
                kept = self._sessions.get(key)
                completed += bool(
                    kept
                    and kept[0].status is ConversationStatus.ENDED
                    and kept[0].created_at >= claimed
                )
        return counts_from(states, sent, delivered, failed, replied, completed)

    async def claim_recipients(self, campaign_id: str, now: float, limit: int) -> list[Recipient]:
        campaign = self._campaigns.get(campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.RUNNING:
            return []
        rows = self._recipients[campaign_id]
        due = [
            r for r in rows.values() if r.state is RecipientState.PENDING and r.not_before <= now
        ]
        due.sort(key=lambda r: (r.not_before, r.seq))
        claimed = []
        for r in due[:limit]:
            taken = dataclasses.replace(r, state=RecipientState.STARTING, claimed_at=now)
            rows[r.seq] = taken
            claimed.append(taken)
        return claimed

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
        rows = self._recipients.get(campaign_id)
        r = rows.get(seq) if rows is not None else None
        if rows is None or r is None:
            return
        rows[seq] = dataclasses.replace(
            r,
            state=state,
            not_before=not_before,
            started_at=now if state is RecipientState.STARTED else r.started_at,
            message_id=message_id or r.message_id,
            error=error,
        )

    async def interrupted(self, limit: int = 500) -> list[Recipient]:
        found = [
            r
            for rows in self._recipients.values()
            for r in rows.values()
            if r.state is RecipientState.STARTING
        ]
        found.sort(key=lambda r: r.claimed_at or 0.0)
        return found[:limit]

    def _erase_recipients(self, contact: str) -> None:
        """Forget ``contact``'s campaign rows (erasure), as SQLite deletes them."""
        for campaign_id, rows in self._recipients.items():
            for seq in [seq for seq, r in rows.items() if r.number == contact]:
                del rows[seq]
            self._numbers[campaign_id].pop(contact, None)
