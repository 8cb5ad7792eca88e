"""``convo serve``: run the app until SIGINT/SIGTERM, then stop gracefully.

:func:`serve` starts the app with an ``AppRunner`` and listens on ``server.host``/
``server.port`` (port 0 picks a free port) through :class:`~convo.web.connections.
ConnectionLimit` (``server.max_connections``), with aiohttp's keep-alive timer set to
``server.keepalive_timeout`` (``convo.web.connections`` says what each limit closes). It
prints ``convo: serving on http://HOST:PORT`` once it accepts requests.

Stopping. SIGINT and SIGTERM are handled from the moment :func:`serve` starts, start-up
included (a signal during start-up stops the server as soon as it is up). Then, within
one grace period, ``server.shutdown_grace`` seconds counted from the signal:

1. the listening socket is closed: no new connection, so no new webhook (a provider
   retries those elsewhere or later);
2. the requests in flight finish (aiohttp's shutdown, bounded by the grace period);
3. the runtime stops (:meth:`convo.runtime.Runtime.aclose`): turns in flight and sends in
   flight get what is left of the grace period; what is not sent by then stays queued in
   the store and is sent at the next start.

:func:`serve` then returns (``convo serve`` exits 0). A SIGKILL loses nothing stored
either: the next start turns unprocessed inbound messages and sends queued replies.

SIGHUP reloads the flows (:class:`~convo.runtime.reloading.FlowReloader`), and so does
every change to a flow file with ``reload=True`` (``convo serve --reload``). A port that
cannot be listened on (in use, not allowed) is a :class:`~convo.exceptions.ConfigError`
naming it. With ``[metrics] port`` set, ``/metrics`` is served on that port too
(``convo.web.metrics``). Every request is logged on ``convo.access``
(:class:`~convo.web.access.AccessLog`) unless that logger is disabled.

Garbage collection. A process that runs :func:`run_server` (``convo serve``, each worker of
``--workers``) collects reference cycles less eagerly than Python's default
(:func:`tune_gc`): under load a server allocates thousands of short-lived objects at once
(a loop iteration's requests, a batch's rows), so the default young-generation threshold
of 700 started a collection in the middle of nearly every burst, which found little garbage
but traversed everything young. Measured with ``bench/sms_pipeline.py`` (convo, SQLite,
32 connections, 10 s; each collection's CPU time taken by ``gc.callbacks``): 0.9 s of
collections per run with the defaults (~58 µs a text, near a tenth of convo's CPU per
text), 2 ms with a threshold of 10,000 and the objects of start-up frozen.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from convo.bot import Bot
from convo.config import Settings
from convo.exceptions import ConfigError
from convo.runtime.reloading import FlowReloader
from convo.web.access import AccessLog
from convo.web.app import create_app
from convo.web.connections import ConnectionLimit
from convo.web.metrics import metrics_app
from convo.web.state import RUNTIME

log = logging.getLogger("convo.web.server")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
GC_THRESHOLD = 10_000
"""Net allocations of container objects that start a young collection (module docstring;
Python's default is 700)."""
T = TypeVar("T")


async def serve(
    settings: Settings,
    *,
    bot: Bot | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
    reload: bool = False,
    reuse_port: bool = False,
) -> None:
    """Serve until a signal (or ``stop`` being set). ``on_ready`` gets the base URL the
    server listens on (default: print it to stdout). ``reload``: reload the flows when
    their files change. ``reuse_port`` listens with ``SO_REUSEPORT``, beside the other
    workers of ``convo serve --workers`` (:mod:`convo.web.workers`). ``ConfigError`` when
    a port cannot be listened on."""
    server = settings.server
    app = create_app(settings, bot=bot)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=AccessLog,
        access_log=logging.getLogger("convo.access"),
        keepalive_timeout=server.keepalive_timeout,
        shutdown_timeout=server.shutdown_grace,
    )
    runtime = app[RUNTIME]
    reloader = FlowReloader(runtime)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request, "SIGHUP")
    listener: asyncio.Server | None = None
    side: web.AppRunner | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        # Runs every cleanup_ctx's start (store, providers, engine, ...); a step that fails
        # has closed what had started (the runner's cleanup below undoes the rest).
        await runner.setup()
        if not stop.is_set():  # a signal during start-up: stop at once
            limit = ConnectionLimit(_protocols(runner), server.max_connections)
            listener = await _listen(
                loop.create_server(limit, server.host, server.port, reuse_port=reuse_port or None),
                server.host,
                server.port,
            )
            if settings.metrics.port:
                side = web.AppRunner(metrics_app(runtime), handle_signals=False, access_log=None)
                await side.setup()
                where = settings.metrics.host, settings.metrics.port
                await _listen(web.TCPSite(side, *where).start(), *where)
            if reload:
                watcher = asyncio.create_task(reloader.watch(stop), name="convo-flow-watch")
            url = "http://{}:{}".format(*_address(listener, settings))
            (on_ready or _announce)(url)
            await stop.wait()
        log.info("shutting down: %ss for what is in flight", server.shutdown_grace)
        runtime.begin_stop()  # the grace period counts from here
    finally:
        if listener is not None:
            listener.close()  # no new connections; those open are shut down below
        for sig in (*SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if watcher is not None:
            stop.set()
            await asyncio.gather(watcher, return_exceptions=True)
        await reloader.aclose()
        if side is not None:
            await side.cleanup()
        await runner.cleanup()  # in-flight requests, then the app's cleanup (the runtime)
    print("convo: stopped", file=sys.stderr, flush=True)


def _announce(url: str) -> None:
    print(f"convo: serving on {url}", flush=True)


async def _listen(opening: Awaitable[T], host: str, port: int) -> T:
    """``opening`` (a listening socket being opened); ``ConfigError`` naming the address
    when it cannot be (a port in use, a privileged port, an unknown host)."""
    try:
        return await opening
    except OSError as exc:
        # asyncio's message repeats the address; the errno's own text is the reason.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason.lower()}") from None


def run_server(
    settings: Settings,
    *,
    bot: Bot | None = None,
    on_ready: Callable[[str], None] | None = None,
    reload: bool = False,
    reuse_port: bool = False,
) -> None:
    """Run :func:`serve` to its end, as ``convo serve`` does, on the event loop
    ``server.event_loop`` names (:func:`loop_factory`), with the process's garbage
    collector tuned once the server is up (:func:`tune_gc`)."""

    def ready(url: str) -> None:
        tune_gc()
        (on_ready or _announce)(url)

    with asyncio.Runner(loop_factory=loop_factory(settings.server.event_loop)) as runner:
        runner.run(serve(settings, bot=bot, on_ready=ready, reload=reload, reuse_port=reuse_port))


def tune_gc() -> None:
    """Set this process's garbage collector for serving (module docstring): what start-up
    made (modules, flows, settings) is frozen, out of every later collection, and a young
    collection starts after :data:`GC_THRESHOLD` net allocations. For the process that
    runs the server only: it changes the whole process. What is frozen is never collected:
    the flow versions loaded at start stay in memory after a reload replaces them, if they
    hold reference cycles (once: versions loaded later are collected as usual)."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the event loop for ``[server] event_loop``: uvloop's for ``uvloop``, and
    for ``auto`` when it is installed (the ``speed`` extra; bench/sms_pipeline.py measures
    both); None (asyncio's own) otherwise. ConfigError for ``uvloop`` when it is not
    installed."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                '[server] event_loop = "uvloop", but uvloop is not installed '
                "(pip install 'convo[speed]')"
            ) from None
        return None
    return uvloop.new_event_loop


def _protocols(runner: web.AppRunner) -> Callable[[], asyncio.Protocol]:
    made = runner.server
    if made is None:  # pragma: no cover - setup() made it
        raise RuntimeError("the runner is not set up")
    return made


def _address(listener: asyncio.Server, settings: Settings) -> tuple[str, int]:
    for sock in listener.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = sock.getsockname()[:2]
            return str(host), int(port)
    return settings.server.host, settings.server.port
