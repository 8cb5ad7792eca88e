"""``convo broadcast`` and ``convo campaigns``: campaigns from the command line.

Both work on the **store** named by the configuration, not through the admin API: the
server's campaign runner reads its campaigns from that same store (every poll, half a
second), so a campaign created here is run by the server that shares the store, with no
admin token to configure (``make run`` has none) and nothing held in a request: a CSV of
100,000 contacts streams from the file into the store in batches. A ``memory://`` store
lives inside one server and cannot be shared: there, use ``POST /api/campaigns``.

``convo broadcast FLOW --to FILE.csv`` checks the flow, line, channel, rate and params,
reports the rows it leaves out (with their line numbers), stores the campaign and follows
it with a progress bar until it is done. Ctrl-C pauses it (a paused campaign starts
nobody) and prints how to resume it. ``--dry-run`` only reports: contacts, invalid rows,
duplicates, opted-out contacts, and the first texts per language with their SMS parts and
the total. ``--strict`` refuses the whole file when a row is bad.

Exit codes: 0 the campaign is done (or the report is printed), 1 ``--strict`` found bad
rows or the campaign was cancelled, 2 bad usage or configuration, 130 interrupted
(paused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convo.campaigns.model import (
    Campaign,
    CampaignCounts,
    CampaignError,
    CampaignStatus,
    NewRecipient,
    QuietHours,
    RecipientState,
    parse_start_at,
)
from convo.exceptions import ConfigError

if TYPE_CHECKING:
    from convo.campaigns.preview import Preview
    from convo.campaigns.storage import StoreWithCampaigns as Store
    from convo.config import Settings

FOLLOW_EVERY = 0.5  # seconds between two looks at a followed campaign
IDLE_HINT = 5.0  # seconds without progress before saying that a server must run it
_FINAL = (CampaignStatus.DONE, CampaignStatus.CANCELLED)


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    """``convo broadcast`` and ``convo campaigns ...``; ``config`` gives ``--config``."""
    p = sub.add_parser(
        "broadcast",
        help="start a flow on every contact of a CSV file (a stored campaign)",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    p.add_argument("flow", help="flow id (in flows.paths: the server runs it)")
    p.add_argument(
        "--to",
        required=True,
        metavar="FILE.csv",
        help="contacts: a header row with a 'number' column",
    )
    p.add_argument("--line", help="our number to send from (default: the flow's line)")
    p.add_argument(
        "--channel", choices=["sms", "voice"], help="sms or voice (default: the flow's first)"
    )
    p.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="starts per second (default and most: the line's provider limit)",
    )
    p.add_argument(
        "--quiet-hours",
        metavar="FROM-TO",
        help="no starts between these local times of each contact, e.g. 21:00-09:00",
    )
    p.add_argument("--start-at", metavar="ISO", help="not before this time (ISO 8601)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a flow param for everyone (a CSV column of that name wins)",
    )
    p.add_argument("--name", default="", help="the campaign's name")
    p.add_argument("--dry-run", action="store_true", help="report only; send nothing")
    p.add_argument("--strict", action="store_true", help="refuse the file if any row is bad")
    p.add_argument("--no-follow", action="store_true", help="create it and return")
    p.set_defaults(func=cmd_broadcast)

    campaigns = sub.add_parser("campaigns", help="list, show, pause, resume or cancel campaigns")
    actions = campaigns.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", parents=[config], help="every campaign, newest first")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)
    p = actions.add_parser("show", parents=[config], help="a campaign and its counts")
    p.add_argument("id", help="the campaign's id")
    p.add_argument("--json", action="store_true", help="as one JSON object")
    p.set_defaults(func=cmd_show)
    for action, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        p = actions.add_parser(action, parents=[config], help=f"make a campaign {status}")
        p.add_argument("id", help="the campaign's id")
        p.set_defaults(func=cmd_change, status=CampaignStatus(status))


# -- convo broadcast ------------------------------------------------------------------------


def cmd_broadcast(args: argparse.Namespace) -> int:
    from convo.campaigns.create import CampaignRequest
    from convo.cli.args import parse_params
    from convo.config import load_settings

    settings = load_settings(args.config)
    try:
        request = CampaignRequest(
            flow=args.flow,
            name=args.name,
            line=args.line,
            channel=args.channel,
            params=parse_params(args.param),
            start_at=parse_start_at(args.start_at) if args.start_at else 0.0,
            quiet_hours=QuietHours.parse(args.quiet_hours) if args.quiet_hours else None,
            rate_per_second=args.rate,
        )
    except ValueError as exc:
        print(f"convo: broadcast: {exc}", file=sys.stderr)
        return 2
    if not Path(args.to).is_file():
        print(f"convo: broadcast: {args.to}: no such file", file=sys.stderr)
        return 2
    if not args.dry_run:
        _shared_store(settings)
    try:
        return asyncio.run(_broadcast(settings, request, args))
    except CampaignError as exc:
        print(f"convo: broadcast: {exc}", file=sys.stderr)
        return 2


async def _broadcast(settings: Settings, request: Any, args: argparse.Namespace) -> int:
    from convo.campaigns.create import (
        fallback_zone,
        plan_campaign,
        required_params,
        store_campaign,
    )
    from convo.campaigns.intake import from_csv, noting_skipped
    from convo.campaigns.storage import campaigns_of
    from convo.contacts.csv_reader import read_csv_file
    from convo.models import Channel
    from convo.runtime import Parts, Runtime
    from convo.runtime.campaigns import line_rate_limit
    from convo.runtime.wiring import line_flows

    flows = line_flows(settings, None)
    # The store and the adapters (for their rate limits); nothing is started or sent.
    async with Runtime(settings, parts=Parts(engine=False, serving=False)) as runtime:

        def rate_limit(line: str, channel: Channel) -> float:
            return line_rate_limit(
                settings, runtime.providers, runtime.voice_providers, line, channel
            )

        campaign = plan_campaign(request, settings=settings, flows=flows, rate_limit=rate_limit)
        zone = fallback_zone(campaign.line)

        def rows() -> Iterator[NewRecipient]:
            return from_csv(read_csv_file(args.to), zone)

        if args.dry_run:
            from convo.campaigns.preview import preview_campaign

            found = await preview_campaign(
                campaign, rows(), flows=flows, suppressions=runtime.store
            )
            _print_preview(campaign, found)
            return 0
        if args.strict:
            bad = [r for r in rows() if r.state is not RecipientState.PENDING]
            if bad:
                _print_skipped(bad)
                print(
                    f"convo: broadcast: --strict: {len(bad)} bad row(s) in {args.to}; "
                    "nothing was created",
                    file=sys.stderr,
                )
                return 1
        # From here Ctrl-C pauses the campaign (once it is stored) rather than killing us.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            skipped: list[NewRecipient] = []
            rows_in = noting_skipped(rows(), skipped)
            required = required_params(flows[campaign.flow])
            store = campaigns_of(runtime.store)
            stored = await store_campaign(store, campaign, rows_in, required=required)
            _print_skipped(skipped)
            print(
                f"campaign {stored.id} created: flow {stored.flow} on {stored.line} "
                f"({stored.channel}), {stored.rate_per_second:g}/s",
                flush=True,
            )
            if args.no_follow:
                return 0
            return await _follow(store, stored, stop)
        finally:
            loop.remove_signal_handler(signal.SIGINT)


def _shared_store(settings: Settings) -> None:
    from convo.store.urls import store_url

    if store_url(settings.store.url).backend == "memory":
        raise ConfigError(
            f"{settings.source}: [store] url is memory://, which lives inside one server and "
            "cannot be shared: create the campaign with POST /api/campaigns instead"
        )


async def _follow(store: Store, campaign: Campaign, stop: asyncio.Event) -> int:
    """Show the campaign's progress until it is done or cancelled; ``stop`` (Ctrl-C)
    pauses it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    last, idle_since, hinted = -1, time.monotonic(), False
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(campaign.name, total=None, detail="")
        while True:
            current = await store.get_campaign(campaign.id)
            counts = await store.campaign_counts(campaign.id)
            if current is None:
                raise CampaignError(f"campaign {campaign.id} is gone (erased?)")
            work = counts.total - counts.skipped_invalid - counts.skipped_duplicate
            done = work - counts.pending
            bar.update(task, total=work, completed=done, detail=_detail(counts))
            if current.status in _FINAL:
                break
            if done != last:
                last, idle_since = done, time.monotonic()
            elif not hinted and time.monotonic() - idle_since > IDLE_HINT:
                hinted = True
                if current.start_at > time.time():
                    console.print(f"starts at {_when(current.start_at)}")
                elif current.status is CampaignStatus.RUNNING:
                    console.print(
                        "no progress: is a server (convo serve) running on "
                        "this store? Contacts in quiet hours wait for them to end."
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FOLLOW_EVERY)
            if stop.is_set():
                await store.set_campaign_status(campaign.id, CampaignStatus.PAUSED, time.time())
                bar.stop()
                print(
                    f"\ncampaign {campaign.id} paused; resume it with: "
                    f"convo campaigns resume {campaign.id}",
                    file=sys.stderr,
                )
                return 130
    print(f"campaign {campaign.id} {current.status.value}: {_detail(counts)}")
    return 0 if current.status is CampaignStatus.DONE else 1


