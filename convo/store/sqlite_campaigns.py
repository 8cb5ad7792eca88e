"""The SQLite store's campaigns (:class:`~convo.campaigns.storage.CampaignStore`): their
statements and the methods that run them, mixed into :class:`~convo.store.sqlite.SqliteStore`.

The tables are created by migration 8 of :mod:`convo.store.sqlite_schema`. Each method is
one job on the store's connection, as every other store method is: one transaction.
"""

# Statements are constant strings built from this module's constants; values always travel
# as parameters. Hence, for the whole file:
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, TypeVar

from convo.campaigns.model import (
    TRANSITIONS,
    Campaign,
    CampaignCounts,
    CampaignStatus,
    NewRecipient,
    Recipient,
    RecipientState,
)
from convo.store.campaign_rows import (
    CAMPAIGN_COLUMNS,
    RECIPIENT_COLUMNS,
    campaign_row,
    counts_from,
)
from convo.store.campaign_rows import campaign as _campaign
from convo.store.campaign_rows import recipient as _recipient
from convo.store.sqlite_connection import Job, transaction

T = TypeVar("T")

_CAMPAIGN = CAMPAIGN_COLUMNS
_RECIPIENT = RECIPIENT_COLUMNS
INSERT_CAMPAIGN = f"INSERT INTO campaigns ({_CAMPAIGN}) VALUES ({', '.join('?' * 13)})"
GET_CAMPAIGN = f"SELECT {_CAMPAIGN} FROM campaigns WHERE id = ?"
LIST_CAMPAIGNS = f"SELECT {_CAMPAIGN} FROM campaigns ORDER BY created_at DESC, id"
LIST_CAMPAIGNS_IN = (
    f"SELECT {_CAMPAIGN} FROM campaigns WHERE status = ? ORDER BY created_at DESC, id"
)
LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM campaign_recipients WHERE campaign_id = ?"
_USABLE = "state NOT IN ('skipped_invalid', 'skipped_duplicate')"
# A usable row whose number the campaign has already becomes a skipped duplicate, naming
# the row it repeats: decided here, in the statement, so the caller keeps no set of numbers.
INSERT_RECIPIENT = (
    "WITH earlier (row) AS (SELECT (SELECT row FROM campaign_recipients "
    f"WHERE campaign_id = :campaign AND number = :number AND {_USABLE})) "
    f"INSERT INTO campaign_recipients ({_RECIPIENT}) SELECT :campaign, :seq, :number, :row, "
    ":timezone, :name, :language, :fields, "
    "CASE WHEN earlier.row IS NULL OR :state != 'pending' THEN :state "
    "ELSE 'skipped_duplicate' END, 0, NULL, NULL, NULL, "
    "CASE WHEN earlier.row IS NULL OR :state != 'pending' THEN :error "
    "ELSE 'the same number as row ' || earlier.row END FROM earlier"
)
COUNT_PENDING_SINCE = (
    "SELECT count(*) FROM campaign_recipients "
    "WHERE campaign_id = ? AND seq > ? AND state = 'pending'"
)
_OPEN = (
    "EXISTS (SELECT 1 FROM campaign_recipients WHERE campaign_id = :id AND state = 'pending') "
    "OR EXISTS (SELECT 1 FROM campaign_recipients WHERE state = 'starting' "
    "AND campaign_id = :id)"
)
SET_STATUS = (
    "UPDATE campaigns SET status = :status, updated_at = :now WHERE id = :id "
    "AND status IN (SELECT value FROM json_each(:allowed)) "
    f"AND NOT (:status = 'done' AND ({_OPEN}))"
)
COUNT_STATES = (
    "SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = ? GROUP BY state"
)
# Of the started recipients: first text sent (or call placed), delivered, failed; the
# contact wrote back since the start; the conversation the start opened has ended.
COUNT_OUTCOMES = (
    "SELECT coalesce(sum(m.status IN ('sent', 'delivered') "
    "OR (r.message_id IS NULL AND c.channel = 'voice')), 0), "
    "coalesce(sum(m.status = 'delivered'), 0), "
    "coalesce(sum(m.status IN ('failed', 'undelivered', 'dead')), 0), "
    "coalesce(sum(EXISTS (SELECT 1 FROM messages AS i WHERE i.contact = r.number "
    "AND i.created_at >= r.claimed_at AND i.direction = 'inbound' AND i.line = c.line)), 0), "
    "coalesce(sum(EXISTS (SELECT 1 FROM sessions AS s WHERE s.line = c.line "
    "AND s.channel = c.channel AND s.contact = r.number AND s.status = 'ended' "
    "AND s.created_at >= r.claimed_at)), 0) "
    "FROM campaign_recipients AS r JOIN campaigns AS c ON c.id = r.campaign_id "
    "LEFT JOIN messages AS m ON m.id = r.message_id "
    "WHERE r.campaign_id = ? AND r.state = 'started'"
)
CLAIM = (
    "UPDATE campaign_recipients SET state = 'starting', claimed_at = :now "
    "WHERE campaign_id = :id AND seq IN (SELECT seq FROM campaign_recipients "
    "WHERE campaign_id = :id AND state = 'pending' AND not_before <= :now "
    "ORDER BY not_before, seq LIMIT :limit) "
    "AND EXISTS (SELECT 1 FROM campaigns WHERE id = :id AND status = 'running') "
    f"RETURNING {_RECIPIENT}"
)
SETTLE = (
    "UPDATE campaign_recipients SET state = :state, not_before = :not_before, "
    "started_at = CASE WHEN :state = 'started' THEN :now ELSE started_at END, "
    "message_id = coalesce(:message_id, message_id), error = :error "
    "WHERE campaign_id = :id AND seq = :seq"
)
INTERRUPTED = (
    f"SELECT {_RECIPIENT} FROM campaign_recipients WHERE state = 'starting' "
    "ORDER BY claimed_at LIMIT ?"
)
ERASE_RECIPIENTS = "DELETE FROM campaign_recipients WHERE number = ?"


