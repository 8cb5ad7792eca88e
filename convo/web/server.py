"""``convo serve``: run the app until SIGINT/SIGTERM, then stop gracefully.

:func:`serve` starts the app with an ``AppRunner`` on ``server.host``/``server.port`` (port
0 picks a free port) and prints ``convo: serving on http://HOST:PORT`` once it accepts
requests. On SIGINT or SIGTERM it stops accepting, waits for in-flight requests, then the
app's cleanup finishes the turns in flight and drains the outbox (each bounded by
``server.shutdown_timeout``) before closing the store. A SIGKILL loses nothing stored: the
next start turns unprocessed inbound messages and sends queued replies.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from convo.bot import Bot
from convo.config import Settings
from convo.web.app import create_app

log = logging.getLogger("convo.web.server")


async def serve(
    settings: Settings,
    *,
    bot: Bot | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until a signal (or ``stop`` being set). ``on_ready`` gets the base URL the
    server listens on (default: print it to stdout)."""
    app = create_app(settings, bot=bot)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    try:
        await runner.setup()  # runs every cleanup_ctx's start: store, providers, engine, ...
    except BaseException:
        # A start-up step failed (a store that cannot open, a provider check): undo the
        # steps that did start, or their threads and connections keep the process alive.
        await runner.cleanup()
        raise
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        site = web.TCPSite(
            runner,
            settings.server.host,
            settings.server.port,
            shutdown_timeout=settings.server.shutdown_timeout,
        )
        await site.start()
        host, port = _address(runner, settings)
        url = f"http://{host}:{port}"
        if on_ready is not None:
            on_ready(url)
        else:
            print(f"convo: serving on {url}", flush=True)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: finishing turns in flight and pending sends")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()  # stops the site, then the app's cleanup (in reverse order)
    print("convo: stopped", file=sys.stderr, flush=True)


def _address(runner: web.AppRunner, settings: Settings) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    return settings.server.host, settings.server.port
