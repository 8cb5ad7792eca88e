"""Backpressure: while the outbox is behind, inbound webhooks are answered 503 with
Retry-After and nothing is stored; it clears by itself; each episode is logged once.

Over a real server and SQLite, with the sandbox provider throttled to 4 replies a second,
so that sixteen strangers writing at once put the outbox behind for a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from convo.backpressure import Backpressure
from convo.exceptions import Overloaded
from convo.models import Direction, MessageRecord, MessageStatus
from convo.store import MemoryStore
from convo.store.base import MessageQuery
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.web.conftest import LINE, TOKEN, make_settings, waiting_flow


def text(msg_id: str, sender: str) -> dict[str, str]:
    return {"id": msg_id, "from": sender, "to": LINE, "text": "hello"}


async def inbound_count(client: Any) -> int:
    store = client.app[RUNTIME].store
    _, total = await store.list_messages(MessageQuery(direction=Direction.INBOUND))
    return int(total)


async def test_texts_are_refused_while_the_outbox_is_behind_and_taken_again_after(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="convo.backpressure")
    settings = make_settings(
        tmp_path,
        providers={"sandbox": {"rate_limit": 4}},
        outbox={"max_backlog": 2, "max_lag": 0},
    )
    client = await aiohttp_client(create_app(settings))
    for n in range(16):  # sixteen replies queued, sent four a second
        resp = await client.post(
            "/webhooks/sandbox/inbound", json=text(f"m{n}", f"+324700001{n:02d}")
        )
        assert resp.status == 200

    # Once the backlog is read (twice a second), new texts are refused, not stored.
    late = "+32470000200"
    deadline = time.monotonic() + 5
    attempt = 0
    while True:
        attempt += 1
        resp = await client.post("/webhooks/sandbox/inbound", json=text(f"late-{attempt}", late))
        if resp.status == 503:
            break
        assert resp.status == 200
        assert time.monotonic() < deadline, "the outbox never counted as behind"
        await asyncio.sleep(0.05)
    refused_id = f"late-{attempt}"
    assert 0 < int(resp.headers["Retry-After"]) < 60
    assert "outbox is behind" in (await resp.json())["error"]
    stored = await inbound_count(client)
    for _ in range(3):  # the provider retries: still refused, still nothing stored
        again = await client.post("/webhooks/sandbox/inbound", json=text(refused_id, late))
        assert again.status == 503
    assert await inbound_count(client) == stored

    # It clears by itself as the replies go out; the retried text is then taken and answered.
    deadline = time.monotonic() + 15
    while (
        resp := await client.post("/webhooks/sandbox/inbound", json=text(refused_id, late))
    ).status == 503:
        assert time.monotonic() < deadline, "backpressure never cleared"
        await asyncio.sleep(0.1)
    assert resp.status == 200
    assert await inbound_count(client) == stored + 1
    runtime = client.app[RUNTIME]
    assert await runtime.intake.wait(5)
    assert await runtime.outbox.drain(15)
    replies, _ = await runtime.store.list_messages(
        MessageQuery(number=late, direction=Direction.OUTBOUND)
    )
    assert len(replies) == attempt  # every text it got through was answered, once

    logged = [r.getMessage() for r in caplog.records if r.name == "convo.backpressure"]
    assert len(logged) == 2, logged  # one episode: its start and its end, not each refusal
    assert logged[0].startswith("outbox behind: ") and "more than max_backlog 2" in logged[0]
    assert logged[1].startswith("outbox caught up ")
    refused = int(logged[1].split("; ")[-1].split()[0])
    assert refused >= 4  # the first refusal and the three retries (more while it waited)


def outbound(n: int, created_at: float, contact: str = "+32470000001") -> MessageRecord:
    return MessageRecord(
        id=f"out-{n}",
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=contact,
        text=f"reply {n}",
        status=MessageStatus.QUEUED,
        created_at=created_at,
        updated_at=created_at,
    )


async def test_lag_is_how_long_the_oldest_due_reply_waited() -> None:
    now = [1000.0]
    store = MemoryStore()
    await store.open()
    pressure = Backpressure(store, max_backlog=0, max_lag=60, clock=lambda: now[0])
    await store.add_outbound([outbound(1, 990.0), outbound(2, 991.0, "+32470000002")])
    await pressure.refresh()
    pressure.check()  # 10 s behind: within the limit

    now[0] = 1052.0  # the oldest has waited 62 s
    await pressure.refresh()
    with pytest.raises(Overloaded) as refused:
        pressure.check()
    assert refused.value.retry_after > 0
    assert "waited 62 s" in str(refused.value)

    # A reply waiting out a backoff (the provider is down) is not lag; the next one is.
    claimed = await store.claim_next(LINE, "+32470000001", now[0])
    assert claimed is not None
    await store.defer_message("out-1", until=now[0] + 600, error="retrying: down")
    await pressure.refresh()
    with pytest.raises(Overloaded, match="waited 61 s"):
        pressure.check()
    await store.update_message("out-2", status=MessageStatus.SENT)
    await pressure.refresh()
    pressure.check()  # caught up
    assert not pressure.behind


async def test_texts_are_refused_while_too_many_wait_for_their_turns(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The turns, not the sends, fall behind: two texts' turns wait in a hook, so with
    ``max_pending_turns = 2`` a third contact's text is refused (nothing stored) until they
    finish; then its retry is taken and answered, and the episode is logged once."""
    caplog.set_level(logging.WARNING, logger="convo.backpressure")
    waiting = waiting_flow(tmp_path)
    settings = make_settings(
        tmp_path,
        **waiting.tables,
        webhooks={"rejected_dir": str(tmp_path / "rejected"), "max_pending_turns": 2},
    )
    client = await aiohttp_client(create_app(settings, bot=waiting.bot))
    for n in range(2):
        resp = await client.post("/webhooks/sandbox/inbound", json=text(f"m{n}", f"+3247000010{n}"))
        assert resp.status == 200  # acknowledged; its turn waits in the hook

    late = "+32470000200"
    for _ in range(3):  # the provider retries: refused each time, nothing stored
        resp = await client.post("/webhooks/sandbox/inbound", json=text("late", late))
        assert resp.status == 503
        assert 0 < int(resp.headers["Retry-After"]) < 60
        assert "turns are behind (2 texts wait for theirs" in (await resp.json())["error"]
    assert await inbound_count(client) == 2
    scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "\nconvo_turns_pending 2.0\n" in await scraped.text()

    waiting.gate.set()
    runtime = client.app[RUNTIME]
    assert await runtime.intake.wait(5)
    resp = await client.post("/webhooks/sandbox/inbound", json=text("late", late))
    assert resp.status == 200  # the turns caught up: the retry is taken at once
    assert await runtime.intake.wait(5)
    assert await runtime.outbox.drain(15)
    replies, _ = await runtime.store.list_messages(
        MessageQuery(number=late, direction=Direction.OUTBOUND)
    )
    assert [r.text for r in replies] == ["Done waiting."]

    deadline = time.monotonic() + 5  # the end is logged by the next refresh (twice a second)
    while len(logged := [r.getMessage() for r in caplog.records]) < 2:
        assert time.monotonic() < deadline, logged
        await asyncio.sleep(0.05)
    assert len(logged) == 2, logged  # one episode: its start and its end
    assert logged[0].startswith("turns behind: 2 texts wait for their turns")
    assert logged[1].startswith("turns caught up ") and logged[1].endswith(
        "3 webhook(s) refused meanwhile"
    )
