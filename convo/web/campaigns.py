"""Admin API for campaigns (one flow started on many contacts; :mod:`convo.campaigns`).

* ``POST /api/campaigns`` ``{"flow", "name", "line", "channel", "params", "start_at",
  "quiet_hours": {"from": "21:00", "to": "09:00"}, "rate_per_second"}`` with the contacts
  as ``"contacts": [...]`` (numbers, or objects ``{"number", "name", "language",
  "timezone", "fields"}``) or ``"csv": "number,name\\n..."`` (a header row with a
  ``number`` column; other columns become fields, and those named like a flow param fill
  it for that contact). Only ``flow`` and the contacts are required. Answers 201 with the
  campaign, its ``counts`` and ``skipped``: the first 100 rows left out, each with its
  ``row`` (CSV line, or 1-based position in the list), ``number``, ``state`` and
  ``reason``. A bad body or CSV header is a 400, an unknown flow or line a 404 (``UnknownFlow``,
  ``UnknownLine``: the app's error table), each ``{"error"}`` saying which. Rows with more
  than a number are imported as contacts (:func:`convo.campaigns.create.store_campaign`).
* ``GET /api/campaigns``: every campaign, newest first, ``{"campaigns": [...]}``.
* ``GET /api/campaigns/{id}``: the campaign and its ``counts`` (total, pending, started,
  sent, delivered, failed, replied, completed, skipped_opted_out, skipped_invalid,
  skipped_duplicate).
* ``POST /api/campaigns/{id}/pause``, ``/resume``, ``/cancel``: 200 with the campaign;
  404 for an unknown id; 409 when it cannot go there from where it is (a cancelled or
  finished campaign stays so).

The body is at most the server's request size limit (1 MiB: some 30,000 contacts); larger
lists go through ``convo broadcast``, which writes to the store directly. Every route
needs the admin token (:func:`convo.web.api.admin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from convo.campaigns.create import (
    CampaignRequest,
    fallback_zone,
    plan_campaign,
    required_params,
    store_campaign,
)
from convo.campaigns.intake import from_csv, from_list, noting_skipped
from convo.campaigns.model import (
    Campaign,
    CampaignError,
    CampaignStatus,
    NewRecipient,
    QuietHours,
    parse_clock,
    parse_start_at,
)
from convo.campaigns.storage import StoreWithCampaigns, campaigns_of
from convo.contacts.csv_reader import read_csv_text
from convo.models import Channel
from convo.runtime.campaigns import line_rate_limit
from convo.web.api import admin
from convo.web.state import RUNTIME, SETTINGS, error_response

_KEYS = frozenset(
    {
        "flow",
        "name",
        "line",
        "channel",
        "params",
        "start_at",
        "quiet_hours",
        "rate_per_second",
        "contacts",
        "csv",
    }
)
_ACTIONS = {
    "pause": CampaignStatus.PAUSED,
    "resume": CampaignStatus.RUNNING,
    "cancel": CampaignStatus.CANCELLED,
}


@admin
async def create(request: web.Request) -> web.StreamResponse:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        return error_response(400, "expected a JSON object")
    runtime, settings = request.app[RUNTIME], request.app[SETTINGS]
    try:
        asked, contacts = _request(body)

        def rate_limit(line: str, channel: Channel) -> float:
            return line_rate_limit(
                settings, runtime.providers, runtime.voice_providers, line, channel
            )

        campaign = plan_campaign(
            asked, settings=settings, flows=runtime.flows, rate_limit=rate_limit
        )
        zone = fallback_zone(campaign.line)
        rows: Iterable[NewRecipient]
        if isinstance(contacts, str):
            rows = from_csv(read_csv_text(contacts), zone)
        else:  # in the body already: checked whole before anything is stored
            rows = await asyncio.to_thread(list, from_list(contacts, zone))
        skipped: list[NewRecipient] = []
        required = required_params(runtime.flows[campaign.flow])
        stored = await store_campaign(
            _store(request), campaign, noting_skipped(rows, skipped), required=required
        )
    except CampaignError as exc:
        return error_response(400, str(exc))
    _wake(request)
    answer = await _shown(request, stored)
    answer["skipped"] = [
        {"row": r.row, "number": r.number, "state": r.state.value, "reason": r.error}
        for r in skipped
    ]
    return web.json_response(answer, status=201)


@admin
async def list_all(request: web.Request) -> web.StreamResponse:
    found = await _store(request).list_campaigns()
    return web.json_response({"campaigns": [c.to_json() for c in found]})


@admin
async def show(request: web.Request) -> web.StreamResponse:
    campaign = await _store(request).get_campaign(request.match_info["id"])
    if campaign is None:
        return error_response(404, f"no campaign {request.match_info['id']!r}")
    return web.json_response(await _shown(request, campaign))


@admin
async def act(request: web.Request) -> web.StreamResponse:
    campaign_id, action = request.match_info["id"], request.match_info["action"]
    target = _ACTIONS[action]
    store = _store(request)
    before = await store.get_campaign(campaign_id)
    if before is None:
        return error_response(404, f"no campaign {campaign_id!r}")
    after = await store.set_campaign_status(campaign_id, target, time.time())
    if after is None or after.status is not target:
        now = after.status.value if after else before.status.value
        return error_response(409, f"campaign {campaign_id} is {now}: cannot {action} it")
    _wake(request, after)
    return web.json_response(await _shown(request, after))


def _store(request: web.Request) -> StoreWithCampaigns:
    """The app's store, as the store of campaigns every backend is."""
    return campaigns_of(request.app[RUNTIME].store)


