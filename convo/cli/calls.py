"""``convo calls list|hangup``: the calls a line's voice provider has, and ending one.

The provider is the voice provider of ``--line`` (default: the first line with one, as for
``convo call``). ``list`` needs a provider that lists calls
(:class:`~convo.providers.base.ListsCalls`: Telefoon Voice); ``hangup`` works on every
voice provider (``end_call``). A provider's refusal (an unknown call id, say) is reported
by ``convo``'s main as one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from typing import Any

from convo.exceptions import ConfigError
from convo.models import CallStatus
from convo.runtime import Parts, Runtime

#: The voice providers (and the store every runtime opens); no flows, engine or loops.
CALLS = Parts(sms=False, engine=False, serving=False)


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    """``convo calls list|hangup``; ``config`` is the parent parser that gives ``--config``."""
    calls = sub.add_parser("calls", help="list the provider's calls or hang one up")
    actions = calls.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", parents=[config], help="one page of the provider's calls")
    p.add_argument(
        "--line", help="the line whose voice provider to ask (default: first voice line)"
    )
    p.add_argument("--status", choices=[s.value for s in CallStatus], help="only this status")
    p.add_argument("--direction", choices=["inbound", "outbound"], help="only this direction")
    p.add_argument("--page", type=int, default=1, help="page number, from 1 (1)")
    p.add_argument("--page-size", type=int, default=20, help="calls per page, 1-100 (20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_calls_list)
    p = actions.add_parser("hangup", parents=[config], help="end an active or ringing call")
    p.add_argument("call_id", metavar="ID", help="the provider's call id")
    p.add_argument("--line", help="the line whose voice provider has the call")
    p.set_defaults(func=cmd_calls_hangup)


def cmd_calls_list(args: argparse.Namespace) -> int:
    """Print one page of calls: a table (id, status, direction, from, to, seconds, start)
    and ``page P: N of TOTAL``, or with ``--json`` ``{"calls": [...], "total", "page"}``."""
    from convo.config import load_settings
    from convo.dialer import voice_line
    from convo.providers.base import ListsCalls

    settings = load_settings(args.config)
    _line, name = voice_line(settings, args.line)

    async def listed() -> Any:
        async with Runtime(settings, parts=CALLS) as runtime:
            provider = runtime.voice_providers[name]
            if not isinstance(provider, ListsCalls):
                raise ConfigError(f"voice provider {name!r} cannot list its calls")
            try:
                return await provider.list_calls(
                    status=args.status,
                    direction=args.direction,
                    page=args.page,
                    page_size=args.page_size,
                )
            except ValueError as exc:  # a page or size out of range
                raise ConfigError(f"convo calls list: {exc}") from None

    page = asyncio.run(listed())
    if args.json:
        rows = []
        for call in page.calls:
            row = asdict(call)
            row["status"] = call.status.value
            rows.append(row)
        print(json.dumps({"calls": rows, "total": page.total, "page": args.page}))
        return 0
    for call in page.calls:
        seconds = "" if call.duration is None else str(call.duration)
        print(
            f"{call.id}\t{call.status.value}\t{call.direction}\t{call.from_number}\t"
            f"{call.to_number}\t{seconds}\t{call.start_time or ''}"
        )
    print(f"page {args.page}: {len(page.calls)} of {page.total}")
    return 0


def cmd_calls_hangup(args: argparse.Namespace) -> int:
    """End call ``ID`` at the provider; prints ``hung up ID``."""
    from convo.config import load_settings
    from convo.dialer import voice_line

    settings = load_settings(args.config)
    _line, name = voice_line(settings, args.line)

    async def hang_up() -> None:
        async with Runtime(settings, parts=CALLS) as runtime:
            await runtime.voice_providers[name].end_call(args.call_id)

    asyncio.run(hang_up())
    print(f"hung up {args.call_id}")
    return 0
