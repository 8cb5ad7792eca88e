"""The running system, built once from the settings: the composition root.

:class:`Runtime` turns a :class:`~convo.config.Settings` into working parts and is the only
place that does: the store, the SMS and voice providers, the flows (``flows.paths`` with
the bot's hooks), the engine, the call runner, the outbox, the intake and the background
loops. The web app, ``convo serve``, ``convo call`` and ``convo erase`` all build one;
:class:`Parts` says which parts a command needs (:data:`SERVER`, :data:`DIALER`,
:data:`ERASER`).

:meth:`Runtime.start` brings the parts up in this order, checking everything that needs no
I/O before acquiring anything::

    flows (+ every line's flow) -> http clients -> provider adapters (config validated)
    -> store -> providers' start hooks -> re-tracked deliveries -> engine -> call runner
    -> outbox -> intake (+ recovery of unprocessed inbound) -> background loops
    (+ the campaign runner, :mod:`convo.runtime.campaigns`)

and :meth:`Runtime.aclose` stops them backwards, which is what a graceful shutdown needs:
stop the loops, wait for the turns in flight, drain the outbox (the sends in flight), then
close providers, store and clients. Waiting is bounded by one grace period,
``server.shutdown_grace`` seconds counted from :meth:`Runtime.begin_stop` (``convo serve``
calls it on SIGTERM, before the requests in flight finish; else :meth:`Runtime.aclose`
does): whatever has not finished by then is cancelled and stays in the store (an
unprocessed text, a queued reply) for the next start. A failure half-way closes exactly
what had started, and re-raises. ``async with Runtime(...) as runtime:`` does both.

Flows are reloaded in place by :meth:`Runtime.reload_flows` (SIGHUP, ``convo serve
--reload``): every file that validates replaces its flow's current version, a file that
does not is left out with its errors logged (its flow keeps the version it had), and
conversations keep the version they started on (:mod:`convo.flow.versions`); a loop
forgets the older versions no open conversation runs on any more.

Every runtime has its own metrics (:attr:`Runtime.metrics`, :mod:`convo.metrics`): the
store handed to the parts is timed, the engine reports each turn and the outbox each send.

Background work runs under supervisors (``convo.supervisor``: the outbox's own, and one
for the loops of ``convo.runtime.loops`` and the inbound recovery), so no exception stops
it for good. :meth:`Runtime.status` is each one's health, for readiness checks.

Store failures. At start, the outbox's first sweep sends what a previous process left
queued (or ``sending``), the inbound recovery turns every inbound message left unprocessed,
and messages still ``sent`` at providers that poll delivery statuses themselves are handed
back to them (``convo.reconcile.retrack_deliveries``). While the process runs, the same
recovery turns again the messages whose turn failed (``Intake.redeliver``, every
:data:`RECOVERY_RETRY` seconds or more while they fail), and the outbox records every
send's outcome even if the store refuses it for a while (``convo.outbox``), so
when the store takes writes again, processing resumes by itself and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx

from convo.backpressure import Backpressure
from convo.bot import Bot
from convo.config import Settings
from convo.exceptions import ConfigError, ConvoError, Diagnostic, StoreError
from convo.intake import Intake
from convo.metrics import Metrics, TimedStore
from convo.models import ConversationKey, InboundMessage, OutboundMessage
from convo.outbox import MAX_IN_FLIGHT, Outbox, RetryPolicy
from convo.providers.base import Provider, SmsProvider, VoiceProvider
from convo.providers.http import DEFAULT_CONNECTIONS, provider_client
from convo.rate_limits import bucket_factory
from convo.reconcile import retrack_deliveries
from convo.runtime.loops import Loop, background_loops, notice_listener
from convo.runtime.wiring import build_providers, channel_of, line_flows, voice_provider_name
from convo.store import open_store
from convo.store.base import Notices, Store
from convo.supervisor import Supervisor

if TYPE_CHECKING:
    from convo.campaigns.runner import CampaignRunner
    from convo.flow.calls import CallRunner
    from convo.flow.shared_codes import SharedCodes
    from convo.flow.spec import FlowSpec
    from convo.flow.versions import FlowVersions

log = logging.getLogger("convo.runtime")
T = TypeVar("T")

#: Seconds between recoveries of inbound messages whose turn failed (doubling while they
#: keep failing): as long as a provider is told to wait before retrying a refused webhook.
RECOVERY_RETRY = 5.0
#: Seconds between looks at which older flow versions open conversations still need (and
#: between two marks of the current versions' sources in the store as current).
FLOW_VERSIONS_INTERVAL = 60.0
#: Seconds a flow version's source stays in the store after the last process that ran it as
#: current marked it (every FLOW_VERSIONS_INTERVAL), when no open conversation runs on it.
FLOW_SOURCE_RETENTION = 86400.0


class TurnEngine(Protocol):
    """What the runtime, the intake and the routes need of :class:`convo.flow.engine.Engine`."""

    store: Store

    async def receive(self, message: InboundMessage) -> bool: ...

    async def process(self, message: InboundMessage) -> list[OutboundMessage]: ...

    async def fire_timers(self, now: float | None = None) -> int: ...

    async def start(
        self,
        key: ConversationKey,
        flow_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        lang: str | None = None,
        name: str | None = None,
    ) -> list[OutboundMessage]: ...


EngineFactory = Callable[[Store], TurnEngine]


@dataclass(frozen=True, slots=True)
class Parts:
    """Which parts a runtime builds. ``serving`` adds the providers' start hooks, the
    outbox, the intake and the background loops (what a server needs to take traffic)."""

    sms: bool = True
    voice: bool = True
    engine: bool = True
    serving: bool = True


#: ``convo serve`` and the web app: everything.
SERVER = Parts()
#: ``convo call``: store, flows, engine, call runner and voice providers.
DIALER = Parts(sms=False, serving=False)
#: ``convo erase``: store and SMS providers (no flows are loaded).
ERASER = Parts(voice=False, engine=False, serving=False)
#: ``convo outbox``: the store alone.
STORE_ONLY = Parts(sms=False, voice=False, engine=False, serving=False)


class Runtime:
    """The parts of a running convo (module docstring). Parts are read after
    :meth:`start`; reading one that was not built raises ``RuntimeError``."""

    def __init__(
        self,
        settings: Settings,
        *,
        parts: Parts = SERVER,
        bot: Bot | None = None,
        http_client: httpx.AsyncClient | None = None,
        engine_factory: EngineFactory | None = None,
    ) -> None:
        """``http_client`` (shared by the adapters; not closed here) defaults to one client
        per provider that the runtime opens and closes; ``engine_factory`` builds the
        engine over the opened store (default: convo's :class:`~convo.flow.engine.Engine`
        over the flows)."""
        self.settings = settings
        self.parts = parts
        self.bot = bot
        self._given_client = http_client
        self._engine_factory = engine_factory
        self.flows: dict[str, FlowSpec] = {}
        #: The errors of the flow files the last reload left out (empty: all loaded).
        self.flow_errors: list[Diagnostic] = []
        self.metrics = Metrics()
        self.providers: dict[str, SmsProvider] = {}
        self.voice_providers: dict[str, VoiceProvider] = {}
        self.loops: list[Loop] = []
        self._store: Store | None = None
        self._engine: TurnEngine | None = None
        self._calls: CallRunner | None = None
        self._outbox: Outbox | None = None
        self._intake: Intake | None = None
        self._backpressure: Backpressure | None = None
        self._campaigns: CampaignRunner | None = None
        self._supervisor: Supervisor | None = None
        self._stack: AsyncExitStack | None = None
        self._deadline: float | None = None  # time.monotonic() when stopping must be done

    def __repr__(self) -> str:
        state = "started" if self._stack is not None else "not started"
        return f"<Runtime {state} {self.settings.source} providers={sorted(self.providers)}>"

    # -- the parts ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return _built(self._store, "store")

    @property
    def engine(self) -> TurnEngine:
        return _built(self._engine, "engine")

    @property
    def calls(self) -> CallRunner:
        """The call runner (built when a voice provider is configured)."""
        return _built(self._calls, "call runner (no voice provider is configured)")

    @property
    def outbox(self) -> Outbox:
        return _built(self._outbox, "outbox")

    @property
    def intake(self) -> Intake:
        return _built(self._intake, "intake")

    @property
    def backpressure(self) -> Backpressure:
        """Whether inbound texts are refused now (:mod:`convo.backpressure`)."""
        return _built(self._backpressure, "backpressure")

    @property
    def campaigns(self) -> CampaignRunner:
        """The campaign runner (a serving runtime whose engine is convo's)."""
        return _built(self._campaigns, "campaign runner")

    def status(self) -> dict[str, bool]:
        """Each background loop's name (the outbox's included) -> alive: running, not
        waiting out a backoff after a failure. Empty when not serving."""
        loops = self._supervisor.status() if self._supervisor is not None else {}
        return (self._outbox.status() if self._outbox is not None else {}) | loops

    # -- start and stop -------------------------------------------------------------------

    def begin_stop(self) -> None:
        """Start the grace period (``server.shutdown_grace``) that :meth:`aclose` will keep
        to, now: call it when the process is told to stop, before anything else waits.
        Calling it again does not move the deadline."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.settings.server.shutdown_grace

    def _grace_left(self) -> float:
        self.begin_stop()
        assert self._deadline is not None
        return max(0.0, self._deadline - time.monotonic())

    async def start(self) -> None:
        """Build and start the parts in order (module docstring). On failure, what had
        started is closed again and the error is raised. Starting twice is an error."""
        if self._stack is not None:
            raise RuntimeError("the runtime is already started")
        stack = AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            self._forget()
            raise
        self._stack = stack

    async def aclose(self) -> None:
        """Stop what :meth:`start` started, backwards; the parts are gone after it. Safe to
        call twice."""
        stack, self._stack = self._stack, None
        if stack is not None:
            self.begin_stop()
            await stack.aclose()
        self._forget()
        self._deadline = None

    def _forget(self) -> None:
        self._store = self._engine = self._calls = self._outbox = self._intake = None
        self._backpressure = None
        self._campaigns = None
        self._supervisor = None
        self.providers, self.voice_providers, self.loops = {}, {}, []

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _start(self, stack: AsyncExitStack) -> None:
        settings, parts = self.settings, self.parts
        # Everything that needs no I/O first: a bad flow or section fails before any open.
        if parts.engine and self._engine_factory is None:
            self.flows = line_flows(settings, self.bot)
        if parts.voice:
            for line in settings.lines:  # a misnamed voice_provider fails the start
                if voice_provider_name(settings, line) is None and "voice" in line.channels:
                    log.info("line %s: no voice provider; its calls are not answered", line.number)
        clients = await self._provider_clients(stack)
        if parts.sms:
            self.providers = build_providers(settings, clients, "sms")
        if parts.voice:
            self.voice_providers = build_providers(settings, clients, "voice")

        store = self._store = TimedStore.wrap(
            open_store(settings.store.url, f"{settings.source}: [store] url"), self.metrics
        )
        await store.open()
        stack.push_async_callback(self._close_store, store)
        stack.push_async_callback(self._close_providers)
        if parts.serving:
            for provider in self._all_providers():
                await provider.start()
            await retrack_deliveries(store, self.providers.values())

        if parts.engine:
            self._engine = self._build_engine(store)
            if self.voice_providers:
                self._calls = self._call_runner(self._engine)
        if parts.serving:
            # Before the first turn: a conversation started now must find its version's
            # source in the store after a restart.
            await self.forget_unused_versions()
            await self._start_serving(stack, store, self.engine)

    async def _provider_clients(
        self, stack: AsyncExitStack
    ) -> httpx.AsyncClient | Callable[[str], httpx.AsyncClient]:
        """The given client, or one client per provider, closed with ``stack``: one
        provider's connections never wait for another's, and a text provider's pool holds
        what its send slots (``[outbox] concurrency``, at most ``MAX_IN_FLIGHT``) use."""
        if self._given_client is not None:
            return self._given_client
        settings = self.settings
        texts = settings.outbox.concurrency or MAX_IN_FLIGHT
        clients: dict[str, httpx.AsyncClient] = {}
        for name in settings.provider_names():
            size = texts if channel_of(settings, name) == "sms" else DEFAULT_CONNECTIONS
            clients[name] = await stack.enter_async_context(provider_client(connections=size))
        return clients.__getitem__

    async def _start_serving(self, stack: AsyncExitStack, store: Store, engine: TurnEngine) -> None:
        settings = self.settings
        box = settings.outbox
        outbox = self._outbox = Outbox(
            store,
            self.providers,
            {line.number: line.provider for line in settings.lines},
            policy=RetryPolicy.from_settings(box),
            sweep_interval=box.sweep_interval,
            concurrency=box.concurrency,
            on_send=self.metrics.observe_send,
            claim_lease=box.claim_lease,
            buckets=bucket_factory(store),
        )
        outbox.start()
        stack.push_async_callback(self._stop_outbox, outbox)

        intake = self._intake = Intake(
            engine,
            on_replies=outbox.submit,
            concat_timeout=settings.webhooks.concat_timeout,
        )
        stack.push_async_callback(self._stop_intake, intake)
        loops = self._supervisor = Supervisor()
        loops.start()
        stack.push_async_callback(loops.aclose)

        # What a previous process left unprocessed, then what failed turns leave (module
        # docstring). A recovery that cannot read the store is restarted with backoff.
        sweep = RECOVERY_RETRY if store.shared else None  # what a dead peer left

        async def recover() -> None:
            await intake.redeliver(RECOVERY_RETRY, sweep=sweep)

        loops.run("inbound recovery", recover)
        pressure = self._backpressure = Backpressure(
            store,
            max_backlog=box.max_backlog,
            max_lag=box.max_lag,
            max_pending_turns=settings.webhooks.max_pending_turns,
            pending_turns=lambda: intake.in_flight,
        )
        if isinstance(store, Notices):  # other processes announce the messages they queue
            loops.run("notices", notice_listener(store, outbox.notify))
        self.loops = background_loops(
            settings,
            store=store,
            engine=engine,
            outbox=outbox,
            intake=intake,
            providers=self.providers,
            backpressure=pressure,
        )
        for loop in self.loops:
            loops.every(loop.name, loop.interval, loop.tick)
        if self._flow_versions() is not None:
            loops.every("flow versions", FLOW_VERSIONS_INTERVAL, self.forget_unused_versions)
        if self._engine_factory is None:  # campaigns start flows: convo's engine runs them
            from convo.runtime.campaigns import campaign_runner

            runner = self._campaigns = campaign_runner(self)
            loops.run("campaigns", runner.run)

    def _build_engine(self, store: Store) -> TurnEngine:
        if self._engine_factory is not None:
            return self._engine_factory(store)
        from convo.flow.engine import Engine
        from convo.flow.triggers import Triggers
        from convo.media import MediaInspector

        lines = {line.number: line.flow for line in self.settings.lines}
        triggers = Triggers({line.number: dict(line.triggers) for line in self.settings.lines})
        return Engine(
            self.flows,
            store,
            lines=lines,
            bot=self.bot,
            on_turn=self.metrics.observe_turn,
            contacts=store.get_contact,
            triggers=triggers,
            media=MediaInspector.for_providers(self.providers.values()),
            shared_codes=self._shared_codes(store),
        )

    def _shared_codes(self, store: Store) -> SharedCodes:
        """The lines whose provider sends from a shared short code (Enco ``shared = true``)."""
        from convo.flow.shared_codes import SharedCodes, SharedCodeSender

        senders = {
            name for name, p in self.providers.items()
            if isinstance(p, SharedCodeSender) and p.shared_code is not None
        }  # fmt: skip
        lines = [line.number for line in self.settings.lines if line.provider in senders]
        return SharedCodes(store, lines)

    # -- flows: reload and versions -------------------------------------------------------

    def _flow_versions(self) -> FlowVersions | None:
        from convo.flow.engine import Engine

        engine = self._engine
        return engine.versions if isinstance(engine, Engine) else None

    def flow_version_counts(self) -> dict[str, int]:
        """Flow id -> versions of it in memory (the metrics' ``convo_flow_versions``)."""
        versions = self._flow_versions()
        return versions.counts() if versions is not None else {}

    async def reload_flows(self) -> list[Diagnostic]:
        """Load ``flows.paths`` again (module docstring). Returns the errors of the files
        that were left out (each logged with its ``file:line:col``); empty when every file
        loaded. ``RuntimeError`` when the runtime has no flows of its own to reload."""
        from convo.flow.loader import check_flows
        from convo.flow.outputs import LoadedFlow

        versions = self._flow_versions()
        if versions is None:
            raise RuntimeError("the runtime has no flows to reload (not started, or no engine)")
        hooks = self.bot.hook_names() if self.bot else None
        # Reading and checking files blocks: in a thread, so webhooks are answered meanwhile.
        paths = list(self.settings.flows.paths)
        specs, errors = await asyncio.to_thread(check_flows, paths, hooks=hooks)
        self.flow_errors = list(errors)
        for error in errors:
            log.error("flow not reloaded: %s", error)
        loaded = {}
        for flow_id, spec in specs.items():
            current = versions.current.get(flow_id)
            if current is not None and current.spec.version == spec.version:
                continue
            try:
                loaded[flow_id] = LoadedFlow.build(spec)
            except ConvoError as exc:
                log.error("flow %s not reloaded: %s", flow_id, exc)
        changed = versions.replace(loaded)
        self.flows.update({flow_id: versions.current[flow_id].spec for flow_id in changed})
        for flow_id in changed:
            log.info(
                "flow %s reloaded: version %s", flow_id, versions.current[flow_id].spec.version
            )
        kept = sorted(set(versions.current) - set(specs))
        if kept:  # their file failed (logged above) or is gone
            log.warning("flow(s) %s not reloaded: the version loaded before stays", ", ".join(kept))
        self.metrics.observe_reload(not errors)
        await self.forget_unused_versions()
        return errors

    async def forget_unused_versions(self) -> None:
        """Keep the current flow versions' sources in the store (marking them current),
        forget the older versions no open conversation runs on, and prune from the store
        those no process has run as current for :data:`FLOW_SOURCE_RETENTION` that no open
        conversation runs on (:mod:`convo.flow.versions`)."""
        versions = self._flow_versions()
        if versions is None or self._store is None:
            return
        now = time.time()
        await versions.save_current(now)
        counts = await self._store.session_counts()
        versions.keep_only({(c.flow, c.flow_version) for c in counts})
        pruned = await self._store.prune_flow_sources(now - FLOW_SOURCE_RETENTION)
        if pruned:
            log.info("forgot %d flow version(s) no conversation runs on any more", pruned)

    def _call_runner(self, engine: TurnEngine) -> CallRunner:
        from convo.flow.calls import CallRunner
        from convo.flow.engine import Engine

        if not isinstance(engine, Engine):
            raise ConfigError("voice providers need convo's Engine (engine_factory gave none)")
        return CallRunner(engine, handoff_numbers=self.settings.handoff)

    def _all_providers(self) -> list[Provider]:
        return [*self.providers.values(), *self.voice_providers.values()]

    # -- stopping, one part each ----------------------------------------------------------

    async def _stop_intake(self, intake: Intake) -> None:
        if not await intake.wait(self._grace_left()):
            log.warning("shutdown: turns still running; their messages are processed at next start")
        await intake.cancel()

    async def _stop_outbox(self, outbox: Outbox) -> None:
        try:
            drained = await outbox.drain(self._grace_left())
        except StoreError as exc:  # the store is down: what is queued stays queued
            log.warning("shutdown: cannot read the outbox (%s)", exc)
            drained = False
        if not drained:
            log.warning("shutdown: replies still unsent; they are sent at the next start")
        await outbox.aclose()

    async def _close_providers(self) -> None:
        for provider in self._all_providers():
            await provider.aclose()

    async def _close_store(self, store: Store) -> None:
        await store.close()


def _built(part: T | None, what: str) -> T:
    if part is None:
        raise RuntimeError(f"the runtime has no {what} (not started, or not one of its parts)")
    return part
