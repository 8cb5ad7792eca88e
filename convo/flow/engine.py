"""The SMS engine: inbound message or due timer -> one turn -> replies queued in the store.

For every event the engine takes the conversation's lock (``store.lock(key)``), loads the
session, runs the turn through the pipeline (:func:`~convo.flow.pipeline.run_turn`), turns
its outputs into :class:`~convo.models.OutboundMessage` values (:mod:`convo.flow.present_sms`)
and commits it (:func:`~convo.flow.pipeline.commit`): the new session, the inbound message
marked processed and the replies queued **in one store transaction**, then the turn's effects
(an opt-out puts the contact on the line's suppression list after its own confirmation is
queued). So two texts from one person arriving together are both handled, in order, and a
crash leaves either the whole turn or none of it.

Several processes on one store (``store.shared``: ``convo serve --workers``, or several
machines). A text stored by one process may be turned by another's recovery, and a
contact's next text may reach another process and win the race for the lock. So on a
shared store :meth:`Engine.process` reads the conversation's unprocessed messages under
the lock (``store.unprocessed_of``): a message already turned elsewhere is skipped, and
the older messages still waiting are turned first, oldest first. Each text is thus turned
once and in the order it was stored, whichever process took its webhook. (One process on
memory or SQLite needs no such read: its lock is first come, first served, and its intake
already keeps recovery and webhooks apart.)

What is SMS's own stays here: a suppressed contact's texts are dropped until they write
START, a conversation handed to a person keeps the bot quiet, a text whose first word is
one of the line's keyword triggers (:mod:`convo.flow.triggers`) starts that flow in place
of whatever conversation was open, and a stranger's first text starts the line's flow. A
flow started by a text gets the flow's error text when it needs params, unless an
``anytime`` handler such as STOP takes it elsewhere. On a shared short code
(``shared_codes``: :mod:`convo.flow.shared_codes`) a conversation that has sent the contact
nothing for 7 days no longer takes their texts: the line's flow starts instead.

Flows have versions (:mod:`convo.flow.versions`): a conversation runs on the version it
started on, or moves forward when a reloaded flow declares ``renamed:``. One whose version
is gone and whose step the current version lacks is never restarted silently: its
message gets the flow's error text, it stays where it is, and the log says what to do.

Every log line written during a turn carries the conversation key
(:func:`convo.logs.conversation_scope`); ``on_turn`` is told each turn's channel, duration
and whether it failed (the runtime's metrics).

The engine knows no provider and no HTTP: it leaves sending to the outbox. It also owns the
durable timers: a step's ``timeout`` is a due time in the store, fired by
:meth:`Engine.fire_timers`, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from convo.bot import Bot
from convo.exceptions import CorruptRecord, FlowRuntimeError, StoreError
from convo.flow.expect import match_words
from convo.flow.outputs import LoadedFlow
from convo.flow.params import check_params
from convo.flow.pipeline import Begin, Event, Reply, Timeout, commit, new_session, run_turn
from convo.flow.present_sms import present_sms
from convo.flow.shared_codes import SharedCodes
from convo.flow.spec import FlowSpec
from convo.flow.speech import error_text
from convo.flow.triggers import Triggers
from convo.flow.turn import match_anytime
from convo.flow.versions import FlowVersions
from convo.logs import conversation_scope
from convo.media import Media, MediaLookup, unchecked
from convo.models import (
    Contact,
    ConversationKey,
    ConversationStatus,
    InboundMessage,
    MessageRecord,
    OutboundMessage,
    Session,
)
from convo.store.base import Store, TimerClaims

log = logging.getLogger("convo.engine")

TIMER_BATCH = 100
"""Due timers read from the store at a time."""
TIMERS_AT_ONCE = 8
"""Claimed timers (a shared store's) fired side by side at most, in one process."""
TIMER_BATCHES = 50
"""Batches one :meth:`Engine.fire_due` fires at most, so a tick ends (5,000 timers) and the
next continues; a campaign's reminders due at one time fire at the store's pace, not 100
per tick."""

#: Looks up what we know of a number (language, name, time zone, fields): when a stranger
#: writes first, and on every turn (templates see ``contact.name`` and ``contact.fields``).
ContactLookup = Callable[[str], Awaitable[Contact | None]]

#: Told of every turn: its channel, how long it took (seconds) and whether it failed.
TurnObserver = Callable[[str, float, bool], None]

#: Words that lift an opt-out, in every language (checked only while a contact is suppressed).
START_WORDS = ("start", "unstop", "aanmelden", "anmelden", "reprendre")


class HeldTurn:
    """A conversation's lock, taken where its text was stored, and its turn as loaded in the
    same store job (:meth:`Engine.receive_held`). Released once, by whoever calls
    :meth:`release` first; later calls do nothing (a turn task cancelled before it ran
    releases it from its done callback)."""

    __slots__ = ("_release", "loaded")

    def __init__(
        self, release: Callable[[], None], loaded: tuple[Session | None, bool] | None
    ) -> None:
        self._release: Callable[[], None] | None = release
        self.loaded = loaded  # (session, suppressed); None: not read, the turn reads it

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class Engine:
    """Runs flows for many conversations at once over one store."""

    def __init__(
        self,
        flows: Mapping[str, FlowSpec | LoadedFlow],
        store: Store,
        *,
        lines: Mapping[str, str] | None = None,
        bot: Bot | None = None,
        clock: Callable[[], float] = time.time,
        contacts: ContactLookup | None = None,
        on_turn: TurnObserver | None = None,
        triggers: Triggers | None = None,
        media: MediaLookup | None = None,
        shared_codes: SharedCodes | None = None,
    ) -> None:
        self.versions = FlowVersions(
            {
                fid: f if isinstance(f, LoadedFlow) else LoadedFlow.build(f)
                for fid, f in flows.items()
            },
            sources=store,
            hooks=bot.hook_names() if bot else None,
        )
        self.on_turn = on_turn
        self.store = store
        self.lines = dict(lines or {})
        self.bot = bot
        self.clock = clock
        self.contacts = contacts
        self.triggers = triggers
        # Describes an MMS's media (type, size, downloadable) before its turn; without it
        # flows see the URLs only, none of them downloadable.
        self._media: MediaLookup = media or unchecked
        self.shared_codes = shared_codes
        self._broken_timers: set[ConversationKey] = set()  # logged once each (fire_due)

    # -- public API ----------------------------------------------------------------------

    @property
    def flows(self) -> dict[str, LoadedFlow]:
        """The current version of every flow, by id."""
        return self.versions.current

    def flow(self, flow_id: str) -> LoadedFlow:
        try:
            return self.flows[flow_id]
        except KeyError:
            known = ", ".join(sorted(self.flows)) or "none"
            raise FlowRuntimeError(f"unknown flow {flow_id!r} (loaded: {known})") from None

    def flow_for_line(self, line: str) -> str | None:
        """The flow a stranger's first message to ``line`` starts."""
        if line in self.lines:
            return self.lines[line]
        if len(self.flows) == 1:
            return next(iter(self.flows))
        return None

    async def receive(self, message: InboundMessage) -> bool:
        """Store ``message`` as unprocessed (before the webhook is acknowledged).
        False when it is a duplicate (same provider message id): do not process it again."""
        return await self.store.add_inbound(MessageRecord.inbound(message))

    async def receive_held(self, message: InboundMessage) -> tuple[bool, HeldTurn | None]:
        """:meth:`receive`; and when the store can, and no turn of the conversation runs or
        waits, also take the conversation's lock and load its turn in the same store job
        (one store round trip fewer per text). The :class:`HeldTurn` (None otherwise, and
        for a duplicate) goes to :meth:`process`, which releases it; whoever does not
        call that must :meth:`HeldTurn.release` it."""
        store = self.store
        key = message.key
        if store.shared:
            return await self.receive(message), None
        idle = getattr(store, "turn_idle", None)
        loading = getattr(store, "add_inbound_loading", None)
        if idle is None or loading is None or not idle(key):
            return await self.receive(message), None
        hold = store.lock(key)
        release = getattr(hold, "release", None)
        if release is None:  # a lock only an ``async with`` can let go of: not handed over
            return await self.receive(message), None
        await hold.__aenter__()  # idle: taken at once, never waited for
        try:
            fresh, loaded = await loading(MessageRecord.inbound(message), key)
        except BaseException:
            release()
            raise
        if not fresh:
            release()
            return False, None
        return True, HeldTurn(release, loaded)

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """``receive`` then ``process``: the whole inbound path in one call (one store job
        for both the text and the turn's load when the conversation is idle:
        :meth:`receive_held`)."""
        store = self.store
        if store.shared or getattr(store, "add_inbound_loading", None) is None:
            # Nothing to hold (memory, PostgreSQL): no coroutine of receive_held's per text.
            if not await self.receive(message):
                return []
            return await self.process(message)
        fresh, held = await self.receive_held(message)
        if not fresh:
            return []
        return await self.process(message, held)

    async def process(
        self, message: InboundMessage, held: HeldTurn | None = None
    ) -> list[OutboundMessage]:
        """Run the turn for a stored inbound message. When this returns, the replies are
        queued in the store (the outbox) in the same transaction as the new state. With
        ``held`` (:meth:`receive_held`) the lock is already taken and the turn loaded; it
        is released when this returns or raises."""
        key = message.key
        if held is not None:
            try:
                with conversation_scope(key):
                    return await self._process_locked(message, held.loaded)
            finally:
                held.release()
        with conversation_scope(key):
            media = None
            if self.store.shared and message.media_urls:
                # There the lock holds one of a few database connections, in a transaction
                # (PostgreSQL): an MMS's media are described before it is taken, so that a
                # slow media host holds neither (media an opening text turns out to have
                # are described all the same, and not used).
                media = await self._media(message)
            async with self.store.lock(key):
                if not self.store.shared:
                    return await self._process_locked(message)
                waiting = await self.store.unprocessed_of(key)
                if all(record.id != message.id for record in waiting):
                    return []  # turned meanwhile, by another process or a recovery
                replies: list[OutboundMessage] = []
                for record in waiting:  # oldest first, up to and including this message
                    described = media if record.id == message.id else None
                    replies += await self._process_locked(record.to_inbound(), media=described)
                    if record.id == message.id:
                        break
                return replies

    async def start(
        self,
        key: ConversationKey,
        flow_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        lang: str | None = None,
        name: str | None = None,
    ) -> list[OutboundMessage]:
        """Start ``flow_id`` with a contact (outbound: reminders, surveys, calls).

        Params are checked against the flow's ``params`` (``FlowRuntimeError`` when a
        required one is missing or has the wrong type). A conversation already open on that
        key is replaced. Nothing is sent to a suppressed contact (returns ``[]``).
        """
        loaded = self.flow(flow_id)
        checked = check_params(loaded.spec, params or {})
        with conversation_scope(key):
            async with self.store.lock(key):
                if await self.store.is_suppressed(key.line, key.contact):
                    log.info("not starting %s for %s: contact opted out", flow_id, key)
                    return []
                session = new_session(key, loaded.spec, lang=lang, params=checked, name=name)
                return await self._turn(loaded, session, Begin())

    async def fire_timers(self, now: float | None = None) -> int:
        """Fire every step timeout due at ``now``; returns how many fired."""
        fired = await self.fire_due(now)
        return len(fired)

    async def fire_due(self, now: float | None = None) -> list[list[OutboundMessage]]:
        """Fire every step timeout due at ``now`` (:data:`TIMER_BATCH` at a time, at most
        :data:`TIMER_BATCHES` batches: the rest at the next call); returns the replies of
        each fired timer (already queued in the store).

        A conversation whose timer cannot fire (its stored state cannot be read: a bug or a
        damaged row, logged once with its key) does not stop the others; a ``StoreError``
        (the store is down) does, and propagates."""
        now = self.clock() if now is None else now
        fired: list[list[OutboundMessage]] = []
        slots = asyncio.Semaphore(TIMERS_AT_ONCE)

        async def fire(key: ConversationKey) -> list[OutboundMessage] | None:
            async with slots:
                return await self._fire_or_log(key, now)

        claims = self.store if isinstance(self.store, TimerClaims) else None
        for _ in range(TIMER_BATCHES):
            if claims is not None:  # several processes: each claims timers of its own
                due = await claims.claim_due_timers(now, limit=TIMER_BATCH)
            else:
                due = await self.store.due_timers(now, limit=TIMER_BATCH)
            if self.store.shared and due and claims is None:
                # Processes reading the same due timers start at different places, so they
                # mostly fire different ones instead of queueing on the same locks.
                at = random.randrange(len(due))  # noqa: S311 - spreading work, not secrecy
                due = due[at:] + due[:at]
            if claims is not None:
                # The claimed timers are this process's alone, each another conversation:
                # fired side by side (a few at a time), not one round trip after another.
                try:
                    async with asyncio.TaskGroup() as group:  # a StoreError stops them all
                        tasks = [group.create_task(fire(key)) for key in due]
                except BaseExceptionGroup as failed:  # StoreErrors (_fire_or_log)
                    raise failed.exceptions[0] from None
                outcomes = [task.result() for task in tasks]
            else:
                outcomes = [await self._fire_or_log(key, now) for key in due]
            fired += [replies for replies in outcomes if replies is not None]
            if len(due) < TIMER_BATCH:
                break
        return fired

    async def _fire_or_log(self, key: ConversationKey, now: float) -> list[OutboundMessage] | None:
        """:meth:`_fire`; a timer that cannot fire is logged (None), a StoreError other
        than a corrupt record propagates."""
        try:
            with conversation_scope(key):
                return await self._fire(key, now)
        except StoreError as exc:
            if not isinstance(exc, CorruptRecord):
                raise
            self._cannot_fire(key)
        except Exception:  # a broken conversation must not stop the others
            self._cannot_fire(key)
        return None

    def _cannot_fire(self, key: ConversationKey) -> None:
        if key not in self._broken_timers:
            self._broken_timers.add(key)
            log.exception("timer of %s cannot fire; the other timers go on", key)

    async def _fire(self, key: ConversationKey, now: float) -> list[OutboundMessage] | None:
        async with self.store.lock(key):
            session = await self.store.get_session(key)
            if session is None or session.timer_due is None or session.timer_due > now:
                return None  # answered (or moved) meanwhile
            loaded = await self.versions.flow_of(session)
            if loaded is None or session.timer_step != session.step:
                if loaded is None:
                    log.error("%s: timeout dropped: %s", key, self.stranded_reason(session))
                session.timer_due = session.timer_step = None
                await self.store.save_turn(session)
                return None
            return await self._turn(loaded, session, Timeout())

    async def contact_of(self, number: str) -> Contact | None:
        """What the contact lookup knows of ``number`` (None without a lookup)."""
        return await self.contacts(number) if self.contacts is not None else None

    async def stranger(self, key: ConversationKey) -> tuple[LoadedFlow, Contact] | None:
        """The flow a stranger's first text or call to ``key.line`` starts, and what we know
        of them (language, name; both None when unknown); None when the line has no flow."""
        flow_id = self.flow_for_line(key.line)
        if flow_id is None or flow_id not in self.flows:
            return None
        known = await self.contact_of(key.contact)
        return self.flows[flow_id], known or Contact(key.contact)

    # -- internals -----------------------------------------------------------------------

    async def _process_locked(
        self,
        message: InboundMessage,
        loaded_turn: tuple[Session | None, bool] | None = None,
        *,
        media: tuple[Media, ...] | None = None,
    ) -> list[OutboundMessage]:
        """The turn of ``message`` (the caller holds the lock): ``loaded_turn`` and
        ``media`` are what the caller read and described already, else read and described
        here."""
        key = message.key
        text = message.text
        log.debug("message %s: %r", message.id, text)  # what people write: DEBUG only
        if loaded_turn is None:
            loaded_turn = await self.store.load_turn(key)
        session, suppressed = loaded_turn
        if suppressed:
            if not match_words(text, START_WORDS):
                await self.store.mark_processed(message.id)
                return []
            await self.store.set_suppressed(key.line, key.contact, False)
        if session is not None and session.status is ConversationStatus.HANDOFF:
            # A person has the conversation: the bot keeps the message and stays quiet.
            await self.store.mark_processed(message.id)
            return []
        triggered = self.triggers.flow_for(key.line, text) if self.triggers else None
        if triggered is not None and triggered in self.flows:
            # A keyword starts its flow whatever is going on; the conversation it
            # interrupts ends (the new one takes its place).
            known = await self.contact_of(key.contact) or Contact(key.contact)
            if session is not None and session.status is not ConversationStatus.ENDED:
                log.info("%s: keyword starts flow %s; %s ends", key, triggered, session.flow)
                known = Contact(
                    key.contact,
                    known.lang or session.lang,
                    known.name or session.contact_name,
                    known.timezone,
                    known.fields,
                )
            return await self._open(self.flows[triggered], known, key, message)
        live = session is not None and session.status is not ConversationStatus.ENDED
        if live and self.shared_codes and await self.shared_codes.lapsed(key):
            days = self.shared_codes.ownership / 86400
            log.info("%s: nothing sent from this shared code in %g days: line's flow", key, days)
            live = False  # the open conversation lapsed: a stranger's first text, below
        loaded = await self.versions.flow_of(session) if session is not None and live else None
        if session is not None and live and loaded is None:
            return await self._stranded(session, message.id)
        if session is None or loaded is None or not live:
            opening = await self.stranger(key)
            if opening is None:
                log.warning("no flow for line %s; message %s kept unanswered", key.line, message.id)
                await self.store.mark_processed(message.id)
                return []
            return await self._open(*opening, key=key, message=message)
        if media is None:
            media = await self._media(message) if message.media_urls else ()
        return await self._turn(loaded, session, Reply(text, media), message.id)

    async def _open(
        self, loaded: LoadedFlow, known: Contact, key: ConversationKey, message: InboundMessage
    ) -> list[OutboundMessage]:
        """Start ``loaded`` with a contact's text (the lock is held): the text is checked
        against the ``anytime`` handlers, never taken as an answer to the start step."""
        text = message.text
        lang, name = known.lang, known.name
        try:
            session = new_session(key, loaded.spec, lang=lang, name=name)
        except FlowRuntimeError as exc:  # e.g. a flow that needs params, started by a text
            spec = loaded.spec
            handler = match_anytime(spec, spec.language_for(lang), text)
            if handler is None or not handler.goto:
                log.error("%s: cannot start flow %s from a message: %s", key, spec.id, exc)
                return await self._refuse(loaded, key, lang, message.id)
            # A stranger's first STOP still opts out: an anytime handler that moves
            # elsewhere never reaches the start step, which is what needs the params.
            session = new_session(key, spec, lang=lang, params={}, name=name)
        return await self._turn(loaded, session, Begin(text), message.id, known)

    async def _turn(
        self,
        loaded: LoadedFlow,
        session: Session,
        event: Event,
        inbound_id: str | None = None,
        known: Contact | None = None,
    ) -> list[OutboundMessage]:
        """Run, present and commit one turn (the caller holds the conversation's lock).
        ``known`` is the contact when the caller has just looked it up; else it is, if the
        flow reads it (``FlowSpec.reads_contact``)."""
        started = time.perf_counter()
        if known is None and loaded.spec.reads_contact:
            known = await self.contact_of(session.key.contact)
        result = await run_turn(loaded, session, event, bot=self.bot, clock=self.clock, known=known)
        messages = present_sms(result)
        records = [MessageRecord.outbound(m) for m in messages]
        await commit(self.store, result, inbound_id=inbound_id, outbound=records)
        if self.on_turn is not None:
            self.on_turn(session.key.channel, time.perf_counter() - started, result.failed)
        return messages

    def stranded_reason(self, session: Session) -> str:
        """Why ``session`` has no flow version to run on, and what to do about it."""
        current = self.flows.get(session.flow)
        if current is None:
            return f"flow {session.flow!r} is not loaded"
        return (
            f"step {session.step!r} of flow {session.flow} version {session.flow_version} "
            f"is not in the current version {current.spec.version}, and that version is "
            f"no longer loaded; declare renamed: {{{session.step}: NEW_STEP}} in "
            f"{current.spec.path} and reload"
        )

    async def _stranded(self, session: Session, inbound_id: str) -> list[OutboundMessage]:
        """A live conversation with no version to run on (module docstring): the flow's
        error text, the message recorded, the conversation left where it is."""
        log.error(
            "%s: message %s not turned: %s", session.key, inbound_id, self.stranded_reason(session)
        )
        current = self.flows.get(session.flow)
        if current is None:
            await self.store.mark_processed(inbound_id)
            return []
        return await self._refuse(current, session.key, session.lang, inbound_id)

    async def _refuse(
        self, loaded: LoadedFlow, key: ConversationKey, lang: str | None, inbound_id: str
    ) -> list[OutboundMessage]:
        """Answer a message that cannot start the line's flow with the flow's error text."""
        spec = loaded.spec
        lang = lang if lang in spec.languages else spec.default_lang
        context = {"contact": {"number": key.contact, "lang": lang}, "lang": lang}
        text = error_text(spec, lang, context)
        message = OutboundMessage(line=key.line, to=key.contact, text=text, lang=lang)
        await self.store.add_outbound([MessageRecord.outbound(message)])
        await self.store.mark_processed(inbound_id)
        return [message]
