"""Replay-safe call turns on every store: :class:`~convo.flow.calls.CallRunner` given the
same webhook twice, one after the other or at the same moment, runs its turn once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from convo.erasure import erase_contact
from convo.flow.calls import CallRunner
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.models import CallEvent, ConversationKey
from convo.store import Store
from convo.voice.instructions import Gather, Hangup, Instruction
from tests.conftest import BACKENDS, open_backend

LINE, CALLER = "+3225550111", "+32470000001"
INPUT_URL = "https://bot.example.com/webhooks/telefoon_voice/voice/input"
FLOW = """
flow: count
languages: [en]
channels: [voice]
start: q1
steps:
  q1: {ask: {text: "First number?", expect: number, save_as: a}, then: q2}
  q2: {ask: {text: "Second number?", expect: number, save_as: b}, then: q3}
  q3: {ask: {text: "Third number?", expect: number, save_as: c}, then: done}
  done: {say: "Thanks.", end: true}
"""


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


def runner(store: Store) -> CallRunner:
    flow = load_flow_text(FLOW, "count.yaml")
    return CallRunner(Engine({"count": flow}, store, lines={LINE: "count"}))


def turn_of(document: Sequence[Instruction]) -> str:
    [gather] = [item for item in document if isinstance(item, Gather)]
    return parse_qs(urlsplit(gather.action).query)["turn"][0]


def pressed(digits: str, call_id: str = "CA1") -> CallEvent:
    return CallEvent("telefoon_voice", call_id, LINE, CALLER, digits=digits)


async def step(store: Store) -> str:
    session = await store.get_session(ConversationKey(LINE, "voice", CALLER))
    assert session is not None
    return session.step


async def test_the_same_input_at_the_same_moment_runs_once(store: Store) -> None:
    calls = runner(store)
    first = await calls.answer(pressed("", "CA1"), INPUT_URL, replay_safe=True)
    turn = turn_of(first)
    both = await asyncio.gather(
        *(calls.input(pressed("7"), INPUT_URL, "gather", turn=turn) for _ in range(2))
    )
    assert both[0] == both[1]  # the second waited for the first's answer
    assert await step(store) == "q2"
    # The next document's input is a new turn, and runs.
    await calls.input(pressed("8"), INPUT_URL, "gather", turn=turn_of(both[0]))
    assert await step(store) == "q3"


async def test_without_a_turn_nothing_is_claimed(store: Store) -> None:
    calls = runner(store)
    await calls.answer(pressed("", "CA1"), INPUT_URL)
    await calls.input(pressed("7"), INPUT_URL, "gather")
    await calls.input(pressed("7"), INPUT_URL, "gather")  # as before: a second turn
    assert await step(store) == "q3"


async def test_a_replayed_answer_gets_the_first_document(store: Store) -> None:
    calls = runner(store)
    first = await calls.answer(pressed("", "CA1"), INPUT_URL, replay_safe=True)
    await calls.input(pressed("7"), INPUT_URL, "gather", turn=turn_of(first))
    again = await calls.answer(pressed("", "CA1"), INPUT_URL, replay_safe=True)
    assert again == first and await step(store) == "q2"
    # Another call of the same caller is a new call: the flow begins again.
    other = await calls.answer(pressed("", "CA2"), INPUT_URL, replay_safe=True)
    assert turn_of(other) != turn_of(first) and await step(store) == "q1"


async def test_erasing_the_caller_seals_what_the_call_was_answered(store: Store) -> None:
    calls = runner(store)
    first = await calls.answer(pressed("", "CA1"), INPUT_URL, replay_safe=True)
    second = await calls.input(pressed("42"), INPUT_URL, "gather", turn=turn_of(first))
    other_caller = CallEvent("telefoon_voice", "CA9", LINE, "+32470000009", digits="")
    kept = await calls.answer(other_caller, INPUT_URL, replay_safe=True)

    report = await erase_contact(store, {}, CALLER)

    assert report.sessions == 1
    # A replay of either webhook runs nothing, stores nothing, and says nothing of the call.
    assert await calls.answer(pressed("", "CA1"), INPUT_URL, replay_safe=True) == [Hangup()]
    again = await calls.input(pressed("42"), INPUT_URL, "gather", turn=turn_of(first))
    assert again == [Hangup()] != second
    assert await store.get_session(ConversationKey(LINE, "voice", CALLER)) is None
    # Another caller's call keeps its answer.
    assert await calls.answer(other_caller, INPUT_URL, replay_safe=True) == kept
