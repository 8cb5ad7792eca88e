"""Calls run the same turn pipeline as texts: opt-out, opt-in and failures on a call do what
they do on SMS. Real parts: the engine, the call runner and a SQLite file store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.bot import Bot, Conversation
from convo.flow.calls import CallRunner
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import CallEvent, ConversationKey, ConversationStatus, InboundMessage
from convo.store.sqlite import SqliteStore
from convo.voice.instructions import Gather, Hangup, Instruction, Say

LINE = "+3225550130"
CALLER = "+32470000031"
INPUT_URL = "https://convo.test/webhooks/test/voice/input"
ERROR = "Sorry, something went wrong on our side. Please try again later."

FLOW = """
flow: prefs
languages: [en]
channels: [sms, voice]
start: menu
slots: [exploding]
steps:
  menu:
    choose:
      text: "Press 1 to stop our texts, 2 to get them again, 3 to check, 4 to test."
      options:
        - {key: "1", goto: stop}
        - {key: "2", goto: again}
        - {key: "3", goto: check}
        - {key: "4", goto: test}
  stop:
    say: "No more texts."
    do: [opt_out]
    end: true
  again:
    say: "Texts are back on."
    do: [opt_in]
    end: true
  check:
    say: "Checking."
    do: [t.backend]
    end: true
  test:
    say: "Testing."
    do: [t.exploding]
    then:
      - if: "exploding"
        goto: check
      - goto: again
"""


class Exploding:
    """A slot value whose truth cannot be told: a bug in a bot, found mid-turn."""

    def __bool__(self) -> bool:
        raise RuntimeError("no truth value")


def make_bot() -> Bot:
    bot = Bot("t")

    @bot.action("t.backend")
    async def backend(conv: Conversation) -> None:
        raise ConnectionError("backend down")

    @bot.action("t.exploding")
    async def exploding(conv: Conversation) -> None:
        conv.slots["exploding"] = Exploding()

    return bot


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "calls.db")
    await store.open()
    yield store
    await store.close()


def runner_for(store: SqliteStore) -> CallRunner:
    flow = load_flow_text(FLOW, "prefs.yaml", hooks={"t.backend", "t.exploding"})
    engine = Engine({"prefs": flow}, store, lines={LINE: "prefs"}, bot=make_bot())
    return CallRunner(engine)


def event(digits: str | None = None) -> CallEvent:
    return CallEvent(provider="test", call_id="c1", line=LINE, caller=CALLER, digits=digits)


async def press(runner: CallRunner, digits: str) -> list[Instruction]:
    first = await runner.answer(event(), INPUT_URL)
    assert isinstance(first[0], Gather)
    return await runner.input(event(digits=digits), INPUT_URL, "gather")


def said(document: list[Instruction]) -> list[str]:
    return [i.text for i in document if isinstance(i, Say)]


async def texts_started(runner: CallRunner) -> list[str]:
    """What an outbound SMS start of the flow to the caller sends (and queues)."""
    key = ConversationKey(LINE, "sms", CALLER)
    return [m.text for m in await runner.engine.start(key, "prefs")]


async def test_a_steps_opt_out_on_a_call_suppresses_the_caller_on_the_line(
    store: SqliteStore,
) -> None:
    runner = runner_for(store)
    document = await press(runner, "1")
    assert said(document) == ["No more texts."] and isinstance(document[-1], Hangup)
    assert await store.is_suppressed(LINE, CALLER)
    assert await texts_started(runner) == []
    assert await store.pending_outbound() == []


async def test_a_steps_opt_in_on_a_call_lifts_the_suppression(store: SqliteStore) -> None:
    runner = runner_for(store)
    await press(runner, "1")
    assert await store.is_suppressed(LINE, CALLER)
    await press(runner, "2")  # a second call
    assert not await store.is_suppressed(LINE, CALLER)
    menu = "Press 1 to stop our texts, 2 to get them again, 3 to check, 4 to test."
    assert await texts_started(runner) == [menu]
    assert [r.text for r in await store.pending_outbound()] == [menu]


async def test_a_failing_hook_on_a_call_costs_one_error_say_and_keeps_the_conversation(
    store: SqliteStore,
) -> None:
    runner = runner_for(store)
    document = await press(runner, "3")
    assert said(document) == [ERROR] and isinstance(document[-1], Hangup)
    session = await store.get_session(ConversationKey(LINE, "voice", CALLER))
    assert session is not None
    assert (session.step, session.status) == ("menu", ConversationStatus.ACTIVE)


async def test_a_bug_mid_turn_is_logged_with_its_traceback_and_handled_the_same(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    runner = runner_for(store)
    with caplog.at_level(logging.ERROR, logger="convo.engine"):
        document = await press(runner, "4")
    assert said(document) == [ERROR] and isinstance(document[-1], Hangup)
    [record] = [r for r in caplog.records if r.name == "convo.engine"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    session = await store.get_session(ConversationKey(LINE, "voice", CALLER))
    assert session is not None and session.step == "menu" and "exploding" not in session.slots


async def test_the_same_bug_over_sms_gets_the_same_error_text(store: SqliteStore) -> None:
    runner = runner_for(store)
    engine = runner.engine
    await engine.handle(InboundMessage(line=LINE, sender=CALLER, text="hi"))
    replies = await engine.handle(InboundMessage(line=LINE, sender=CALLER, text="4"))
    assert [m.text for m in replies] == [ERROR]
    session = await store.get_session(ConversationKey(LINE, "sms", CALLER))
    assert session is not None and session.step == "menu"
