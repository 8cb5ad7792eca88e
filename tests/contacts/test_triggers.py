"""Keyword triggers per line: the first word, case and accents aside, starts its flow even
in the middle of another conversation, which ends (over a real server, SQLite and memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.web import Application

from convo.exceptions import ConfigError
from convo.models import ConversationKey
from convo.runtime import Runtime
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.contacts.conftest import AN, BO, LINE, VISIT_LINE, Client, make_settings

LINES = [
    {"number": LINE, "provider": "sandbox", "flow": "greet",
     "triggers": {"PIZZA": "order", "Café": "order"}},
    {"number": VISIT_LINE, "provider": "sandbox", "flow": "greet"},
]  # fmt: skip


@pytest.fixture(params=["sqlite", "memory"])
async def client(
    request: pytest.FixtureRequest, aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> Client:
    settings = make_settings(tmp_path, request.param, lines=LINES)
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]


async def text(client: Client, sender: str, words: str, line: str = LINE) -> list[str]:
    resp = await client.post("/sandbox/messages", json={"from": sender, "to": line, "text": words})
    assert resp.status == 200, await resp.text()
    return [r["text"] for r in (await resp.json())["replies"]]


async def test_a_keyword_interrupts_the_conversation_and_starts_its_flow(client: Client) -> None:
    assert await text(client, AN, "hello") == ["What is your name?"]
    assert await text(client, AN, "Pizza please") == ["What would you like?"]
    store = client.app[RUNTIME].store
    session = await store.get_session(ConversationKey(LINE, "sms", AN))
    assert session is not None and session.flow == "order"  # greet ended, order runs
    assert await text(client, AN, "margherita") == ["Coming up: margherita."]
    # Case, accents and punctuation aside; only the first word; only this line.
    assert await text(client, BO, "CAFE!") == ["What would you like?"]
    assert await text(client, BO, "café au lait") == ["What would you like?"]
    assert await text(client, BO, "pizzas") == ["Coming up: pizzas."]
    assert await text(client, AN, "PIZZA", line=VISIT_LINE) == ["What is your name?"]
    assert await text(client, AN, "I want pizza", line=VISIT_LINE) == ["Hi I want pizza!"]


async def test_an_opted_out_contact_is_not_started_by_a_keyword(client: Client) -> None:
    await client.app[RUNTIME].store.set_suppressed(LINE, AN, True)
    assert await text(client, AN, "pizza") == []
    assert await client.app[RUNTIME].store.get_session(ConversationKey(LINE, "sms", AN)) is None


@pytest.mark.parametrize(
    ("triggers", "words"),
    [
        ({"PIZZA": "order", "pizza": "greet"}, "'PIZZA' and 'pizza' are the same keyword"),
        ({"TWO WORDS": "order"}, "'TWO WORDS': a trigger is one word"),
        ({"!!": "order"}, "a trigger is one word"),
        ({"PIZZA": 3}, "expected a flow id"),
    ],
)
def test_bad_triggers_fail_at_load(tmp_path: Path, triggers: Any, words: str) -> None:
    lines = [dict(LINES[0], triggers=triggers)]
    with pytest.raises(ConfigError, match="triggers") as info:
        make_settings(tmp_path, lines=lines)
    assert words in str(info.value)


async def test_a_trigger_to_an_unknown_flow_fails_at_start(tmp_path: Path) -> None:
    lines = [dict(LINES[0], triggers={"PIZZA": "pizzeria"})]
    with pytest.raises(ConfigError, match="trigger 'PIZZA': flow 'pizzeria' is not in"):
        async with Runtime(make_settings(tmp_path, lines=lines)):
            pass
