"""The aiohttp app factory: wires settings, store, providers, engine and outbox together.

:func:`create_app` only wires: each resource is started and stopped by its own
``cleanup_ctx`` generator (so cleanup runs only for what started), in this order::

    http client -> store -> providers (+ start-up checks) -> engine -> outbox
    -> intake (turns) -> timers -> long-text expiry -> status reconciliation
    -> poll loops (providers without webhooks, e.g. Enco)
    -> voice providers and the call runner (``convo.web.voice``)

Shutdown runs them backwards, which is what graceful shutdown needs: stop the loops, wait
for the turns in flight (``server.shutdown_timeout``), then drain the outbox (pending sends),
then close providers, store and client. At start, the outbox's first sweep sends what a
previous process left queued (or ``sending``) and the intake turns every inbound message
left unprocessed.

Start-up checks (:func:`_check_providers`): an Enco provider with a dedicated ``address``
must find it among the account's dedicated addresses (else ``ConfigError`` and no start; a
refused check, e.g. wrong credentials, is a ``ConfigError`` too; Enco unreachable only
logs a warning), and Enco messages still ``sent`` are tracked again when delivery callbacks
are off (``convo.reconcile.retrack_deliveries``). Messages stuck in ``sent`` are looked up at
providers that can say (``convo.reconcile.Reconciler``, after ``[outbox] reconcile_after``).

Errors raised by any route are answered as ``{"error": "..."}`` with the status from
``convo.web.state.HTTP_STATUS`` (one table, one middleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from convo.bot import Bot
from convo.config import Settings
from convo.exceptions import ConfigError, ConvoError, ProviderError
from convo.outbox import Outbox, RetryPolicy
from convo.providers.base import PollingSmsProvider, SmsProvider
from convo.providers.http import provider_client
from convo.providers.registry import create_provider, lookup, provider_kind
from convo.reconcile import Reconciler, retrack_deliveries
from convo.store.base import Store
from convo.web import api, voice, webhooks
from convo.web.intake import Intake
from convo.web.state import (
    ENGINE,
    HTTP_CLIENT,
    INTAKE,
    OUTBOX,
    PROVIDERS,
    REJECTED,
    SETTINGS,
    STORE,
    TurnEngine,
    error_response,
    status_for,
)

log = logging.getLogger("convo.web")

Ctx = Callable[[web.Application], AsyncIterator[None]]
EngineFactory = Callable[[Store], TurnEngine]


def open_store(url: str, where: str = "[store] url") -> Store:
    """A store for ``sqlite:///relative.db``, ``sqlite:////abs.db`` or ``memory://``."""
    if url.startswith("memory://"):
        from convo.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from convo.store.sqlite import SqliteStore

        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        store: Store = SqliteStore(path)
        return store
    raise ConfigError(f"{where}: unsupported store {url!r} (expected sqlite:/// or memory://)")


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConvoError as exc:
        status = status_for(exc)
        if status >= 500:
            log.exception("%s %s failed", request.method, request.path)
        return error_response(status, str(exc))


def create_app(
    settings: Settings,
    *,
    bot: Bot | None = None,
    http_client: httpx.AsyncClient | None = None,
    engine_factory: EngineFactory | None = None,
) -> web.Application:
    """The convo web app. ``http_client`` (not closed by the app) is shared by adapters;
    ``engine_factory`` builds the engine over the opened store (default: the real
    :class:`~convo.flow.engine.Engine` with the flows of ``settings.flows.paths``)."""
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[REJECTED] = webhooks.RejectedWebhooks(settings.rejected_dir)
    app.cleanup_ctx.extend(
        [
            _http_ctx(http_client),
            _store_ctx,
            _providers_ctx,
            _engine_ctx(bot, engine_factory),
            _outbox_ctx,
            _intake_ctx,
            _loop_ctx("timers", 1.0, _fire_timers),
            _loop_ctx("long texts", min(5.0, settings.webhooks.concat_timeout / 4), _expire),
            _reconcile_ctx,
            _polling_ctx,
        ]
    )
    webhooks.add_routes(app)
    voice.setup(app)  # voice providers + call runner (after the engine), /voice/ routes
    api.add_routes(app)
    extensions = {
        lookup(provider_kind(line.provider, settings.providers.get(line.provider))).web_extension
        for line in settings.lines
    }
    for extension in sorted(extensions - {""}):
        importlib.import_module(extension).add_routes(app)
    return app


# -- one context per resource ------------------------------------------------------------------


def _http_ctx(given: httpx.AsyncClient | None) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[HTTP_CLIENT] = given or provider_client()
        yield
        if given is None:
            await app[HTTP_CLIENT].aclose()

    return ctx


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[SETTINGS].store.url, f"{app[SETTINGS].source}: [store] url")
    await store.open()
    app[STORE] = store
    yield
    await store.close()


