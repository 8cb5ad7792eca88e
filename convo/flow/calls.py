"""Phone calls: the same flows and the same turn pipeline, answered with call instructions.

:class:`CallRunner` sits beside the :class:`~convo.flow.engine.Engine` (same store, flows,
bot and clock) and turns call webhooks into pipeline events:

* ``answer``: a call was answered (an inbound call, or our outbound call) -> the flow begins;
* ``input``: a Gather's digits/speech (none = silence), a Record's recording, or a Dial's
  outcome, told apart by ``after`` (we put ``?after=gather|record|dial`` on the action URLs
  we hand out, so no provider field is needed for it);
* ``status``: the call ended -> the conversation is closed.

Each turn goes the way an SMS turn goes: take the conversation's lock, load, run the
pipeline (:func:`~convo.flow.pipeline.run_turn`), commit the result in one ``save_turn`` and
apply its effects (an ``opt_out`` on a call puts the caller on the line's suppression list,
so no text reaches them afterwards). The outputs are then presented as neutral call
instructions (:mod:`convo.flow.present_voice`); the provider adapter renders them. Each
turn logs what the caller did and what the call said in the message log
(:mod:`convo.flow.call_log`), in its ``save_turn``, so a contact's transcript shows calls.

Replays. A provider may deliver a call webhook twice (a retry after a timeout, a proxy's
replay). Each document a turn answers names itself in its action URLs
(``&turn=TOKEN``, :func:`~convo.flow.present_voice.action_url`), so an ``input`` webhook
says which document it answers; with ``turn`` given, :meth:`CallRunner.input` claims
``(provider, call id, turn)`` in the store (:class:`~convo.store.base.IdempotentRequests`)
under the conversation's lock, runs the turn and stores the instructions it answered
(:mod:`convo.voice.codec`). The same webhook again finds them and gets them again, and the
flow does not advance. An ``answer`` webhook given ``replay_safe`` is claimed the same way
by ``(provider, call id)``: a replayed answer gets the first answer, never a second start.
A turn that fails frees its claim (nothing was committed; a retry runs it). A claim with no
answer (the process stopped between committing the turn and storing its answer, so whether
the turn counted is unknown) is answered with a hang-up, logged as an error, rather than
risk running the turn twice. Without ``turn`` (a test harness, the console's phone) nothing
is claimed.

Every conversation on a call is keyed ``(line, "voice", caller)``, and every line logged
during its turns carries that key. A call runs on the flow version it started on
(:mod:`convo.flow.versions`); one whose version is gone and whose step the current version
lacks is hung up, logged as an error, never restarted.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, assert_never

from convo.flow.call_log import call_records
from convo.flow.engine import Engine
from convo.flow.outputs import LoadedFlow
from convo.flow.params import check_params
from convo.flow.pipeline import (
    Begin,
    Dialled,
    Event,
    Recorded,
    Reply,
    Silence,
    commit,
    new_session,
    run_turn,
)
from convo.flow.present_voice import After, instructions, locale_of
from convo.logs import conversation_scope
from convo.models import CallEvent, ConversationKey, ConversationStatus, Session
from convo.store.base import SEALED
from convo.voice import codec
from convo.voice.instructions import Hangup, Instruction

__all__ = ["After", "CallRunner", "instructions", "locale_of"]

log = logging.getLogger("convo.calls")

FAILED_DIALS = ("busy", "no-answer", "failed", "canceled")


class CallRunner:
    """Runs calls on an engine's flows and store. ``input_url`` is the provider's
    ``/webhooks/P/voice/input`` URL built from ``server.public_url``; ``handoff_numbers``
    maps a handoff queue to the number a call dials for it."""

    def __init__(self, engine: Engine, *, handoff_numbers: Mapping[str, str] | None = None):
        self.engine = engine
        self.handoff_numbers = dict(handoff_numbers or {})

    async def prepare_outbound(
        self,
        key: ConversationKey,
        flow_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        lang: str | None = None,
    ) -> None:
        """Before placing a call: remember which flow (and params) the answer starts.
        Raises ``FlowRuntimeError`` for an unknown flow or bad params."""
        loaded = self.engine.flow(flow_id)
        checked = check_params(loaded.spec, params or {})
        session = new_session(
            key, loaded.spec, lang=lang, params=checked, status=ConversationStatus.PENDING
        )
        async with self.engine.store.lock(key):
            await self.engine.store.save_turn(session)

    async def answer(
        self, event: CallEvent, input_url: str, *, replay_safe: bool = False
    ) -> list[Instruction]:
        """The call was answered: begin the line's flow (or the prepared outbound one).
        ``replay_safe``: the same call's answer again gets the first answer (module
        docstring)."""
        key = event.key
        with conversation_scope(key):
            async with self.engine.store.lock(key):
                if not replay_safe:
                    return await self._answer(event, input_url)
                claim = codec.call_key(event.provider, event.call_id) + "answer"
                return await self._once(
                    claim, "answer", event, lambda: self._answer(event, input_url)
                )

    async def _answer(self, event: CallEvent, input_url: str) -> list[Instruction]:
        """:meth:`answer`; the caller holds the conversation's lock."""
        key = event.key
        session = await self.engine.store.get_session(key)
        if session is None or session.status is not ConversationStatus.PENDING:
            opening = await self.engine.stranger(key)
            if opening is None:
                log.warning("call %s to line %s: no flow for that line", event.call_id, key.line)
                return [Hangup()]
            loaded, known = opening
            session = new_session(key, loaded.spec, lang=known.lang, name=known.name)
        else:
            session.status = ConversationStatus.ACTIVE
            prepared = await self.engine.versions.flow_of(session)
            loaded = prepared or self.engine.flow(session.flow)
            if prepared is None:  # reloaded since the call was placed: begin anew
                session = new_session(key, loaded.spec, lang=session.lang, params=session.params)
        return await self._turn(loaded, session, event, Begin(), input_url)

    async def input(
        self, event: CallEvent, input_url: str, after: After, *, turn: str | None = None
    ) -> list[Instruction]:
        """A Gather, Record or Dial result for the call's current step. ``turn``: the token
        of the document it answers (from our action URL); the same ``turn`` again gets the
        first answer and the flow does not advance (module docstring)."""
        key = event.key
        with conversation_scope(key):
            async with self.engine.store.lock(key):
                if not turn:
                    return await self._input(event, input_url, after)
                claim = codec.call_key(event.provider, event.call_id) + f"turn {turn}"
                return await self._once(
                    claim,
                    _fingerprint(event, after),
                    event,
                    lambda: self._input(event, input_url, after),
                )

    async def _once(
        self,
        claim: str,
        fingerprint: str,
        event: CallEvent,
        run: Callable[[], Awaitable[list[Instruction]]],
    ) -> list[Instruction]:
        """``run()`` once per ``claim``: a repeat gets the stored answer. The caller holds
        the conversation's lock, so a repeat arriving meanwhile waits for the answer."""
        store = self.engine.store
        found = await store.claim_request(claim, fingerprint, self.engine.clock())
        if found is not None:
            if found.answer is None:
                log.error(
                    "call %s: webhook %r came again, but its first delivery stopped after "
                    "its turn began and before its answer was stored; hung up rather than "
                    "risk running the turn twice",
                    event.call_id,
                    claim,
                )
                return [Hangup()]
            if found.fingerprint == SEALED:
                log.info(
                    "call %s: webhook %r replayed after its caller was erased", event.call_id, claim
                )
            elif found.fingerprint != fingerprint:
                log.warning(
                    "call %s: webhook %r came again with other input; it was answered "
                    "already, so it gets that answer and changes nothing",
                    event.call_id,
                    claim,
                )
            else:
                log.info(
                    "call %s: webhook %r replayed: the first answer again", event.call_id, claim
                )
            return codec.loads(found.answer)
        try:
            answered = await run()
        except BaseException:
            await store.settle_request(claim, None)  # nothing committed: a retry may run it
            raise
        await store.settle_request(claim, codec.dumps(answered))
        return answered

    async def _input(self, event: CallEvent, input_url: str, after: After) -> list[Instruction]:
        """:meth:`input`; the caller holds the conversation's lock."""
        session = await self.engine.store.get_session(event.key)
        if session is None or session.status is not ConversationStatus.ACTIVE:
            if session is None or session.status is not ConversationStatus.HANDOFF:
                log.warning("input for call %s without an active conversation", event.call_id)
            return [Hangup()]  # (after a handoff: the agent's leg ended)
        loaded = await self.engine.versions.flow_of(session)
        if loaded is None:
            log.error(
                "call %s hung up: %s",
                event.call_id,
                self.engine.stranded_reason(session),
            )
            return [Hangup()]
        return await self._turn(loaded, session, event, _input_event(event, after), input_url)

    async def status(self, event: CallEvent) -> None:
        """A call status webhook: a final status closes the conversation."""
        if not event.status.final:
            return
        key = event.key
        with conversation_scope(key):
            await self._close(key)

    async def _close(self, key: ConversationKey) -> None:
        async with self.engine.store.lock(key):
            session = await self.engine.store.get_session(key)
            if session is not None and session.status is not ConversationStatus.ENDED:
                session.status = ConversationStatus.ENDED
                session.timer_due = session.timer_step = None
                session.updated_at = self.engine.clock()
                await self.engine.store.save_turn(session)

    async def _turn(
        self, loaded: LoadedFlow, session: Session, call: CallEvent, event: Event, input_url: str
    ) -> list[Instruction]:
        """Run one turn and present it, then commit it with its call log (what the caller
        did and what the call says next: ``convo.flow.call_log``). The caller holds the
        lock."""
        engine = self.engine
        started = time.perf_counter()
        spec = loaded.spec
        known = await engine.contact_of(session.key.contact) if spec.reads_contact else None
        result = await run_turn(
            loaded, session, event, bot=engine.bot, clock=engine.clock, known=known
        )
        presented = instructions(
            loaded.spec,
            result.outputs,
            input_url=input_url,
            handoff_numbers=self.handoff_numbers,
            turn=secrets.token_urlsafe(9),
        )
        await commit(engine.store, result, call_log=call_records(call, event, presented))
        if engine.on_turn is not None:
            engine.on_turn("voice", time.perf_counter() - started, result.failed)
        return presented


def _fingerprint(event: CallEvent, after: After) -> str:
    """What an input webhook reports, as a digest: a repeat with other input is told."""
    dial = event.dial_status.value if event.dial_status is not None else None
    reported = (after, event.digits, event.speech, event.recording_url, dial)
    return hashlib.sha256(repr(reported).encode()).hexdigest()


def _input_event(event: CallEvent, after: After) -> Event:
    """The pipeline event an ``input`` webhook reports."""
    match after:
        case "record":
            return Recorded(event.recording_url, event.recording_duration)
        case "dial":
            status = event.dial_status
            return Dialled(status is None or status.value not in FAILED_DIALS)
        case "gather":
            answer = event.digits or event.speech
            return Silence() if answer is None else Reply(answer)
        case _:
            assert_never(after)
