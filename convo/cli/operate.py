"""Commands that run or reach the live system: ``serve``, ``call``, ``erase``, ``simulator``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from convo.exceptions import ConvoError

if TYPE_CHECKING:
    from convo.erasure import ErasureReport
from convo.cli.args import bot_arg, parse_params, resolve_flow


def cmd_serve(args: argparse.Namespace) -> int:
    from convo.config import load_settings
    from convo.web.server import serve

    settings = load_settings(args.config)
    settings = settings.with_server(host=args.host, port=args.port)
    asyncio.run(serve(settings, bot=bot_arg(args.bot)))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    """``convo call FLOW --to N``: place an outbound call that runs FLOW (convo.dialer);
    prints the provider's call id. The running server answers the call."""
    from convo.config import load_settings
    from convo.dialer import place_call

    settings = load_settings(args.config)
    flow = args.flow
    if Path(flow).suffix in (".yaml", ".yml"):
        flow = str(resolve_flow(flow, args.config))
    call_id = asyncio.run(
        place_call(
            settings,
            flow,
            to=args.to,
            line=args.line,
            params=parse_params(args.param),
            lang=args.lang,
            bot=bot_arg(args.bot),
        )
    )
    print(call_id)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """``convo erase NUMBER``: forget a contact here and at the providers that can delete
    messages (convo.erasure); prints the report. Exit 0 done, 1 a provider deletion failed
    (the report lists it), 2 a bad number."""
    from convo.config import load_settings
    from convo.erasure import e164, erase_contact
    from convo.runtime import ERASER, Runtime

    settings = load_settings(args.config)
    try:
        contact = e164(args.number)  # a bad number: nothing is opened
    except ValueError as exc:
        print(f"convo: {exc}", file=sys.stderr)
        return 2

    async def erase() -> ErasureReport:
        async with Runtime(settings, parts=ERASER) as runtime:
            return await erase_contact(runtime.store, runtime.providers, contact)

    report = asyncio.run(erase())
    print(report.describe())
    return 1 if report.failed else 0


def cmd_simulator(args: argparse.Namespace) -> int:
    """``convo simulator PROVIDER``: serve a fake of the provider's API. With a config the
    simulator uses ``[providers.PROVIDER]``'s credentials and ``server.public_url``
    (convo.simulators._launch); it prints them on start, secrets masked."""
    from aiohttp import web

    from convo.config import load_settings
    from convo.simulators._launch import plan

    if args.auto_deliver_delay < 0:
        raise ConvoError("--auto-deliver-delay: expected a number of seconds >= 0")
    launch = plan(
        args.provider,
        load_settings(args.config),
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
        auto_deliver=args.auto_deliver,
        delay=args.auto_deliver_delay,
    )
    for line in launch.describe():
        print(line, file=sys.stderr, flush=True)
    web.run_app(launch.simulator.app, host=launch.host, port=launch.port, print=None)
    return 0
