"""``convo outbox``: the replies waiting to be sent, and the dead letters an operator sends again.

``convo outbox list`` prints the replies still pending (queued, or being sent), oldest first;
``--dead`` prints the dead letters instead: replies whose sending kept failing for
``[outbox] max_age``, newest first, each with its last error. ``convo outbox retry ID...``
(or ``--all``) queues dead letters again with a fresh age window; a running server sends
them at its next sweep, each in its contact's order. Both read and write the configured
store only; ``--json`` prints the admin API's shape of each message, one per line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Awaitable, Callable

from convo.models import Direction, MessageRecord, MessageStatus

PAGE = 200
DESCRIPTION = (
    "List the replies still waiting to be sent (list), or the dead letters: replies whose "
    "sending kept failing for [outbox] max_age (list --dead); queue dead letters again "
    "(retry ID... or retry --all), which a running server then sends in each contact's order."
)

Page = tuple[list[MessageRecord], int]
PageReader = Callable[[int], Awaitable[Page]]


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from convo.config import load_settings
    from convo.runtime import STORE_ONLY, Runtime
    from convo.store.base import MessageQuery

    async def read() -> list[MessageRecord]:
        async with Runtime(load_settings(args.config), parts=STORE_ONLY) as runtime:
            store = runtime.store
            if args.dead:
                return await _all_pages(lambda page: store.dead_letters(page, PAGE))
            pending: list[MessageRecord] = []
            for status in (MessageStatus.SENDING, MessageStatus.QUEUED):

                async def read_page(page: int, status: MessageStatus = status) -> Page:
                    query = MessageQuery(Direction.OUTBOUND, status, page=page, page_size=PAGE)
                    return await store.list_messages(query)

                pending.extend(await _all_pages(read_page))
            return sorted(pending, key=lambda r: (r.created_at, r.id))

    records = asyncio.run(read())
    for record in records:
        print(json.dumps(record.to_json()) if args.json else _line(record))
    what = "dead letter(s)" if args.dead else "pending reply(ies)"
    print(f"{len(records)} {what}", file=sys.stderr)
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from convo.config import load_settings
    from convo.runtime import STORE_ONLY, Runtime

    if bool(args.ids) == args.all:
        print("convo: outbox retry: give message ids or --all (not both)", file=sys.stderr)
        return 2

    async def retry() -> list[str]:
        async with Runtime(load_settings(args.config), parts=STORE_ONLY) as runtime:
            return await runtime.store.requeue_dead(time.time(), None if args.all else args.ids)

    requeued = asyncio.run(retry())
    for message_id in requeued:
        print(message_id)
    missing = [] if args.all else [i for i in args.ids if i not in set(requeued)]
    for message_id in missing:
        print(f"convo: {message_id} is not a dead letter", file=sys.stderr)
    print(f"{len(requeued)} dead letter(s) queued again", file=sys.stderr)
    return 1 if missing else 0


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    """``convo outbox list|retry``; ``config`` is the parent parser that gives ``--config``."""
    outbox = sub.add_parser(
        "outbox",
        help="replies waiting to be sent, and dead letters",
        description=DESCRIPTION,
    )
    actions = outbox.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", parents=[config], help="pending replies (or --dead letters)")
    p.add_argument("--dead", action="store_true", help="dead letters instead of pending replies")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_outbox_list)
    p = actions.add_parser("retry", parents=[config], help="queue dead letters again")
    p.add_argument("ids", nargs="*", metavar="ID", help="dead letters to send again")
    p.add_argument("--all", action="store_true", help="every dead letter")
    p.set_defaults(func=cmd_outbox_retry)


async def _all_pages(read_page: PageReader) -> list[MessageRecord]:
    out: list[MessageRecord] = []
    page = 1
    while True:
        records, total = await read_page(page)
        out.extend(records)
        if not records or len(out) >= total:
            return out
        page += 1


def _line(record: MessageRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    error = f"  {record.error}" if record.error else ""
    return (
        f"{record.id}  {record.status.value:<7}  {when}Z  {record.recipient}  "
        f"attempts={record.attempts}{error}"
    )
