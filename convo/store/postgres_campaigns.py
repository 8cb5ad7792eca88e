"""The PostgreSQL store's campaigns (:class:`~convo.campaigns.storage.CampaignStore`): their
statements and the methods that run them, mixed into
:class:`~convo.store.postgres.PostgresStore`. The tables are created by migration 6 of
:mod:`convo.store.postgres_schema`; rows are read and written by
:mod:`convo.store.campaign_rows`, as SQLite's.

What several processes on one database rest on:

* **a recipient is started by one process**: :meth:`PostgresCampaigns.claim_recipients`
  locks the due ``pending`` rows ``FOR UPDATE SKIP LOCKED`` and moves them to
  ``starting`` in the same statement, so of two runners claiming at once each gets other
  rows (a row the other is claiming is skipped, never waited for, never taken twice);
* **a number is in a campaign once**: a unique index on (campaign, number) over the usable
  rows; a batch inserts with ``ON CONFLICT DO NOTHING``, and what the index refused is
  stored again as ``skipped_duplicate``, naming the row it repeats. Batches of one
  campaign are added one at a time (the campaign's row is locked), so row numbers (``seq``)
  follow the order they were given;
* **a process that dies loses no recipient**: a claim carries the claiming store
  instance's number (``claimed_by``, the owner of its presence lock, see
  :mod:`convo.store.postgres_connection`) and a lease on the database's clock.
  :meth:`PostgresCampaigns.interrupted` hands the caller the claims of processes that
  are gone (presence lock dropped) once their lease has passed, and its own: it takes
  them over in one statement, so two processes never settle the same one. The lease
  keeps a process whose presence connection broke for a moment (its starts still under
  way) from losing its claims to another process in that moment.
"""

# Statements are constant strings built from this module's constants; values always travel
# as parameters. Hence, for the whole file:
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import asyncpg

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
from convo.store import campaign_rows as rows
from convo.store.postgres_connection import PRESENCE, Job, PostgresConnection

T = TypeVar("T")
Connection = Any  # asyncpg's connection, or the pool's proxy of one

CLAIM_LEASE = 60.0
"""Seconds (on the database's clock) before the claim of a process that seems gone may be
taken over: far longer than a start takes."""

_CAMPAIGN = rows.CAMPAIGN_COLUMNS
_RECIPIENT = rows.RECIPIENT_COLUMNS
_R_RECIPIENT = ", ".join(f"r.{c}" for c in _RECIPIENT.split(", "))
_USABLE = "state NOT IN ('skipped_invalid', 'skipped_duplicate')"
_NOW = "extract(epoch FROM clock_timestamp())::float8"  # the database's clock

