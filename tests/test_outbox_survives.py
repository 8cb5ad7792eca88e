"""The outbox's worker outlives a failure that is not one of convo's own errors.

The fault is real: a row of the SQLite file is corrupted from outside (its ``media_urls``
holds the JSON number ``5`` instead of a list), so reading it raises ``TypeError`` inside
the store, not a ``StoreError``. Every sweep reads that row, so every sweep fails until the
row is repaired.

The corrupt row is always the last one a read returns: a read that fails on an earlier row
leaves its SQLite statement open (until the exception is garbage-collected), and the
store's next write after the repair would then fail with "database is locked".
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox, RetryPolicy
from convo.providers.http import provider_client
from convo.providers.telefoon_sms import TelefoonSms
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.store.sqlite import SqliteStore
from tests.conftest import until

LINE = "+32460000101"
ALICE = "+32470000001"
BOB = "+32470000002"
CAROL = "+32470000003"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[TelefoonSmsSimulator, str]]:
    simulator = TelefoonSmsSimulator(api_key="tk", webhook_secret="tsig")
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    yield simulator, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client() as http:
        yield http


def set_media(path: Path, message_id: str, raw: str) -> None:
    """Write the ``media_urls`` column of one row straight into the file."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE messages SET media_urls = ? WHERE id = ?", (raw, message_id))
    db.close()


def logged(caplog: pytest.LogCaptureFixture, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "convo.outbox" and r.msg.startswith(start)]


async def queue(store: SqliteStore, to: str, text: str) -> OutboundMessage:
    message = OutboundMessage(LINE, to, text)
    await store.add_outbound([MessageRecord.outbound(message)])
    return message


async def test_a_sweep_that_raises_a_foreign_error_is_logged_and_the_worker_lives_on(
    store: SqliteStore,
    sim: tuple[TelefoonSmsSimulator, str],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    simulator, url = sim
    options = {"api_key": "tk", "webhook_secret": "tsig", "base_url": url}
    adapter = TelefoonSms.from_config("telefoon_sms", options, client)
    outbox = Outbox(
        store,
        {"telefoon_sms": adapter},
        {LINE: "telefoon_sms"},
        policy=RetryPolicy(2, base_delay=0.01, max_delay=0.01),
        sweep_interval=0.4,
    )
    # Handed over below; queued (created) before the bad row, so it is read before it.
    fresh = OutboundMessage(LINE, BOB, "handed over", created_at=time.time() - 60)
    bad = await queue(store, ALICE, "bad row")
    set_media(store.path, bad.id, "5")  # json.loads gives 5; tuple(5) raises TypeError
    with pytest.raises(TypeError):
        await store.pending_outbound()  # the fault is real, and not a StoreError

    caplog.set_level(logging.INFO, "convo.outbox")
    outbox.start()
    try:
        await until(lambda: len(logged(caplog, "outbox sweep failed")) >= 4)
        for _ in range(20):  # wake-ups do not make a broken store be read in a tight loop
            outbox.notify()
            await asyncio.sleep(0.005)
        failures = logged(caplog, "outbox sweep failed")
        assert all(r.exc_info and r.exc_info[0] is TypeError for r in failures)
        delays = [r.args[0] for r in failures[:4]]  # type: ignore[index]
        assert delays == [0.1, 0.2, 0.4, 0.4]  # doubling, capped at sweep_interval
        assert outbox.status() == {"outbox": True}

        # Meanwhile a turn's hand-over still goes out; a bad record handed over is logged.
        await store.add_outbound([MessageRecord.outbound(fresh)])
        outbox.submit([fresh, bad])
        await until(lambda: [m["text"] for m in simulator.sent_messages()] == ["handed over"])
        await until(lambda: bool(logged(caplog, "outbox: sending to")))
        [send_failure] = logged(caplog, "outbox: sending to")
        assert send_failure.exc_info and send_failure.exc_info[0] is TypeError

        set_media(store.path, bad.id, "[]")  # repaired: the next sweep sends the rest
        notified = await queue(store, CAROL, "queued by another process")
        outbox.notify()
        assert await outbox.drain(10)
    finally:
        await outbox.aclose()
    assert outbox.status() == {"outbox": False}
    texts = [m["text"] for m in simulator.sent_messages()]
    assert texts[0] == "handed over"  # while the sweep was broken
    assert sorted(texts[1:]) == ["bad row", "queued by another process"]  # after the repair
    for message in (bad, fresh, notified):
        record = await store.get_message(message.id)
        assert record is not None and record.status is MessageStatus.SENT
