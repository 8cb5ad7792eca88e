"""The shared-code 7-day rule (``convo.flow.shared_codes``).

* End to end: convo's real server on a SQLite file, the Enco simulator, one line on the
  shared code ``8937``. Two flows text one contact from the code (admin API); the
  contact's reply (polled from ``/sms/inboundmessages/shared``) goes to the most recent
  one. When the log says nothing reached them from the code for 7 days (its timestamps
  moved back), the reply starts the line's flow instead.
* The engine with a clock moved forward: only shared-code lines lapse, only messages that
  reached the network count, a conversation handed to a person keeps the text.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from convo.config import parse_settings
from convo.flow.engine import Engine
from convo.flow.loader import load_flow_text
from convo.flow.shared_codes import OWNERSHIP, SharedCodes, SharedCodeSender
from convo.models import ConversationKey, ConversationStatus, InboundMessage, MessageStatus
from convo.providers.enco import EncoSms
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import PHONE, TOKEN, Enco, World, bound_socket, eventually

CODE = "8937"
DEDICATED = "8888"
FLOWS = {
    "welcome": """
flow: welcome
languages: [en]
start: hello
steps:
  hello:
    say: "Welcome to our line."
    end: true
""",
    "survey": """
flow: survey
languages: [en]
start: liked
steps:
  liked:
    ask: {text: "Survey: did you like your visit? Reply YES or NO.", expect: yes_no,
          save_as: liked}
    then: thanks
  thanks:
    say: "Survey noted, thank you."
    end: true
""",
    "reminder": """
flow: reminder
languages: [en]
start: coming
steps:
  coming:
    ask: {text: "Reminder: are you coming tomorrow? Reply YES or NO.", expect: yes_no,
          save_as: coming}
    then: noted
  noted:
    say: "Reminder noted, see you."
    end: true