INSERT_CAMPAIGN = (
    f"INSERT INTO campaigns ({_CAMPAIGN}) VALUES ({', '.join(f'${n}' for n in range(1, 14))})"
)
GET_CAMPAIGN = f"SELECT {_CAMPAIGN} FROM campaigns WHERE id = $1"
LIST_CAMPAIGNS = f"SELECT {_CAMPAIGN} FROM campaigns ORDER BY created_at DESC, id"
LIST_CAMPAIGNS_IN = (
    f"SELECT {_CAMPAIGN} FROM campaigns WHERE status = $1 ORDER BY created_at DESC, id"
)
# The campaign's row stays locked until the batch commits: batches of one campaign are
# numbered one after the other. None when there is no such campaign.
LOCK_FOR_BATCH = (
    "SELECT (SELECT coalesce(max(seq), 0) FROM campaign_recipients WHERE campaign_id = $1) "
    "FROM campaigns WHERE id = $1 FOR UPDATE"
)
_BATCH = (
    "unnest($2::integer[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::text[], "
    "$8::text[], $9::text[], $10::text[]) WITH ORDINALITY "
    "AS b (seq, number, row, timezone, name, language, fields, state, error, at)"
)
# In the batch's order, so of two rows with one number the first stays; a usable row whose
# number the campaign has (or the batch had, a row before) is left out: RETURNING says
# which went in.
INSERT_RECIPIENTS = (
    f"INSERT INTO campaign_recipients ({_RECIPIENT}) "
    "SELECT $1, b.seq, b.number, b.row, b.timezone, b.name, b.language, b.fields, b.state, "
    f"0, NULL, NULL, NULL, b.error FROM {_BATCH} ORDER BY b.at "
    f"ON CONFLICT (campaign_id, number) WHERE {_USABLE} DO NOTHING RETURNING seq, state"
)
# The rows the index refused, as duplicates of the row that holds their number.
INSERT_DUPLICATES = (
    f"INSERT INTO campaign_recipients ({_RECIPIENT}) "
    "SELECT $1, b.seq, b.number, b.row, b.timezone, b.name, b.language, b.fields, "
    "'skipped_duplicate', 0, NULL, NULL, NULL, 'the same number as row ' || "
    "(SELECT e.row FROM campaign_recipients AS e WHERE e.campaign_id = $1 "
    f"AND e.number = b.number AND e.{_USABLE}) FROM {_BATCH} ORDER BY b.at"
)
SET_STATUS = (
    "UPDATE campaigns SET status = $2, updated_at = $3 WHERE id = $1 "
    "AND status = ANY($4::text[]) AND NOT ($2::text = 'done' AND EXISTS "
    "(SELECT 1 FROM campaign_recipients WHERE campaign_id = $1 "
    "AND state IN ('pending', 'starting')))"
)
COUNT_STATES = (
    "SELECT state, count(*) FROM campaign_recipients WHERE campaign_id = $1 GROUP BY state"
)
# Of the started recipients: first text sent (or call placed), delivered, failed; the
# contact wrote back since the start; the conversation the start opened has ended.
COUNT_OUTCOMES = (
    "SELECT count(*) FILTER (WHERE m.status IN ('sent', 'delivered') "
    "OR (r.message_id IS NULL AND c.channel = 'voice')), "
    "count(*) FILTER (WHERE m.status = 'delivered'), "
    "count(*) FILTER (WHERE m.status IN ('failed', 'undelivered', 'dead')), "
    "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM messages AS i WHERE i.contact = r.number "
    "AND i.created_at >= r.claimed_at AND i.direction = 'inbound' AND i.line = c.line)), "
    "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM sessions AS s WHERE s.line = c.line "
    "AND s.channel = c.channel AND s.contact = r.number AND s.status = 'ended' "
    "AND s.created_at >= r.claimed_at)) "
    "FROM campaign_recipients AS r JOIN campaigns AS c ON c.id = r.campaign_id "
    "LEFT JOIN messages AS m ON m.id = r.message_id "
    "WHERE r.campaign_id = $1 AND r.state = 'started'"
)
# $1 campaign, $2 now (the caller's clock, kept as claimed_at), $3 limit, $4 this store
# instance, $5 the lease in seconds. Rows another runner is claiming right now are skipped
# (SKIP LOCKED); a row it claimed since this statement's snapshot is re-checked when
# locked, found no longer pending, and left out.
CLAIM = (
    "WITH due AS (SELECT seq FROM campaign_recipients "
    "WHERE campaign_id = $1 AND state = 'pending' AND not_before <= $2 "
    "AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND status = 'running') "
    "ORDER BY not_before, seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
    "UPDATE campaign_recipients AS r SET state = 'starting', claimed_at = $2, "
    f"claimed_by = $4, lease_until = {_NOW} + $5::float8 "
    f"FROM due WHERE r.campaign_id = $1 AND r.seq = due.seq RETURNING {_R_RECIPIENT}"
)
SETTLE = (
    "UPDATE campaign_recipients SET state = $3, not_before = $4, "
    "started_at = CASE WHEN $3::text = 'started' THEN $5::float8 ELSE started_at END, "
    "message_id = coalesce($6::text, message_id), error = $7 "
    "WHERE campaign_id = $1 AND seq = $2"
)
# The presence locks held now: the store instances whose processes live
# (convo.store.postgres_connection.PRESENCE; the same test as the outbox's RELEASE_CLAIMS).
_LIVE = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = $3 "
    "AND objsubid = 2 AND granted AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)
# $1 limit, $2 this store instance, $3 PRESENCE. The claims of processes that are gone,
# once their lease has passed, become this instance's (their claim time kept); with its
# own claims, the oldest $1 of them.
INTERRUPTED = (
    "WITH cut AS (SELECT campaign_id, seq FROM campaign_recipients WHERE state = 'starting' "
    f"AND claimed_by <> $2 AND lease_until < {_NOW} AND claimed_by NOT IN ({_LIVE}) "
    "ORDER BY claimed_at LIMIT $1 FOR UPDATE SKIP LOCKED), "
    "taken AS (UPDATE campaign_recipients AS r SET claimed_by = $2 FROM cut "
    f"WHERE r.campaign_id = cut.campaign_id AND r.seq = cut.seq RETURNING {_R_RECIPIENT}) "
    f"(SELECT {_RECIPIENT} FROM taken UNION ALL SELECT {_RECIPIENT} FROM campaign_recipients "
    "WHERE state = 'starting' AND claimed_by = $2) ORDER BY claimed_at LIMIT $1"
)
ERASE_RECIPIENTS = "DELETE FROM campaign_recipients WHERE number = $1"


