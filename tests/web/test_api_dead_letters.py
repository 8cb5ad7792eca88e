"""The admin API's dead letters: `GET /api/outbox/dead` lists them, `POST /api/outbox/retry`
queues them again, and the running server's outbox then sends them (real server, SQLite)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from convo.models import Direction, MessageRecord, MessageStatus
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.web.conftest import ALICE, BOB, LINE, TOKEN, make_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def dead(message_id: str, to: str, age: float) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=to,
        text=f"text of {message_id}",
        status=MessageStatus.DEAD,
        error="503 Service Unavailable",
        created_at=time.time() - age,
    )


async def sent_to(client: Any, number: str) -> list[str]:
    resp = await client.get("/sandbox/messages", params={"number": number})
    return [m["text"] for m in (await resp.json())["messages"]]


async def test_dead_letters_are_listed_retried_and_sent(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    store = client.server.app[RUNTIME].store
    await store.add_outbound(
        [dead("d-1", ALICE, 90_000), dead("d-2", BOB, 80_000), dead("d-3", ALICE, 70_000)]
    )

    assert (await client.get("/api/outbox/dead")).status == 401  # admin only
    resp = await client.get("/api/outbox/dead", headers=AUTH, params={"page_size": "2"})
    listed = await resp.json()
    assert resp.status == 200 and listed["total"] == 3
    assert [m["id"] for m in listed["messages"]] == ["d-3", "d-2"]  # newest first
    assert listed["messages"][0]["error"] == "503 Service Unavailable"

    resp = await client.post("/api/outbox/retry", headers=AUTH, json={"ids": ["d-1", "nope"]})
    assert await resp.json() == {"requeued": ["d-1"], "not_dead": ["nope"]}
    resp = await client.post("/api/outbox/retry", headers=AUTH, json={"all": True})
    assert (await resp.json())["requeued"] == ["d-2", "d-3"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(await sent_to(client, ALICE)) == 2 and await sent_to(client, BOB):
            break
        await asyncio.sleep(0.05)
    assert await sent_to(client, ALICE) == ["text of d-1", "text of d-3"]  # in order
    assert await sent_to(client, BOB) == ["text of d-2"]
    listed = await (await client.get("/api/outbox/dead", headers=AUTH)).json()
    assert listed == {"messages": [], "total": 0, "page": 1, "page_size": 50}


async def test_a_retry_that_cannot_be_understood_is_a_400(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    bodies: list[Any] = [
        {},
        {"ids": ["a"], "all": True},
        {"ids": "a"},
        {"ids": [1]},
        {"all": "yes"},
        {"ids": ["a"], "extra": 1},
        [],
    ]
    for body in bodies:
        resp = await client.post("/api/outbox/retry", headers=AUTH, json=body)
        assert resp.status == 400, body
        assert "error" in await resp.json()
    resp = await client.post("/api/outbox/retry", headers=AUTH, data=b"{not json")
    assert resp.status == 400