def _detail(counts: CampaignCounts) -> str:
    skipped = counts.skipped_opted_out + counts.skipped_invalid + counts.skipped_duplicate
    return (
        f"started {counts.started}, sent {counts.sent}, delivered {counts.delivered}, "
        f"replied {counts.replied}, failed {counts.failed}, skipped {skipped}"
    )


def _print_skipped(skipped: list[NewRecipient]) -> None:
    for r in skipped:
        kind = "duplicate" if r.state is RecipientState.SKIPPED_DUPLICATE else "invalid"
        print(f"line {r.row}: {kind}: {r.error}", file=sys.stderr)


def _print_preview(campaign: Campaign, found: Preview) -> None:
    print(
        f"dry run: flow {campaign.flow} on {campaign.line} ({campaign.channel}); "
        "nothing is stored or sent"
    )
    _print_skipped(found.skipped)
    if len(found.skipped) < found.invalid + found.duplicates:
        print(f"... {found.invalid + found.duplicates - len(found.skipped)} more", file=sys.stderr)
    print(f"contacts: {found.contacts}")
    print(f"invalid rows: {found.invalid}")
    print(f"duplicates: {found.duplicates}")
    print(f"opted out: {found.opted_out}")
    for lang in found.languages:
        if lang.error:
            print(f"[{lang.language}] {lang.contacts} contact(s): cannot render: {lang.error}")
            continue
        print(f"[{lang.language}] {lang.contacts} contact(s), {lang.parts} SMS part(s) each:")
        for text, info in lang.texts:
            print(f"  {info.parts} part(s), {info.encoding}, {info.characters} chars: {text}")
    if campaign.channel == "sms":
        print(f"SMS parts in total: {found.total_parts}")