def sms_providers(settings: Settings, client: httpx.AsyncClient) -> dict[str, SmsProvider]:
    """The SMS adapter of every configured provider, by name, sharing ``client`` (voice
    providers are started by ``convo.web.voice``); ``ConfigError`` names a bad section. The
    server's providers, and those ``convo erase`` asks to delete their copies. Building an
    adapter acquires nothing (the client is shared), so a failure half-way leaks nothing."""
    return {
        name: create_provider(
            name,
            settings.providers.get(name, {}),
            client,
            public_url=settings.server.public_url,
        )
        for name in settings.provider_names()
        if lookup(provider_kind(name, settings.providers.get(name))).channel == "sms"
    }


async def _providers_ctx(app: web.Application) -> AsyncIterator[None]:
    providers = sms_providers(app[SETTINGS], app[HTTP_CLIENT])
    try:
        app[PROVIDERS] = providers
        await _check_providers(app, providers)
        yield
    finally:
        for provider in providers.values():
            await provider.aclose()


def _engine_ctx(bot: Bot | None, factory: EngineFactory | None) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[ENGINE] = (factory or _default_engine(app[SETTINGS], bot))(app[STORE])
        yield

    return ctx


def _default_engine(settings: Settings, bot: Bot | None) -> EngineFactory:
    from convo.flow.engine import Engine
    from convo.flow.loader import load_flows

    flows = load_flows(list(settings.flows.paths), hooks=bot.hook_names() if bot else None)
    for line in settings.lines:
        if line.flow not in flows:
            known = ", ".join(sorted(flows)) or "none"
            raise ConfigError(
                f"{settings.source}: line {line.number}: flow {line.flow!r} is not in "
                f"{', '.join(settings.flows.paths)} (flows found: {known})"
            )
    lines = {line.number: line.flow for line in settings.lines}
    return lambda store: Engine(flows, store, lines=lines, bot=bot)


async def _outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    box = settings.outbox
    providers = app[PROVIDERS]
    outbox = Outbox(
        app[STORE],
        providers,
        {line.number: line.provider for line in settings.lines},
        policy=RetryPolicy(box.max_attempts, box.base_delay, box.max_delay),
        sweep_interval=box.sweep_interval,
    )
    app[OUTBOX] = outbox
    outbox.start()
    yield
    if not await outbox.drain(settings.server.shutdown_timeout):
        log.warning("shutdown: replies still unsent; they are sent at the next start")
    await outbox.aclose()


async def _intake_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    intake = Intake(
        app[ENGINE],
        on_replies=app[OUTBOX].submit,
        concat_timeout=settings.webhooks.concat_timeout,
    )
    app[INTAKE] = intake
    recovery = asyncio.create_task(intake.recover(), name="convo-recover-inbound")
    yield
    if not await intake.wait(settings.server.shutdown_timeout):
        log.warning("shutdown: turns still running; their messages are processed at next start")
    recovery.cancel()
    await intake.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConvoError):
        await recovery


async def _fire_timers(app: web.Application) -> None:
    if await app[ENGINE].fire_timers():
        app[OUTBOX].notify()


async def _expire(app: web.Application) -> None:
    await app[INTAKE].expire_fragments()


def _loop_ctx(name: str, interval: float, tick: Callable[[web.Application], Awaitable[Any]]) -> Ctx:
    async def loop(app: web.Application) -> None:
        while True:
            try:
                await tick(app)
            except ConvoError:
                log.exception("%s loop failed; trying again in %ss", name, interval)
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(app), name=f"convo-{name}")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


async def _check_providers(app: web.Application, providers: dict[str, SmsProvider]) -> None:
    for provider in providers.values():
        await provider.start()
    await retrack_deliveries(app[STORE], providers.values())


async def _reconcile_ctx(app: web.Application) -> AsyncIterator[None]:
    providers = app[PROVIDERS]
    after = app[SETTINGS].outbox.reconcile_after
    reconciler = Reconciler(app[STORE], providers, app[OUTBOX].apply_report, after=after)
    if not reconciler.lookups:
        yield
        return

    async def tick(_app: web.Application) -> None:
        await reconciler.reconcile()

    async for _ in _loop_ctx("reconcile", reconciler.interval, tick)(app):
        yield


async def _polling_ctx(app: web.Application) -> AsyncIterator[None]:
    async def poll(provider: PollingSmsProvider) -> None:
        while True:
            try:
                for message in await provider.poll_inbound():
                    await app[INTAKE].accept(message)
                for report in await provider.poll_status():
                    await app[OUTBOX].apply_report(report)
            except ProviderError as exc:  # the provider is down or refuses: say so, briefly
                log.warning(
                    "%s: polling failed (%s); trying again in %ss",
                    provider.name,
                    exc,
                    provider.poll_interval,
                )
            except ConvoError:
                log.exception("%s: polling failed; trying again", provider.name)
            await asyncio.sleep(provider.poll_interval)

    tasks = [
        asyncio.create_task(poll(p), name=f"convo-poll-{p.name}")
        for p in app[PROVIDERS].values()
        if isinstance(p, PollingSmsProvider)
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