class PostgresCampaigns:
    """:class:`~convo.campaigns.storage.CampaignStore` over the store's pool (module
    docstring). ``claim_lease`` is :data:`CLAIM_LEASE` unless set on the instance."""

    claim_lease: float = CLAIM_LEASE
    _cx: PostgresConnection  # PostgresStore's: its ``owner`` is what claims carry

    def _run(self, what: str, job: Job[T], *, transaction: bool = False) -> Awaitable[T]:
        raise NotImplementedError  # PostgresStore's

    async def create_campaign(self, campaign: Campaign) -> None:
        values = _text(rows.campaign_row(campaign))

        async def job(cx: Connection) -> None:
            try:
                await cx.execute(INSERT_CAMPAIGN, *values)
            except asyncpg.UniqueViolationError:
                raise StoreError(f"campaign {campaign.id!r} exists already") from None

        await self._run("create campaign", job)

    async def add_recipients(self, campaign_id: str, recipients: Sequence[NewRecipient]) -> int:
        campaign_id = _text((campaign_id,))[0]

        async def job(cx: Connection) -> int:
            last = await cx.fetchval(LOCK_FOR_BATCH, campaign_id)
            if last is None:
                raise StoreError(f"no campaign {campaign_id!r}")
            batch = _batch(int(last), recipients)
            went_in = await cx.fetch(INSERT_RECIPIENTS, campaign_id, *batch)
            inserted = {r[0] for r in went_in}
            if len(inserted) < len(recipients):
                refused = [i for i, seq in enumerate(batch[0]) if seq not in inserted]
                await cx.execute(
                    INSERT_DUPLICATES, campaign_id, *([c[i] for i in refused] for c in batch)
                )
            return sum(1 for r in went_in if r[1] == RecipientState.PENDING.value)

        if not recipients:
            return 0
        return await self._run("add campaign recipients", job, transaction=True)

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        async def job(cx: Connection) -> Campaign | None:
            row = await cx.fetchrow(GET_CAMPAIGN, *_text((campaign_id,)))
            return None if row is None else rows.campaign(row)

        return await self._run("get campaign", job)

    async def list_campaigns(self, status: CampaignStatus | None = None) -> list[Campaign]:
        async def job(cx: Connection) -> list[Campaign]:
            found = (
                await cx.fetch(LIST_CAMPAIGNS)
                if status is None
                else await cx.fetch(LIST_CAMPAIGNS_IN, status.value)
            )
            return [rows.campaign(r) for r in found]

        return await self._run("list campaigns", job)

    async def set_campaign_status(
        self, campaign_id: str, status: CampaignStatus, now: float
    ) -> Campaign | None:
        (campaign_id,) = _text((campaign_id,))
        allowed = [s.value for s in TRANSITIONS[status]]

        async def job(cx: Connection) -> Campaign | None:
            await cx.execute(SET_STATUS, campaign_id, status.value, now, allowed)
            row = await cx.fetchrow(GET_CAMPAIGN, campaign_id)
            return None if row is None else rows.campaign(row)

        return await self._run("set campaign status", job, transaction=True)

    async def campaign_counts(self, campaign_id: str) -> CampaignCounts:
        (campaign_id,) = _text((campaign_id,))

        async def job(cx: Connection) -> CampaignCounts:
            states = {r[0]: int(r[1]) for r in await cx.fetch(COUNT_STATES, campaign_id)}
            outcomes = await cx.fetchrow(COUNT_OUTCOMES, campaign_id)
            return rows.counts_from(states, *outcomes)

        return await self._run("count campaign", job)

    async def claim_recipients(self, campaign_id: str, now: float, limit: int) -> list[Recipient]:
        (campaign_id,) = _text((campaign_id,))
        args = (campaign_id, now, max(limit, 0), self._cx.owner, self.claim_lease)

        async def job(cx: Connection) -> list[Recipient]:
            return [rows.recipient(r) for r in await cx.fetch(CLAIM, *args)]

        await self._cx.keep_presence()  # what keeps other processes off these claims
        found = await self._run("claim campaign recipients", job)
        return sorted(found, key=lambda r: (r.not_before, r.seq))

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
        text = _text((campaign_id, message_id, error))
        args = (text[0], seq, state.value, not_before, now, text[1], text[2])

        async def job(cx: Connection) -> None:
            await cx.execute(SETTLE, *args)

        await self._run("settle campaign recipient", job)

    async def interrupted(self, limit: int = 500) -> list[Recipient]:
        """The claims left ``starting`` by this store instance, and by processes that are
        gone once their lease has passed, oldest first: each becomes this instance's
        (module docstring), so no other process lists it while this one settles it."""
        args = (max(limit, 0), self._cx.owner, PRESENCE)

        async def job(cx: Connection) -> list[Recipient]:
            return [rows.recipient(r) for r in await cx.fetch(INTERRUPTED, *args)]

        found = await self._run("take over interrupted campaign starts", job)
        return sorted(found, key=lambda r: (r.claimed_at or 0.0, r.campaign_id, r.seq))


def _batch(last: int, recipients: Sequence[NewRecipient]) -> list[list[Any]]:
    """The batch as one list per column of :data:`_BATCH`, numbered from ``last + 1``."""
    columns: list[list[Any]] = [[] for _ in range(9)]
    for i, r in enumerate(recipients, 1):
        values = (
            last + i,
            r.number,
            r.row,
            r.timezone,
            r.name,
            r.language,
            json.dumps(r.fields),
            r.state.value,
            r.error,
        )
        for column, value in zip(columns, _text(values), strict=True):
            column.append(value)
    return columns


def _text(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with U+0000 in strings as U+FFFD (PostgreSQL's text cannot hold it; see
    :mod:`convo.store.postgres`)."""
    return tuple(
        v.replace("\0", "\ufffd") if isinstance(v, str) and "\0" in v else v for v in values
    )
