"""One turn pipeline for every channel: an event in, a :class:`TurnResult` out.

SMS texts, timers and calls all run their turns through :func:`run_turn`, so what a turn
means is decided once, whatever carries it:

* the event (:data:`Event`) is dispatched to a :class:`~convo.flow.turn.Turn`, which walks
  the flow: slot filling, ``anytime`` handlers, hooks, the step's timer and language;
* a failure (a hook or template raising ``ConvoError``; any other exception is a bug and is
  logged with its traceback) costs one reply, the flow's error text, and changes nothing:
  the result carries no session, so the stored conversation stays where it was;
* what the turn asks of the world besides saving the session is read off the turn once, as
  :class:`Effects` (opt-out / opt-in of the contact on the line, a handoff, the step's due
  timer, a language change).

The channel runners (:class:`~convo.flow.engine.Engine` for SMS and timers,
:class:`~convo.flow.calls.CallRunner` for calls) only take the conversation's lock, load the
session, call :func:`run_turn`, hand the outputs to their channel's presenter and call
:func:`commit`, which persists the result, suppression included, in one ``store.save_turn``.
:func:`new_session` is the one place a conversation is created, for both channels.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from convo.bot import Bot
from convo.exceptions import ConvoError
from convo.flow.outputs import LoadedFlow, Output, Utterance
from convo.flow.params import check_params
from convo.flow.spec import FlowSpec, Handoff
from convo.flow.speech import error_text
from convo.flow.turn import Turn
from convo.media import Media
from convo.models import (
    Contact,
    ConversationKey,
    ConversationStatus,
    MessageRecord,
    Session,
)
from convo.store.base import Store
from convo.values import value

log = logging.getLogger("convo.engine")


# -- events ------------------------------------------------------------------------------


@value
class Begin:
    """A conversation starts at the flow's start step. ``text`` is the message that opened
    it (checked against ``anytime`` handlers, never taken as an answer); None when we opened
    it (an outbound start, an answered call)."""

    text: str | None = None


@value
class Reply:
    """The contact answered ``text``: an SMS text, DTMF digits or recognised speech;
    ``media``: what an MMS carried (flows see it as ``answer.media``)."""

    text: str
    media: tuple[Media, ...] = ()


@value
class Timeout:
    """The durable timeout of the current waiting step fired."""


@value
class Silence:
    """On a call: no input before the gather's timeout (counts as an unusable answer)."""


@value
class Recorded:
    """On a call: the recording of the current ``record`` step (``url`` None: none made)."""

    url: str | None
    duration: float | None


@value
class Dialled:
    """On a call: the dial (or handoff) of the current step ended; ``ok`` is False when
    the other side was busy, did not answer or the call failed."""

    ok: bool


Event = Begin | Reply | Timeout | Silence | Recorded | Dialled


# -- results -----------------------------------------------------------------------------


@value
class Effects:
    """What a turn asks of the world besides saving its session.

    ``suppress``: True puts the contact on the line's suppression list (``opt_out``), False
    takes them off (``opt_in``), None leaves it. ``handoff``: the queue the conversation was
    handed to in this turn. ``timer_due``: when the waiting step's timeout fires (None: no
    timer pending). ``lang``: the conversation's new language, when the turn changed it.
    The timer and the language live in the session, so saving it is all they need; only
    ``suppress`` is applied separately (:func:`commit`).
    """

    suppress: bool | None = None
    handoff: str | None = None
    timer_due: float | None = None
    lang: str | None = None


NO_EFFECTS = Effects()


@dataclass(frozen=True, slots=True)
class TurnResult:
    """One turn's outcome. ``session`` is the conversation as the turn left it, to be saved;
    None when the turn failed (then ``outputs`` is the flow's error text and the stored
    conversation must stay as it was)."""

    key: ConversationKey
    outputs: tuple[Output, ...]
    session: Session | None
    effects: Effects = NO_EFFECTS

    @property
    def failed(self) -> bool:
        return self.session is None


def new_session(
    key: ConversationKey,
    spec: FlowSpec,
    *,
    lang: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    status: ConversationStatus = ConversationStatus.ACTIVE,
) -> Session:
    """A conversation on ``spec`` at its start step. ``lang`` is matched to the flow's
    languages (:meth:`FlowSpec.language_for`: ``nl-BE`` speaks ``nl``, an unknown one the
    default). ``params`` are taken as given (checked by the
    caller); None means a stranger opened it, so the flow's defaults apply and a required
    param raises ``FlowRuntimeError``."""
    if params is None:
        params = check_params(spec, {}, inbound=True)
    return Session(
        key=key,
        flow=spec.id,
        flow_version=spec.version,
        step=spec.start,
        lang=spec.language_for(lang),
        params=dict(params),
        contact_name=name,
        status=status,
    )


