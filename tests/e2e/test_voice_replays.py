"""A provider delivering a call webhook twice: the flow neither advances twice nor starts again.

On every voice provider, through the real routes of a running server (SQLite file, signed
webhooks), with webhooks made and signed the way that provider's simulator makes them: the
same ``input`` webhook twice (a retry after a lost answer) advances the flow once and gets
the same document; a replayed ``answer`` gets the first answer, and the conversation stays
where the caller had taken it. The support line is the example flow: its language menu
takes 2 (French), and 2 in the main menu would put the caller through to an agent, so a
second advance shows as a handoff.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx

from convo.models import ConversationStatus
from convo.voice.twiml import Node
from tests.e2e.test_voice_providers import CALLER, SUPPORT, World, world  # noqa: F401


class Phone:
    """One simulated inbound call to the support line, its webhooks made by hand."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.caller = world.sim._caller  # the simulator's own caller: its encoding, signing
        self.call = {
            "id": f"call-{uuid.uuid4().hex}",
            "conversation": f"CON-{uuid.uuid4().hex}",  # Vonage's conversation_uuid
            "from": CALLER,
            "to": SUPPORT,
            "direction": "inbound",
            "status": "in-progress",
        }

    def url(self, route: str) -> str:
        return f"{self.world.url}/webhooks/{self.world.kind}/voice/{route}"

    async def post(self, url: str, fields: dict[str, Any], status: int = 200) -> httpx.Response:
        response = await self.caller.post(url, fields)
        assert response.status_code == status, response.text
        return response

    async def answer(self) -> httpx.Response:
        return await self.post(self.url("answer"), self.caller.fields(self.call, "answer"))

    async def press(self, action: str, keys: str, status: int = 200) -> httpx.Response:
        fields = self.caller.fields(self.call) | self.caller.dialect.input_fields(keys, "test")
        return await self.post(action, fields, status)

    def gather_action(self, response: httpx.Response) -> str:
        nodes: list[Node] = self.caller.dialect.parse(
            response.content, response.headers["Content-Type"]
        )
        [action] = [node.get("action") for node in nodes if node.verb == "Gather"]
        assert action is not None and "turn=" in action
        return action


async def test_the_same_input_twice_advances_once(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    first = await phone.press(menu, "2")  # French
    again = await phone.press(menu, "2")  # the provider's retry of the same webhook
    assert again.content == first.content
    session = await world.session(SUPPORT, CALLER)
    assert session is not None
    assert (session.step, session.lang, session.status) == ("main", "fr", ConversationStatus.ACTIVE)
    # The next turn's document names itself anew: its input is a turn of its own.
    main = phone.gather_action(first)
    assert main != menu
    hours = await phone.press(main, "1")
    assert "lundi au vendredi".encode() in hours.content
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_a_replayed_answer_starts_nothing_again(world: World) -> None:
    phone = Phone(world)
    answered = await phone.answer()
    menu = phone.gather_action(answered)
    await phone.press(menu, "2")
    before = await world.session(SUPPORT, CALLER)
    replayed = await phone.answer()
    assert replayed.content == answered.content
    after = await world.session(SUPPORT, CALLER)
    assert before is not None and after is not None
    assert (after.step, after.lang, after.updated_at) == ("main", "fr", before.updated_at)


async def test_another_call_from_the_same_caller_starts_the_flow_again(world: World) -> None:
    phone = Phone(world)
    await phone.press(phone.gather_action(await phone.answer()), "2")
    await phone.post(
        phone.url("status"), phone.caller.fields(phone.call | {"status": "completed"}, "status")
    )
    second = Phone(world)  # a new call: its own call id
    menu = second.gather_action(await second.answer())
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and (session.step, session.status) == (
        "language",
        ConversationStatus.ACTIVE,
    )
    assert menu != phone.gather_action(await phone.answer())


async def test_a_turn_the_store_refused_runs_when_retried(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    db = sqlite3.connect(world.settings.store.url.removeprefix("sqlite:///"))
    try:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON sessions "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
        )
        db.commit()
        french = phone.caller.dialect.input_fields("2", "test")
        refused = await phone.caller.post(menu, phone.caller.fields(phone.call) | french)
        assert refused.status_code >= 500
        session = await world.session(SUPPORT, CALLER)
        assert session is not None and session.step == "language"
        db.execute("DROP TRIGGER refuse")
        db.commit()
    finally:
        db.close()
    # Nothing was committed, so the claim was let go: the retry runs the turn.
    await phone.press(menu, "2")
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and (session.step, session.lang) == ("main", "fr")
