"""The conversation engine: inbound message -> turn -> replies queued in the store.

For every event the engine takes the conversation's lock, then loads its session, then runs a
:class:`~convo.flow.turn.Turn` on a copy, then saves the new session, marks the inbound
message processed and queues the replies **in one store transaction**
(:meth:`~convo.store.base.SessionStore.save_turn`). So two texts from one person arriving
together are both handled, in order, and a crash leaves either the whole turn or none of it.

The engine knows no provider and no HTTP: it returns :class:`~convo.models.OutboundMessage`
values and leaves sending them to the outbox. It also owns the durable timers: a step's
``timeout`` is a due time in the store, fired by :meth:`Engine.fire_timers` (or the
:meth:`Engine.run_timers` loop), so it survives a restart.

Opt-out: a turn that runs the built-in ``opt_out`` action queues its own replies (the
confirmation) and then puts the contact on the line's suppression list; after that nothing is
sent to them until they write START.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from convo.bot import Bot
from convo.exceptions import ConvoError, FlowRuntimeError
from convo.flow.expect import match_words
from convo.flow.outputs import LoadedFlow, Output, Utterance
from convo.flow.params import check_params
from convo.flow.spec import FlowSpec
from convo.flow.speech import error_text
from convo.flow.turn import Turn, match_anytime
from convo.models import (
    MESSAGE_METADATA_KEYS,
    Contact,
    ConversationKey,
    ConversationStatus,
    InboundMessage,
    MessageRecord,
    OutboundMessage,
    Session,
)
from convo.store.base import Store

log = logging.getLogger("convo.engine")

#: Looks up what we know of a number (language, name) when a stranger writes first.
ContactLookup = Callable[[str], Awaitable[Contact | None]]

#: Words that lift an opt-out, in every language (checked only while a contact is suppressed).
START_WORDS = ("start", "unstop", "aanmelden", "anmelden", "reprendre")


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
    ) -> None:
        self.flows: dict[str, LoadedFlow] = {
            fid: f if isinstance(f, LoadedFlow) else LoadedFlow.build(f) for fid, f in flows.items()
        }
        self.store = store
        self.lines = dict(lines or {})
        self.bot = bot
        self.clock = clock
        self.contacts = contacts

    # -- public API ----------------------------------------------------------------------

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

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """``receive`` then ``process``: the whole inbound path in one call."""
        if not await self.receive(message):
            return []
        return await self.process(message)

    async def process(self, message: InboundMessage) -> list[OutboundMessage]:
        """Run the turn for a stored inbound message. When this returns, the replies are
        queued in the store (the outbox) in the same transaction as the new state."""
        key = message.key
        async with self.store.lock(key):
            return await self._process_locked(message)

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
        async with self.store.lock(key):
            if await self.store.is_suppressed(key.line, key.contact):
                log.info("not starting %s for %s: contact opted out", flow_id, key)
                return []
            session = self._new_session(key, loaded, lang=lang, params=checked, name=name)
            contact = Contact(key.contact, session.lang, name)
            return await self._run(loaded, session, contact, None, lambda t: t.begin(None))

    async def fire_timers(self, now: float | None = None) -> int:
        """Fire every step timeout due at ``now``; returns how many fired."""
        fired = await self.fire_due(now)
        return len(fired)

    async def fire_due(self, now: float | None = None) -> list[list[OutboundMessage]]:
        """Fire every step timeout due at ``now``; returns the replies of each fired timer
        (already queued in the store)."""
        now = self.clock() if now is None else now
        fired: list[list[OutboundMessage]] = []
        for key in await self.store.due_timers(now):
            async with self.store.lock(key):
                session = await self.store.get_session(key)
                if session is None or session.timer_due is None or session.timer_due > now:
                    continue  # answered (or moved) meanwhile
                loaded = self.flows.get(session.flow)
                if loaded is None or session.timer_step != session.step:
                    session.timer_due = session.timer_step = None
                    await self.store.save_turn(session)
                    continue
                contact = Contact(key.contact, session.lang, session.contact_name)
                fired.append(await self._run(loaded, session, contact, None, lambda t: t.timeout()))
        return fired

    async def run_timers(self, interval: float = 1.0) -> None:
        """Fire due timers every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.fire_timers()
            except ConvoError:
                log.exception("firing timers failed; retrying in %ss", interval)
            await asyncio.sleep(interval)

    # -- internals -----------------------------------------------------------------------

    async def _process_locked(self, message: InboundMessage) -> list[OutboundMessage]:
        key = message.key
        text = message.text
        session, suppressed = await self.store.load_turn(key)
        if suppressed:
            if not match_words(text, START_WORDS):
                await self.store.mark_processed(message.id)
                return []
            await self.store.set_suppressed(key.line, key.contact, False)
        if session is not None and session.status is ConversationStatus.HANDOFF:
            # A person has the conversation: the bot keeps the message and stays quiet.
            await self.store.mark_processed(message.id)
            return []
        loaded = self.flows.get(session.flow) if session else None
        if session is not None and loaded is not None and session.step not in loaded.spec.steps:
            log.warning("%s: step %r gone from flow %s; restart", key, session.step, session.flow)
            session = None
        if session is None or loaded is None or session.status is ConversationStatus.ENDED:
            flow_id = self.flow_for_line(key.line)
            if flow_id is None or flow_id not in self.flows:
                log.warning("no flow for line %s; message %s kept unanswered", key.line, message.id)
                await self.store.mark_processed(message.id)
                return []
            loaded = self.flows[flow_id]
            known = await self.contacts(key.contact) if self.contacts else None
            lang, name = (known.lang, known.name) if known else (None, None)
            try:
                session = self._new_session(key, loaded, lang=lang, params=None, name=name)
            except FlowRuntimeError as exc:  # e.g. a flow that needs params, started by a text
                spec = loaded.spec
                handler = match_anytime(
                    spec, lang if lang in spec.languages else spec.default_lang, text
                )
                if handler is None or not handler.goto:
                    log.error("%s: cannot start flow %s from a message: %s", key, flow_id, exc)
                    return await self._refuse(loaded, key, lang, message.id)
                # A stranger's first STOP still opts out: an anytime handler that moves
                # elsewhere never reaches the start step, which is what needs the params.
                session = self._new_session(key, loaded, lang=lang, params={}, name=name)
            contact = Contact(key.contact, session.lang, name)
            return await self._run(loaded, session, contact, message.id, lambda t: t.begin(text))
        contact = Contact(key.contact, session.lang, session.contact_name)
        return await self._run(loaded, session, contact, message.id, lambda t: t.answer(text))

    def _new_session(
        self,
        key: ConversationKey,
        loaded: LoadedFlow,
        *,
        lang: str | None,
        params: Mapping[str, Any] | None,
        name: str | None,
    ) -> Session:
        spec = loaded.spec
        if params is None:
            params = check_params(spec, {}, inbound=True)
        return Session(
            key=key,
            flow=spec.id,
            flow_version=spec.version,
            step=spec.start,
            lang=lang if lang in spec.languages else spec.default_lang,
            params=dict(params),
            contact_name=name,
        )

    async def _run(
        self,
        loaded: LoadedFlow,
        session: Session,
        contact: Contact,
        inbound_id: str | None,
        event: Callable[[Turn], Any],
    ) -> list[OutboundMessage]:
        step = session.step  # the turn moves it; a failure is reported where it started
        turn = Turn(loaded, session, contact=contact, bot=self.bot, clock=self.clock)
        try:
            await event(turn)
        except ConvoError as exc:
            log.error("turn failed for %s in %s/%s: %s", session.key, session.flow, step, exc)
            return await self._fail(loaded, session, turn, inbound_id)
        except Exception:  # a bug must cost one reply, never the message or the server
            log.exception("turn crashed for %s in %s/%s", session.key, session.flow, step)
            return await self._fail(loaded, session, turn, inbound_id)
        new = turn.session
        new.updated_at = self.clock()
        messages = self.messages(new.key, turn.outputs, metadata(new))
        records = [MessageRecord.outbound(m) for m in messages]
        await self.store.save_turn(new, inbound_id=inbound_id, outbound=records)
        if turn.opt_out:
            await self.store.set_suppressed(new.key.line, new.key.contact, True)
        elif turn.opt_in:
            await self.store.set_suppressed(new.key.line, new.key.contact, False)
        return messages

    async def _fail(
        self,
        loaded: LoadedFlow,
        session: Session,
        turn: Turn,
        inbound_id: str | None,
    ) -> list[OutboundMessage]:
        """A hook or template failed: say the flow's error text and leave the stored
        conversation where it was."""
        text = error_text(loaded.spec, session.lang, turn.context())
        key = session.key
        message = OutboundMessage(line=key.line, to=key.contact, text=text, lang=session.lang)
        existing = await self.store.get_session(key)
        if existing is not None:
            await self.store.save_turn(
                existing, inbound_id=inbound_id, outbound=[MessageRecord.outbound(message)]
            )
        else:
            await self.store.add_outbound([MessageRecord.outbound(message)])
            if inbound_id is not None:
                await self.store.mark_processed(inbound_id)
        return [message]

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

    def messages(
        self,
        key: ConversationKey,
        outputs: Sequence[Output],
        metadata: Mapping[str, str] | None = None,
    ) -> list[OutboundMessage]:
        """The SMS replies of a turn: one message per thing said (empty texts dropped),
        each carrying ``metadata`` for the provider."""
        return [
            OutboundMessage(
                line=key.line,
                to=key.contact,
                text=o.text,
                channel=key.channel,
                lang=o.lang,
                media_urls=o.media,
                metadata=metadata or {},
            )
            for o in outputs
            if isinstance(o, Utterance) and (o.text.strip() or o.media)
        ]


def metadata(session: Session) -> dict[str, str]:
    """The provider metadata of a conversation's replies: its params named in
    ``MESSAGE_METADATA_KEYS`` (a flow declares ``gdpr_consent_ref`` as a param, with a
    default or given when it is started), as text."""
    params = session.params
    return {k: str(params[k]) for k in MESSAGE_METADATA_KEYS if params.get(k) not in (None, "")}