async def run_turn(
    loaded: LoadedFlow,
    session: Session,
    event: Event,
    *,
    bot: Bot | None,
    clock: Callable[[], float],
    known: Contact | None = None,
) -> TurnResult:
    """Run ``event`` on ``session`` (changed in place; pass a copy the store handed out).
    ``known`` is the contact record of the session's number, if there is one: templates and
    hooks see its name, time zone and fields (the language is always the session's).
    Never raises for a failing hook, template or bug: see the module docstring."""
    step, lang, status = session.step, session.lang, session.status
    if known is None:
        contact = Contact(session.key.contact, session.lang, session.contact_name)
    else:
        name = known.name or session.contact_name
        contact = Contact(session.key.contact, session.lang, name, known.timezone, known.fields)
    turn = Turn(loaded, session, contact=contact, bot=bot, clock=clock)
    try:
        await _dispatch(turn, event)
    except ConvoError as exc:
        log.error("turn failed for %s in %s/%s: %s", session.key, session.flow, step, exc)
        return _failed(loaded.spec, session, turn, step)
    except Exception:  # a bug must cost one reply, never the message, the call or the server
        log.exception("turn crashed for %s in %s/%s", session.key, session.flow, step)
        return _failed(loaded.spec, session, turn, step)
    session.updated_at = clock()
    effects = Effects(
        suppress=True if turn.opt_out else False if turn.opt_in else None,
        handoff=(
            _handoff_queue(loaded.spec, session, status)
            if session.status is ConversationStatus.HANDOFF
            else None
        ),
        timer_due=session.timer_due,
        lang=session.lang if session.lang != lang else None,
    )
    return TurnResult(session.key, tuple(turn.outputs), session, effects)


async def commit(
    store: Store,
    result: TurnResult,
    *,
    inbound_id: str | None = None,
    outbound: Sequence[MessageRecord] = (),
    call_log: Sequence[MessageRecord] = (),
) -> None:
    """Persist ``result`` in one ``store.save_turn`` (its session, the inbound message
    marked processed, the presented replies queued, the contact's opt-out or opt-in, a
    call turn's ``call_log``).

    A failed turn keeps the stored conversation: it is saved again as it is, only to record
    the inbound message and the error reply in the same transaction (or, with no stored
    conversation, they are recorded on their own)."""
    session = result.session
    if session is None:
        session = await store.get_session(result.key)
        if session is None:
            if outbound:
                await store.add_outbound(outbound)
            if inbound_id is not None:
                await store.mark_processed(inbound_id)
            return
        if inbound_id is None and not outbound and not call_log:
            return  # nothing happened that needs recording
    effects = result.effects
    # The suppression is saved with the turn: an opt-out is never confirmed but not kept.
    await store.save_turn(
        session,
        inbound_id=inbound_id,
        outbound=outbound,
        suppressed=effects.suppress,
        call_log=call_log,
    )
    if effects.handoff is not None:
        log.info("%s handed to queue %r", result.key, effects.handoff)


def _dispatch(turn: Turn, event: Event) -> Awaitable[None]:
    """The turn's handling of ``event``, to await (not a coroutine of its own: this runs on
    every turn)."""
    match event:
        case Begin(text=text):
            return turn.begin(text)
        case Reply(text=text, media=media):
            return turn.answer(text, media)
        case Timeout():
            return turn.timeout()
        case Silence():
            return turn.silence()
        case Recorded(url=url, duration=duration):
            return turn.recorded(url, duration)
        case Dialled(ok=ok):
            return turn.dialled(ok)
        case _:
            assert_never(event)


def _failed(spec: FlowSpec, session: Session, turn: Turn, step: str) -> TurnResult:
    """The flow's error text, reported in the step where the turn started."""
    text = error_text(spec, session.lang, turn.context())
    return TurnResult(session.key, (Utterance(text, session.lang, step),), None)


def _handoff_queue(spec: FlowSpec, session: Session, before: ConversationStatus) -> str | None:
    if session.status is not ConversationStatus.HANDOFF or before is ConversationStatus.HANDOFF:
        return None
    verb = spec.steps[session.step].verb
    return verb.queue if isinstance(verb, Handoff) else ""