def _wake(request: web.Request, changed: Campaign | None = None) -> None:
    """Tell the runner (there is none with a custom engine: nothing to tell)."""
    with contextlib.suppress(RuntimeError):
        request.app[RUNTIME].campaigns.wake(changed)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/campaigns", create)
    app.router.add_get("/api/campaigns", list_all)
    app.router.add_get("/api/campaigns/{id}", show)
    app.router.add_post("/api/campaigns/{id}/{action:pause|resume|cancel}", act)


async def _shown(request: web.Request, campaign: Campaign) -> dict[str, Any]:
    counts = await _store(request).campaign_counts(campaign.id)
    return campaign.to_json() | {"counts": counts.to_json()}


def _request(body: object) -> tuple[CampaignRequest, str | list[object]]:
    """The campaign asked for and its contacts (CSV text or a list); CampaignError saying
    what is wrong with the body."""
    if not isinstance(body, dict):
        raise CampaignError("expected a JSON object")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise CampaignError(f"unknown key(s): {', '.join(unknown)}")
    if not isinstance(body.get("flow"), str):
        raise CampaignError('flow: required, the id of a flow ("reminder")')
    contacts: Any = body.get("contacts")
    csv_text: Any = body.get("csv")
    if (contacts is None) == (csv_text is None):
        raise CampaignError('give the contacts as "contacts": [...] or "csv": "..." (one)')
    if contacts is not None and not isinstance(contacts, list):
        raise CampaignError("contacts: expected a list")
    if csv_text is not None and not isinstance(csv_text, str):
        raise CampaignError("csv: expected the CSV file's text")
    for key in ("name", "line"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise CampaignError(f"{key}: expected text")
    channel = body.get("channel")
    if channel is not None and channel not in ("sms", "voice"):
        raise CampaignError(f"channel: expected sms or voice, got {channel!r}")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise CampaignError("params: expected an object")
    rate = body.get("rate_per_second")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
        raise CampaignError("rate_per_second: expected a number")
    try:
        start_at = parse_start_at(body["start_at"]) if body.get("start_at") is not None else 0.0
        quiet = _quiet_hours(body.get("quiet_hours"))
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    asked = CampaignRequest(
        flow=body["flow"],
        name=body.get("name") or "",
        line=body.get("line"),
        channel=channel,
        params=params,
        start_at=start_at,
        quiet_hours=quiet,
        rate_per_second=None if rate is None else float(rate),
    )
    if isinstance(csv_text, str):
        return asked, csv_text
    return asked, list(contacts or ())


def _quiet_hours(given: object) -> QuietHours | None:
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) != {"from", "to"}:
        raise ValueError('quiet_hours: expected {"from": "21:00", "to": "09:00"}')
    return QuietHours(
        parse_clock(given["from"], "quiet_hours.from"), parse_clock(given["to"], "quiet_hours.to")
    )
