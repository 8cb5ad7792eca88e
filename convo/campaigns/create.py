"""Creating a campaign: check what it asks for against the configuration, then store it
and stream its recipients into the store in batches.

:func:`plan_campaign` turns a :class:`CampaignRequest` into a :class:`Campaign`, or raises
``UnknownFlow`` or ``UnknownLine`` (no such flow or line, as ``convo.outbound`` does) or
:class:`~convo.campaigns.model.CampaignError` (anything else, saying what):

* the flow must be one of the server's flows, and speak the channel;
* the line defaults to the first line whose own flow is this flow and that carries the
  channel, else the first line that carries the channel; a line carries ``voice`` when it
  has a voice provider;
* the channel defaults to the flow's first;
* params must be ones the flow declares (each recipient may add its own, by CSV column);
* ``rate_per_second`` must be above 0 and at most the line's provider rate limit; None
  means that limit.

:func:`store_campaign` stores the campaign, then its recipients :data:`BATCH` at a time,
each batch one transaction, so creating a campaign of 100,000 contacts holds one batch in
memory. The campaign is stored ``paused`` until its last batch is in, then ``running``,
so a runner never finishes it half-filled.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convo.campaigns.model import (
    Campaign,
    CampaignError,
    CampaignStatus,
    NewRecipient,
    QuietHours,
    RecipientState,
)
from convo.exceptions import InvalidNumber, UnknownFlow, UnknownLine
from convo.models import Channel, Contact, new_id

if TYPE_CHECKING:
    from convo.campaigns.storage import StoreWithCampaigns
    from convo.config import LineSettings, Settings
    from convo.flow.spec import FlowSpec

BATCH = 2000

RateLimit = Callable[[str, Channel], float]


@dataclass(frozen=True, slots=True)
class CampaignRequest:
    """What a user asks for (``POST /api/campaigns``, ``convo broadcast``)."""

    flow: str
    name: str = ""
    line: str | None = None
    channel: Channel | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    start_at: float = 0.0
    quiet_hours: QuietHours | None = None
    rate_per_second: float | None = None


def plan_campaign(
    request: CampaignRequest,
    *,
    settings: Settings,
    flows: Mapping[str, FlowSpec],
    rate_limit: RateLimit,
    clock: Callable[[], float] = time.time,
) -> Campaign:
    """The campaign ``request`` describes, checked (module docstring); not stored."""
    spec = flows.get(request.flow)
    if spec is None:
        known = ", ".join(sorted(flows)) or "none"
        raise UnknownFlow(f"flow {request.flow!r} is not one of ours (flows: {known})")
    channel = request.channel or ("sms" if "sms" in spec.channels else "voice")
    if channel not in spec.channels:
        raise CampaignError(
            f"flow {spec.id!r} has no {channel} channel (channels: {', '.join(spec.channels)})"
        )
    line = _line(request.line, spec.id, channel, settings)
    unknown = sorted(set(request.params) - set(spec.params))
    if unknown:
        declared = ", ".join(sorted(spec.params)) or "none"
        raise CampaignError(
            f"params: flow {spec.id!r} declares no {', '.join(unknown)} (params: {declared})"
        )
    limit = rate_limit(line.number, channel)
    rate = limit if request.rate_per_second is None else request.rate_per_second
    if not 0 < rate <= limit:
        raise CampaignError(
            f"rate_per_second: expected more than 0 and at most {limit:g} (the rate limit "
            f"of line {line.number}'s provider), got {rate:g}"
        )
    now = clock()
    return Campaign(
        id=new_id(),
        name=request.name or f"{spec.id} {time.strftime('%Y-%m-%d %H:%M', time.gmtime(now))}",
        flow=spec.id,
        line=line.number,
        channel=channel,
        rate_per_second=rate,
        params=dict(request.params),
        start_at=request.start_at,
        quiet_hours=request.quiet_hours,
        status=CampaignStatus.PAUSED,
        created_at=now,
        updated_at=now,
    )


async def store_campaign(
    store: StoreWithCampaigns,
    campaign: Campaign,
    recipients: Iterable[NewRecipient],
    *,
    running: bool = True,
    required: Collection[str] = (),
    clock: Callable[[], float] = time.time,
) -> Campaign:
    """Store ``campaign`` and its ``recipients`` (module docstring); returns it as stored,
    ``running`` (or left ``paused``). What ``recipients`` raises (a CSV without header)
    is raised before the campaign is stored when it comes with the first row, and so is a
    :class:`CampaignError` when a ``required`` param (:func:`required_params`) is neither
    in the campaign's params nor a field of its first usable recipient (a CSV column):
    every start would fail.

    A recipient that comes with more than its number (a name, a language or fields) is
    also a contact: it is created or replaced in the contacts, batch by batch, as ``convo
    contacts import`` does, so the flow's templates see ``contact.name`` and
    ``contact.fields`` and its language is the contact's."""
    rows = iter(recipients)

    def next_batch() -> list[NewRecipient]:
        return list(itertools.islice(rows, BATCH))

    # Reading rows (numbers checked one by one) takes some 50 us each: in a thread, so a
    # large file never holds the event loop (the server's webhooks), and the next batch is
    # read while the store writes this one (SQLite lets go of the GIL while it works).
    batch = await asyncio.to_thread(next_batch)
    _check_covered(required, campaign, batch)
    await store.create_campaign(campaign)
    while batch:
        following = asyncio.ensure_future(asyncio.to_thread(next_batch))
        try:
            await store.add_recipients(campaign.id, batch)
            known = [c for r in batch if (c := _known(r)) is not None]
            if known:
                await store.put_contacts(known)
        except BaseException:
            following.cancel()  # the thread finishes its batch; nobody reads it
            raise
        batch = await following
    if running:
        moved = await store.set_campaign_status(campaign.id, CampaignStatus.RUNNING, clock())
        if moved is not None:
            return moved
    return campaign


