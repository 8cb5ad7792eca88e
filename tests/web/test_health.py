"""/livez, /readyz and /healthz on a real server over a real SQLite file: readiness fails,
with a body naming the failed checks and nothing else, while another connection holds the
file's write lock and while a background loop is down."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from convo.config import Settings
from convo.models import InboundMessage, MessageRecord
from convo.store.sqlite import SqliteStore
from convo.web.app import create_app
from tests.web.conftest import ALICE, LINE

Client = TestClient[Any, Any]


async def test_livez_and_readyz_answer_200_when_all_is_well(client: Client) -> None:
    live = await client.get("/livez")
    assert live.status == 200
    assert await live.json() == {"status": "ok"}
    for path in ("/readyz", "/healthz"):
        ready = await client.get(path)
        assert ready.status == 200
        body = await ready.json()
        assert body["status"] == "ok"
        assert body["checks"]["store"] is True
        assert body["checks"]["outbox"] is True
        assert all(body["checks"].values())


async def test_readyz_fails_while_the_database_is_locked(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "convo.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        for path in ("/readyz", "/healthz"):
            ready = await client.get(path)
            assert ready.status == 503
            assert 0 < int(ready.headers["Retry-After"]) <= 60
            body = await ready.json()
            assert body["failed"] == ["store"]
            assert body["checks"]["store"] is False
            assert "convo.db" not in await ready.text() and str(tmp_path) not in await ready.text()
        assert (await client.get("/livez")).status == 200  # the process itself is fine
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await client.get("/readyz")).status == 200


async def test_readyz_names_a_background_loop_that_is_down(
    aiohttp_client: Callable[[Application], Any], settings: Settings, tmp_path: Path
) -> None:
    # A stored text whose record cannot be read: recovery fails on it, again and again,
    # and waits out its backoff between tries (the loop is down meanwhile).
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    hello = InboundMessage(LINE, ALICE, "hello", provider="sandbox", provider_message_id="a")
    assert await store.add_inbound(MessageRecord.inbound(hello))
    await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "convo.db")) as cx, cx:
        cx.execute("UPDATE messages SET media_urls = '5' WHERE id = ?", (hello.id,))
    client = await aiohttp_client(create_app(settings))
    for _ in range(200):
        ready = await client.get("/readyz")
        if ready.status == 503:
            break
        await asyncio.sleep(0.05)
    body = await ready.json()
    assert ready.status == 503, body
    assert body["failed"] == ["inbound recovery"]
    assert body["checks"]["store"] is True
    assert "Traceback" not in await ready.text() and "media_urls" not in await ready.text()
