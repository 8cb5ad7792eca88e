"""Rows of the SQL stores' campaign tables (SQLite and PostgreSQL) to and from the values
of :mod:`convo.campaigns.model`.

Both stores keep ``campaigns`` and ``campaign_recipients`` in the same columns, in the
order :data:`CAMPAIGN_COLUMNS` and :data:`RECIPIENT_COLUMNS` list (the statements of
:mod:`convo.store.sqlite_campaigns` and :mod:`convo.store.postgres_campaigns` select them
so). ``params`` and ``fields`` hold compact JSON text; quiet hours are two ``HH:MM`` texts.
A row is any sequence of column values: a tuple from sqlite3, a record from asyncpg.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from convo.campaigns.model import (
    Campaign,
    CampaignCounts,
    CampaignStatus,
    QuietHours,
    Recipient,
    RecipientState,
    parse_clock,
)

CAMPAIGN_COLUMNS = (
    "id, name, flow, line, channel, params, start_at, quiet_from, quiet_to, rate, status, "
    "created_at, updated_at"
)
RECIPIENT_COLUMNS = (
    "campaign_id, seq, number, row, timezone, name, language, fields, state, not_before, "
    "claimed_at, started_at, message_id, error"
)
SKIPPED_AT_ENTRY = ("skipped_invalid", "skipped_duplicate")
"""The states of rows that are not in the campaign's numbers (a number may repeat them)."""


def campaign_row(campaign: Campaign) -> tuple[Any, ...]:
    """The values of :data:`CAMPAIGN_COLUMNS` for ``campaign``."""
    quiet = campaign.quiet_hours
    return (
        campaign.id,
        campaign.name,
        campaign.flow,
        campaign.line,
        campaign.channel,
        json.dumps(campaign.params),
        campaign.start_at,
        f"{quiet.start:%H:%M}" if quiet else None,
        f"{quiet.end:%H:%M}" if quiet else None,
        campaign.rate_per_second,
        campaign.status.value,
        campaign.created_at,
        campaign.updated_at,
    )


def campaign(row: Sequence[Any]) -> Campaign:
    """A campaign from the values of :data:`CAMPAIGN_COLUMNS`."""
    (
        id_,
        name,
        flow,
        line,
        channel,
        params,
        start_at,
        quiet_from,
        quiet_to,
        rate,
        status,
        created_at,
        updated_at,
    ) = row
    quiet = (
        QuietHours(parse_clock(quiet_from, "quiet_from"), parse_clock(quiet_to, "quiet_to"))
        if quiet_from is not None
        else None
    )
    return Campaign(
        id=id_,
        name=name,
        flow=flow,
        line=line,
        channel=channel,
        rate_per_second=rate,
        params=json.loads(params),
        start_at=start_at,
        quiet_hours=quiet,
        status=CampaignStatus(status),
        created_at=created_at,
        updated_at=updated_at,
    )


def recipient(row: Sequence[Any]) -> Recipient:
    """A recipient from the values of :data:`RECIPIENT_COLUMNS`."""
    (
        campaign_id,
        seq,
        number,
        row_no,
        timezone,
        name,
        language,
        fields,
        state,
        not_before,
        claimed_at,
        started_at,
        message_id,
        error,
    ) = row
    return Recipient(
        campaign_id=campaign_id,
        seq=seq,
        number=number,
        row=row_no,
        timezone=timezone,
        name=name,
        language=language,
        fields=json.loads(fields),
        state=RecipientState(state),
        not_before=not_before,
        claimed_at=claimed_at,
        started_at=started_at,
        message_id=message_id,
        error=error,
    )


def counts_from(
    states: Mapping[str, int],
    sent: int,
    delivered: int,
    failed: int,
    replied: int,
    completed: int,
) -> CampaignCounts:
    """The counts from how many recipients are in each state and the started ones'
    outcomes (every store's)."""

    def of(state: RecipientState) -> int:
        return int(states.get(state.value, 0))

    return CampaignCounts(
        total=sum(int(n) for n in states.values()),
        pending=of(RecipientState.PENDING) + of(RecipientState.STARTING),
        started=of(RecipientState.STARTED),
        sent=int(sent),
        delivered=int(delivered),
        failed=of(RecipientState.FAILED) + int(failed),
        replied=int(replied),
        completed=int(completed),
        skipped_opted_out=of(RecipientState.SKIPPED_OPTED_OUT),
        skipped_invalid=of(RecipientState.SKIPPED_INVALID),
        skipped_duplicate=of(RecipientState.SKIPPED_DUPLICATE),
    )