def _known(r: NewRecipient) -> Contact | None:
    """The contact a usable row tells more of than its number, else None."""
    c = r.contact
    if r.state is not RecipientState.PENDING or c is None:
        return None
    return c if c.name is not None or c.lang is not None or c.fields else None


def required_params(spec: FlowSpec) -> list[str]:
    """The params ``spec`` requires and has no default for."""
    return [name for name, p in spec.params.items() if p.required and p.default is None]


def _check_covered(
    required: Collection[str], campaign: Campaign, batch: list[NewRecipient]
) -> None:
    first = next((r for r in batch if r.state is RecipientState.PENDING), None)
    if first is None:
        return
    missing = [n for n in required if n not in campaign.params and n not in first.fields]
    if missing:
        raise CampaignError(
            f"params: flow {campaign.flow!r} requires {', '.join(missing)}: give it in the "
            "campaign's params (--param NAME=VALUE) or as a column of that name"
        )


def fallback_zone(line: str) -> str | None:
    """The time zone a line's number implies: where a recipient with none is assumed."""
    from convo.contacts.zones import timezone_for_number

    return timezone_for_number(line) if line.startswith("+") else None


def _line(given: str | None, flow: str, channel: Channel, settings: Settings) -> LineSettings:
    from convo.runtime.wiring import voice_provider_name
    from convo.sms.phone import is_sender_id, normalize

    def carries(line: LineSettings) -> bool:
        if channel == "voice":
            return voice_provider_name(settings, line) is not None
        return channel in line.channels

    if given is None:
        found = [ln for ln in settings.lines if ln.flow == flow and carries(ln)] or [
            ln for ln in settings.lines if carries(ln)
        ]
        if not found:
            raise UnknownLine(f"no line carries {channel} (configure [[lines]])")
        return found[0]
    try:
        number = given if is_sender_id(given) else normalize(given)
    except InvalidNumber as exc:
        raise CampaignError(f"line: {exc}") from None
    for line in settings.lines:
        if line.number == number:
            if not carries(line):
                raise CampaignError(f"line {number} does not carry {channel}")
            return line
    known = ", ".join(ln.number for ln in settings.lines) or "none"
    raise UnknownLine(f"line {number} is not one of ours (lines: {known})")
