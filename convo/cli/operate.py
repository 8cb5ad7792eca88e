"""Commands that run or reach the live system: ``serve``, ``call``, ``erase``, ``simulator``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from convo.exceptions import ConfigError, ConvoError

if TYPE_CHECKING:
    from convo.erasure import ErasureReport
from convo.cli.args import bot_arg, parse_params, resolve_flow


def cmd_serve(args: argparse.Namespace) -> int:
    """``convo serve``: the settings, with the command line's overrides, logging set up
    (:mod:`convo.logs`), then the server until SIGINT/SIGTERM (:mod:`convo.web.server`)."""
    from convo import logs
    from convo.config import Secret, load_settings
    from convo.web.server import run_server

    settings = load_settings(args.config)
    settings = settings.with_server(host=args.host, port=args.port)
    chosen = settings.logging
    settings = dataclasses.replace(
        settings,
        logging=logs.LogSettings(
            level=args.log_level or chosen.level,
            format=args.log_format or chosen.format,
            access_log=chosen.access_log and not args.no_access_log,
            mask_numbers=chosen.mask_numbers and not args.show_numbers,
        ),
    )
    token_file = args.admin_token_file
    if token_file is not None:
        token = admin_token(Path(token_file))
        server = dataclasses.replace(settings.server, api_token=Secret(token))
        settings = dataclasses.replace(settings, server=server)
    logs.configure(settings.logging, own_numbers=[line.number for line in settings.lines])
    bot = bot_arg(args.bot)

    def ready(url: str) -> None:
        print(f"convo: serving on {url}", flush=True)
        if token_file is not None:
            if importlib.util.find_spec("convo.web.console") is not None:
                # The fragment fills in the console's sign-in form; it never reaches the
                # server or its logs.
                print(f"convo: web console: {url}/console/signin#token={token}", flush=True)
            print(
                f"convo: admin API on {url}/api/ with the bearer token in {token_file}:\n"
                f"  curl -H 'Authorization: Bearer {token}' {url}/api/messages",
                flush=True,
            )

    workers = settings.server.workers if args.workers is None else args.workers
    if workers != 1:  # several processes (convo.web.workers); 0 or less is refused there
        from convo.web.workers import run_workers

        return run_workers(settings, workers, args.bot, reload=args.reload, on_ready=ready)
    run_server(settings, bot=bot, reload=args.reload, on_ready=ready)
    return 0


def admin_token(path: Path) -> str:
    """The admin token kept in ``path``: made (random, 256 bits) and written with mode
    0600 the first time, read afterwards. ``ConfigError`` when the file cannot be read or
    written, is empty, or others may read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _kept_token(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the admin token: {exc.strerror}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token


def _kept_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the admin token: {exc}") from None
    if mode & 0o077:
        raise ConfigError(f"{path}: the admin token is readable by others (chmod 600 it)")
    if not token:
        raise ConfigError(f"{path}: the admin token file is empty (delete it to make one)")
    return token


def cmd_call(args: argparse.Namespace) -> int:
    """``convo call FLOW --to N``: place an outbound call that runs FLOW (convo.dialer);
    prints the provider's call id. The running server answers the call."""
    from convo.config import load_settings
    from convo.dialer import CallOptions, place_call

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
            options=CallOptions(args.timeout, args.record, args.tts_language),
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