""",
}


def write_flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, text in FLOWS.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


async def test_a_reply_on_the_shared_code_goes_to_the_latest_sender_for_7_days(
    tmp_path: Path,
) -> None:
    from aiohttp.test_utils import TestServer

    provider = Enco(line=CODE, address="", shared=True)
    sim_server = TestServer(provider.sim.app, host="127.0.0.1")
    await sim_server.start_server()
    sock, url = bound_socket()
    sim_url = str(sim_server.make_url("")).rstrip("/")
    database = tmp_path / "convo.db"
    settings = parse_settings(
        {
            "server": {"public_url": url, "api_token": TOKEN, "shutdown_timeout": 5},
            "store": {"url": f"sqlite:///{database}"},
            "flows": {"paths": [str(write_flows(tmp_path))]},
            "lines": [{"number": CODE, "provider": "enco", "flow": "welcome"}],
            "providers": {"enco": provider.options(sim_url)},
            "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
            "outbox": {"sweep_interval": 0.2, "base_delay": 0.01, "max_delay": 0.05},
        },
        source="shared.toml",
        env={},
    )
    world = World(provider, url, settings)
    provider.sim.webhook_base = url
    await world.start(sock)
    try:

        async def start(flow: str) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=url, headers=headers) as client:
                answer = await client.post("/api/conversations", json={"to": PHONE, "flow": flow})
            assert answer.status_code == 201, answer.text

        async def sent_from_the_code(count: int) -> list[dict[str, Any]]:
            async def probe() -> list[dict[str, Any]] | None:
                out = [m for m in await world.messages() if m["direction"] == "outbound"]
                return out if len(out) >= count and out[-1]["status"] == "sent" else None

            found = await eventually(probe, f"{count} texts sent")
            assert {m["from"] for m in found} == {CODE}
            return found

        await start("survey")
        await sent_from_the_code(1)
        await start("reminder")
        await sent_from_the_code(2)
        assert [s["origin"] for s in provider.sim.sent] == [CODE, CODE]

        await provider.text_in("yes")  # on the shared code; convo's poll fetches it
        assert await world.reply(2) == "Reminder noted, see you."  # the latest sender's

        await start("survey")
        await sent_from_the_code(4)
        assert provider.text(3).startswith("Survey:")
        # Eight days pass without a text from the code to them (the log says so).
        with sqlite3.connect(database, timeout=10) as db:
            db.execute("UPDATE messages SET created_at = created_at - ?", (OWNERSHIP + 86400,))
        await provider.text_in("yes")
        assert await world.reply(4) == "Welcome to our line."  # the line's flow, not survey
        conversation = await world.api(f"/api/conversations/%2B{PHONE[1:]}")
        assert [c["flow"] for c in conversation["conversations"]] == ["welcome"]
    finally:
        await world.stop()
        await sim_server.close()


def inbound(line: str, text: str) -> InboundMessage:
    return InboundMessage(line=line, sender=PHONE, text=text, provider="enco")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "engine.db")
    await store.open()
    yield store
    await store.close()


def engine_for(store: SqliteStore) -> Engine:
    flows = {n: load_flow_text(t, f"{n}.yaml", hooks=set()) for n, t in FLOWS.items()}
    lines = {CODE: "welcome", DEDICATED: "welcome"}
    return Engine(flows, store, lines=lines, shared_codes=SharedCodes(store, [CODE]))


async def mark_sent(store: SqliteStore, messages: list[Any]) -> None:
    for message in messages:
        await store.update_message(message.id, status=MessageStatus.SENT)


def age(store: SqliteStore, seconds: float) -> None:
    """Move every message of the log ``seconds`` into the past."""
    with sqlite3.connect(store.path, timeout=10) as db:
        db.execute("UPDATE messages SET created_at = created_at - ?", (seconds,))


async def test_only_a_shared_code_lapses(store: SqliteStore) -> None:
    engine = engine_for(store)
    for line in (CODE, DEDICATED):
        await mark_sent(store, await engine.start(ConversationKey(line, "sms", PHONE), "survey"))
    age(store, OWNERSHIP - 60)  # not quite 7 days: both conversations still take replies
    [kept] = await engine.handle(inbound(CODE, "yes"))
    assert kept.text == "Survey noted, thank you."

    await mark_sent(store, await engine.start(ConversationKey(CODE, "sms", PHONE), "survey"))
    age(store, OWNERSHIP + 60)
    [lapsed] = await engine.handle(inbound(CODE, "yes"))
    assert lapsed.text == "Welcome to our line."
    # A number of our own keeps its conversation however long it waits.
    [dedicated] = await engine.handle(inbound(DEDICATED, "yes"))
    assert dedicated.text == "Survey noted, thank you."


async def test_only_texts_that_reached_the_network_count(store: SqliteStore) -> None:
    engine = engine_for(store)
    key = ConversationKey(CODE, "sms", PHONE)
    await mark_sent(store, await engine.start(key, "survey"))
    age(store, OWNERSHIP + 60)
    [queued] = await engine.start(key, "reminder")  # never sent: the code owns nothing yet
    [reply] = await engine.handle(inbound(CODE, "yes"))
    assert reply.text == "Welcome to our line."
    await mark_sent(store, await engine.start(key, "reminder"))
    [reply] = await engine.handle(inbound(CODE, "yes"))
    assert reply.text == "Reminder noted, see you."
    assert queued.text.startswith("Reminder:")


async def test_a_handed_off_conversation_keeps_the_text(store: SqliteStore) -> None:
    engine = engine_for(store)
    key = ConversationKey(CODE, "sms", PHONE)
    await mark_sent(store, await engine.start(key, "survey"))
    session = await store.get_session(key)
    assert session is not None
    session.status = ConversationStatus.HANDOFF
    await store.save_turn(session)
    age(store, OWNERSHIP + 60)
    assert await engine.handle(inbound(CODE, "yes")) == []  # a person has it: the bot is quiet
    after = await store.get_session(key)
    assert after is not None and after.flow == "survey"
    assert after.status is ConversationStatus.HANDOFF


async def test_the_window_follows_the_clock(store: SqliteStore) -> None:
    now = [time.time()]
    codes = SharedCodes(store, [CODE], clock=lambda: now[0])
    engine = engine_for(store)
    key = ConversationKey(CODE, "sms", PHONE)
    await mark_sent(store, await engine.start(key, "survey"))
    assert not await codes.lapsed(key)
    assert not await codes.lapsed(ConversationKey(DEDICATED, "sms", PHONE))  # not a code
    now[0] += OWNERSHIP + 60
    assert await codes.lapsed(key)
    with pytest.raises(ValueError, match="ownership"):
        SharedCodes(store, [CODE], ownership=0)


def test_enco_names_its_shared_code() -> None:
    client = httpx.AsyncClient()
    base = {"client_id": "c", "client_secret": "s"}
    shared = EncoSms.from_config("enco", {**base, "shared": True}, client)
    dedicated = EncoSms.from_config("enco", {**base, "address": DEDICATED}, client)
    assert isinstance(shared, SharedCodeSender) and shared.shared_code == CODE
    assert dedicated.shared_code is None