class SqliteCampaigns:
    """The campaign methods of the SQLite store (module docstring)."""

    if TYPE_CHECKING:  # SqliteStore's

        def _run(self, what: str, job: Job[T]) -> Awaitable[T]: ...

    async def create_campaign(self, campaign: Campaign) -> None:
        values = campaign_row(campaign)
        await self._run("create campaign", lambda cx: cx.execute(INSERT_CAMPAIGN, values) and None)

    async def add_recipients(self, campaign_id: str, recipients: Sequence[NewRecipient]) -> int:
        def job(cx: sqlite3.Connection) -> int:
            with transaction(cx):
                (last,) = cx.execute(LAST_SEQ, (campaign_id,)).fetchone()
                cx.executemany(
                    INSERT_RECIPIENT,
                    (
                        {
                            "campaign": campaign_id,
                            "seq": last + i,
                            "number": r.number,
                            "row": r.row,
                            "timezone": r.timezone,
                            "name": r.name,
                            "language": r.language,
                            "fields": json.dumps(r.fields),
                            "state": r.state.value,
                            "error": r.error,
                        }
                        for i, r in enumerate(recipients, 1)
                    ),
                )
                (pending,) = cx.execute(COUNT_PENDING_SINCE, (campaign_id, last)).fetchone()
            return int(pending)

        return await self._run("add campaign recipients", job)

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        def job(cx: sqlite3.Connection) -> Campaign | None:
            row = cx.execute(GET_CAMPAIGN, (campaign_id,)).fetchone()
            return None if row is None else _campaign(row)

        return await self._run("get campaign", job)

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        def job(cx: sqlite3.Connection) -> list[Campaign]:
            found = (
                cx.execute(LIST_CAMPAIGNS)
                if status is None
                else cx.execute(LIST_CAMPAIGNS_IN, (status.value,))
            )
            return [_campaign(row) for row in found.fetchall()]

        return await self._run("list campaigns", job)

    async def set_campaign_status(
        self, campaign_id: str, status: CampaignStatus, now: float
    ) -> Campaign | None:
        allowed = json.dumps([s.value for s in TRANSITIONS[status]])
        args = {"status": status.value, "now": now, "id": campaign_id, "allowed": allowed}

        def job(cx: sqlite3.Connection) -> Campaign | None:
            with transaction(cx):
                cx.execute(SET_STATUS, args)
                row = cx.execute(GET_CAMPAIGN, (campaign_id,)).fetchone()
            return None if row is None else _campaign(row)

        return await self._run("set campaign status", job)

    async def campaign_counts(self, campaign_id: str) -> CampaignCounts:
        def job(cx: sqlite3.Connection) -> CampaignCounts:
            states = dict(cx.execute(COUNT_STATES, (campaign_id,)).fetchall())
            sent, delivered, failed, replied, completed = cx.execute(
                COUNT_OUTCOMES, (campaign_id,)
            ).fetchone()
            return counts_from(states, sent, delivered, failed, replied, completed)

        return await self._run("count campaign", job)

    async def claim_recipients(self, campaign_id: str, now: float, limit: int) -> list[Recipient]:
        args = {"id": campaign_id, "now": now, "limit": limit}

        def job(cx: sqlite3.Connection) -> list[Recipient]:
            with transaction(cx):
                found = [_recipient(row) for row in cx.execute(CLAIM, args).fetchall()]
            return sorted(found, key=lambda r: (r.not_before, r.seq))

        return await self._run("claim campaign recipients", job)

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
        args = {
            "id": campaign_id,
            "seq": seq,
            "state": state.value,
            "now": now,
            "not_before": not_before,
            "message_id": message_id,
            "error": error,
        }
        await self._run("settle campaign recipient", lambda cx: cx.execute(SETTLE, args) and None)

    async def interrupted(self, limit: int = 500) -> list[Recipient]:
        def job(cx: sqlite3.Connection) -> list[Recipient]:
            return [_recipient(row) for row in cx.execute(INTERRUPTED, (limit,)).fetchall()]

        return await self._run("list interrupted campaign starts", job)
