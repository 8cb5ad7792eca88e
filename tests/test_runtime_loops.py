"""Every background loop of a serving runtime survives an unexpected exception and keeps
working.

Each fault is real: a record broken by hand in the real SQLite file (valid JSON of the
wrong shape, a time written as text), never a patch of convo's code. For each loop: the
fault makes one tick raise something convo does not expect (``TypeError``,
``JSONDecodeError``), the failure is logged with its traceback and the loop's name, and
afterwards the same loop still does its work. Providers are the real simulators on
loopback, or the sandbox.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from convo.config import Settings, parse_settings
from convo.exceptions import StoreError
from convo.models import (
    ConversationKey,
    InboundMessage,
    MessagePart,
    MessageRecord,
    MessageStatus,
)
from convo.providers.sandbox import SandboxSms
from convo.runtime import Runtime
from convo.simulators.enco import EncoSimulator
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from tests.e2e.sms_world import eventually

LINE, ALICE, BOB = "+32460000101", "+32470000001", "+32470000002"
REMIND = """
flow: remind
languages: [en]
start: ask
steps:
  ask:
    ask:
      text: {en: "Coming?"}
      expect: yes_no
      save_as: ok
      timeout: 1s
      on_timeout: nudge
    then: done
  nudge:
    say: {en: "Still there?"}
    end: true
  done:
    say: {en: "Thanks"}
    end: true
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "flows"
    path.mkdir()
    (path / "remind.yaml").write_text(REMIND)
    return path


def settings(tmp_path: Path, flows: Path, **tables: Any) -> Settings:
    doc: dict[str, Any] = {
        "server": {"public_url": "http://127.0.0.1:9", "shutdown_timeout": 2},
        "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
        "flows": {"paths": [str(flows)]},
        "lines": [{"number": LINE, "provider": "sandbox", "flow": "remind"}],
        "webhooks": {"rejected_dir": str(tmp_path / "rejected"), "concat_timeout": 0.2},
        "outbox": {"sweep_interval": 0.1, "base_delay": 0.01, "max_delay": 0.05},
    } | tables
    return parse_settings(doc, source="test.toml", env={})


class Database:
    """The runtime's SQLite file, opened beside it to break and repair records by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, query: str, *args: Any) -> None:
        with sqlite3.connect(self.path, timeout=5) as cx:
            cx.execute(query, args)
        cx.close()

    def count(self, table: str) -> int:
        with sqlite3.connect(self.path, timeout=5) as cx:
            (found,) = cx.execute(f"SELECT count(*) FROM {table}").fetchone()
        cx.close()
        return int(found)


def failures(caplog: pytest.LogCaptureFixture, loop: str, kind: type[BaseException]) -> list[str]:
    """The logged tick failures of ``loop`` caused by ``kind``, with their traceback."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.exc_info and r.exc_info[0] is kind and loop in r.getMessage()
    ]


def inbox(runtime: Runtime, number: str) -> list[str]:
    sandbox = runtime.providers["sandbox"]
    assert isinstance(sandbox, SandboxSms)
    return [m["text"] for m in sandbox.messages_for(number)]


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.ERROR):
        yield caplog


async def test_timers_survive_a_broken_conversation(
    tmp_path: Path, flows: Path, errors: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "convo.db")
    async with Runtime(settings(tmp_path, flows)) as runtime:
        key = ConversationKey(LINE, "sms", ALICE)
        await runtime.engine.start(key, "remind")
        # Valid JSON of the wrong shape: the store reads it, the turn cannot use it.
        db.execute("UPDATE sessions SET slots = '[1]' WHERE contact = ?", ALICE)

        async def failed() -> list[str]:
            return failures(errors, "timers", TypeError)

        await eventually(failed, "the timers tick to fail on the broken conversation")
        assert runtime.status()["timers"] is True  # a failed tick does not stop the loop
        db.execute("UPDATE sessions SET slots = '{}' WHERE contact = ?", ALICE)

        async def nudged() -> bool:
            return "Still there?" in inbox(runtime, ALICE)

        await eventually(nudged, "the repaired conversation's timer to fire", timeout=5)


async def test_long_text_expiry_survives_a_broken_fragment_group(
    tmp_path: Path, flows: Path, errors: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "convo.db")
    async with Runtime(settings(tmp_path, flows)) as runtime:
        # A group key that is not the JSON the intake writes.
        db.execute("INSERT INTO fragment_groups (grp, total, first_at) VALUES ('{oops', 2, 0)")
        db.execute(
            "INSERT INTO fragment_parts (grp, part, text) VALUES ('{oops', 1, ?)",
            json.dumps({"id": "p1", "text": "lost"}),
        )

        async def failed() -> list[str]:
            return failures(errors, "cannot be read", json.JSONDecodeError)

        await eventually(failed, "the broken group to be logged")
        part = InboundMessage(LINE, BOB, "hello ", provider="sandbox", provider_message_id="b1",
                              part=MessagePart("ref", 1, 2))  # fmt: skip
        assert await runtime.intake.accept(part) is None  # waits for its second part

        async def answered() -> bool:
            return inbox(runtime, BOB) == ["Coming?"]

        await eventually(answered, "the incomplete long text to be delivered after its timeout")