# -- convo campaigns ------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    async def read(store: Store) -> int:
        for campaign in await store.list_campaigns():
            counts = await store.campaign_counts(campaign.id)
            if args.json:
                print(json.dumps(campaign.to_json() | {"counts": counts.to_json()}))
                continue
            print(
                f"{campaign.id}  {campaign.status.value:<9}  {_when(campaign.created_at)}  "
                f"{campaign.flow}  {campaign.line}  {counts.total} contact(s)  "
                f"{_detail(counts)}  {campaign.name}"
            )
        return 0

    return _on_store(args, read)


def cmd_show(args: argparse.Namespace) -> int:
    async def read(store: Store) -> int:
        campaign = await store.get_campaign(args.id)
        if campaign is None:
            print(f"convo: no campaign {args.id!r}", file=sys.stderr)
            return 1
        shown = campaign.to_json() | {"counts": (await store.campaign_counts(args.id)).to_json()}
        if args.json:
            print(json.dumps(shown))
            return 0
        for key, value in shown.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            print(f"{key}: {value}")
        return 0

    return _on_store(args, read)


def cmd_change(args: argparse.Namespace) -> int:
    target: CampaignStatus = args.status

    async def change(store: Store) -> int:
        after = await store.set_campaign_status(args.id, target, time.time())
        if after is None:
            print(f"convo: no campaign {args.id!r}", file=sys.stderr)
            return 1
        if after.status is not target:
            print(
                f"convo: campaign {args.id} is {after.status.value}: cannot {args.action} it",
                file=sys.stderr,
            )
            return 1
        print(f"campaign {args.id} {after.status.value}")
        return 0

    return _on_store(args, change)


def _on_store(args: argparse.Namespace, job: Any) -> int:
    from convo.campaigns.storage import campaigns_of
    from convo.config import load_settings
    from convo.runtime import STORE_ONLY, Runtime

    settings = load_settings(args.config)
    _shared_store(settings)

    async def run() -> int:
        async with Runtime(settings, parts=STORE_ONLY) as runtime:
            code: int = await job(campaigns_of(runtime.store))
            return code

    return asyncio.run(run())


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