async def test_inbound_recovery_is_retried_until_it_succeeds(
    tmp_path: Path, flows: Path, errors: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "convo.db")
    config = settings(tmp_path, flows)
    async with Runtime(config) as before:  # a text stored, then the process died
        hello = InboundMessage(LINE, ALICE, "hello", provider="sandbox", provider_message_id="a")
        assert await before.store.add_inbound(MessageRecord.inbound(hello))
        await before.intake.wait(2)
        db.execute("UPDATE messages SET processed = 0 WHERE id = ?", hello.id)
    db.execute("UPDATE messages SET media_urls = '5' WHERE id = ?", hello.id)
    async with Runtime(config) as runtime:

        async def failed() -> list[str]:
            return failures(errors, "inbound recovery", TypeError)

        await eventually(failed, "recovery at start to fail on the broken message")
        db.execute("UPDATE messages SET media_urls = '[]' WHERE id = ?", hello.id)

        async def answered() -> bool:
            return inbox(runtime, ALICE) == ["Coming?"]

        await eventually(answered, "the stored text to be turned by a later recovery", timeout=5)


async def test_pruning_seen_tokens_survives_a_lost_table(
    tmp_path: Path, flows: Path, errors: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "convo.db")
    config = settings(tmp_path, flows, store={"url": f"sqlite:///{db.path}", "seen_retention": 1})
    async with Runtime(config) as runtime:
        assert [loop.interval for loop in runtime.loops if loop.name == "prune seen"] == [0.05]
        db.execute("DROP TABLE seen_tokens")  # every prune now fails in SQLite

        async def failed() -> list[str]:
            return failures(errors, "prune seen", StoreError)

        await eventually(failed, "the prune tick to fail without its table")
        db.execute(
            "CREATE TABLE seen_tokens (namespace TEXT NOT NULL, token TEXT NOT NULL, "
            "seen_at REAL NOT NULL, PRIMARY KEY (namespace, token)) WITHOUT ROWID"
        )
        now = time.time()
        assert not await runtime.store.seen("part:sandbox", "old", now - 60)
        assert not await runtime.store.seen("part:sandbox", "new", now + 60)

        async def pruned() -> bool:
            return db.count("seen_tokens") == 1

        await eventually(pruned, "the token older than seen_retention to be forgotten")
        assert await runtime.store.seen("part:sandbox", "new", now + 60)  # the young one stays


# -- providers on loopback ---------------------------------------------------------------------


@pytest.fixture
async def telefoon() -> AsyncIterator[tuple[TelefoonSmsSimulator, str]]:
    sim = TelefoonSmsSimulator(api_key="tk", webhook_secret="tsig")
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield sim, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_reconciliation_survives_a_broken_message(
    tmp_path: Path,
    flows: Path,
    telefoon: tuple[TelefoonSmsSimulator, str],
    errors: pytest.LogCaptureFixture,
) -> None:
    sim, url = telefoon
    db = Database(tmp_path / "convo.db")
    config = settings(
        tmp_path,
        flows,
        lines=[{"number": LINE, "provider": "telefoon_sms", "flow": "remind"}],
        providers={"telefoon_sms": {"api_key": "tk", "webhook_secret": "tsig", "base_url": url}},
        outbox={"sweep_interval": 0.1, "reconcile_after": 0.1},
    )
    async with Runtime(config) as runtime:
        # Two messages went out; neither delivery receipt came.
        for contact in (ALICE, BOB):
            await runtime.engine.start(ConversationKey(LINE, "sms", contact), "remind")
        assert await runtime.outbox.drain(5)
        sent = {m["to"]: m["id"] for m in sim.messages.values() if m["direction"] == "outbound"}
        assert set(sent) == {ALICE, BOB}
        # Bob's has a creation time that is not a number.
        db.execute("UPDATE messages SET created_at = 'soon' WHERE contact = ?", BOB)

        async def failed() -> list[str]:
            return failures(errors, "reconcile", TypeError)

        await eventually(failed, "the reconcile tick to fail on the broken message")
        db.execute("UPDATE messages SET created_at = updated_at WHERE contact = ?", BOB)
        for message_id in sent.values():
            sim.messages[message_id]["status"] = "delivered"  # the receipts that were lost

        async def reconciled() -> bool:
            for message_id in sent.values():
                record = await runtime.store.find_message("telefoon_sms", message_id)
                if record is None or record.status is not MessageStatus.DELIVERED:
                    return False
            return True

        await eventually(reconciled, "the lost receipt to be reconciled", timeout=5)


async def test_enco_polling_survives_a_broken_message(
    tmp_path: Path, flows: Path, errors: pytest.LogCaptureFixture
) -> None:
    sim = EncoSimulator(client_id="ec", client_secret="es", dedicated_addresses=["8888"])
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    enco = {"client_id": "ec", "client_secret": "es", "token_url": f"{url}/token",
            "base_url": url, "address": "8888", "poll_interval": 0.05,
            "delivery_callbacks": False}  # fmt: skip
    config = settings(
        tmp_path,
        flows,
        lines=[{"number": "8888", "provider": "enco", "flow": "remind"}],
        providers={"enco": enco},
    )
    db = Database(tmp_path / "convo.db")
    try:
        async with Runtime(config) as runtime:
            sim.queue_inbound(ALICE, "8888", "hello")

            async def replied(count: int) -> bool:
                return len(sim.sent) >= count

            await eventually(lambda: replied(1), "the reply to the first polled text")
            info_id = sim.sent[0]["id"]
            record = await runtime.store.find_message("enco", info_id)
            assert record is not None
            # Valid JSON of the wrong shape where the message's media list belongs.
            db.execute("UPDATE messages SET media_urls = '5' WHERE id = ?", record.id)
            await sim.deliver_status(info_id)  # the next status poll brings its report

            async def failed() -> list[str]:
                return failures(errors, "poll enco", TypeError)

            await eventually(failed, "the poll tick to fail on the broken message")
            sim.queue_inbound(BOB, "8888", "hello")
            await eventually(lambda: replied(2), "the reply to a text polled after the failure")
            assert sim.sent[1]["destinations"] == [BOB]
    finally:
        await server.close()
