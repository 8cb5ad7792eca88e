"""Webhook routes on a real aiohttp server with the sandbox provider and a SQLite store."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from convo.models import Direction, MessagePart
from convo.providers.sandbox import sign
from convo.store.base import MessageQuery
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.web.conftest import ALICE, LINE, make_settings, waiting_flow

Client = TestClient[Any, Any]


def inbound(text: str, msg_id: str = "m1", sender: str = ALICE) -> dict[str, str]:
    return {"id": msg_id, "from": sender, "to": LINE, "text": text}


async def settle(client: Client) -> None:
    """Wait for turns in flight and the outbox to finish."""
    assert await client.app[RUNTIME].intake.wait(5)
    assert await client.app[RUNTIME].outbox.drain(5)


async def log_of(client: Client, **filters: Any) -> list[Any]:
    found, _ = await client.app[RUNTIME].store.list_messages(MessageQuery(page_size=100, **filters))
    return found


async def test_inbound_is_stored_then_answered_and_sent(client: Client) -> None:
    resp = await client.post("/webhooks/sandbox/inbound", json=inbound("hello"))
    assert resp.status == 200
    assert await resp.json() == {"received": 1}
    await settle(client)
    out = await log_of(client, direction=Direction.OUTBOUND)
    assert [m.text for m in out] == ["What is your name?"]
    assert out[0].status == "delivered" and out[0].provider == "sandbox"
    assert out[0].provider_message_id
    phone = await client.get("/sandbox/messages", params={"number": ALICE})
    assert [m["text"] for m in (await phone.json())["messages"]] == ["What is your name?"]


async def test_duplicate_webhook_gets_one_reply(client: Client) -> None:
    for _ in range(3):
        resp = await client.post("/webhooks/sandbox/inbound", json=inbound("hello", "dup-1"))
        assert resp.status == 200
    await settle(client)
    assert len(await log_of(client, direction=Direction.INBOUND)) == 1
    assert len(await log_of(client, direction=Direction.OUTBOUND)) == 1


async def test_malformed_webhooks_get_400_and_are_kept(client: Client, tmp_path: Path) -> None:
    cases = [
        (
            {
                "data": "from=x&to=y",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "application/json",
        ),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, "not valid JSON"),
        ({"json": {"id": "m1", "from": ALICE, "to": LINE}}, "'text'"),
        ({"json": inbound("hi") | {"from": "not-a-number"}}, "not a phone number"),
    ]
    for kwargs, expected in cases:
        resp = await client.post("/webhooks/sandbox/inbound", **kwargs)
        assert resp.status == 400, kwargs
        assert expected in (await resp.json())["error"]
    kept = sorted((tmp_path / "rejected").glob("*.json"))
    assert len(kept) == len(cases)
    first = json.loads(kept[0].read_text())
    assert first["provider"] == "sandbox" and first["error"]
    assert await log_of(client) == []  # nothing changed


async def test_large_body_gets_413_and_changes_nothing(client: Client) -> None:
    body = b'{"text": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = await client.post(
        "/webhooks/sandbox/inbound",
        data=io.BytesIO(body),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert "larger than" in (await resp.json())["error"]
    assert await log_of(client) == []


async def test_unknown_provider_is_404(client: Client) -> None:
    resp = await client.post("/webhooks/nope/inbound", json=inbound("hi"))
    assert resp.status == 404
    assert "nope" in (await resp.json())["error"]


async def test_bad_signature_gets_401_and_changes_nothing(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, providers={"sandbox": {"webhook_secret": "s3cret"}})
    client = await aiohttp_client(create_app(settings))
    body = json.dumps(inbound("hello")).encode()
    headers = {"Content-Type": "application/json"}
    for signature in (None, sign("wrong", body), sign("s3cret", body + b" ")):
        extra = {"X-Signature": signature} if signature else {}
        resp = await client.post("/webhooks/sandbox/inbound", data=body, headers=headers | extra)
        assert resp.status == 401
        assert "X-Signature" in (await resp.json())["error"]
    assert await log_of(client) == []
    assert list((tmp_path / "rejected").glob("*")) == []
    good = await client.post(
        "/webhooks/sandbox/inbound",
        data=body,
        headers=headers | {"X-Signature": sign("s3cret", body)},
    )
    assert good.status == 200
    await settle(client)
    assert len(await log_of(client, direction=Direction.OUTBOUND)) == 1


async def test_status_webhook_updates_the_log(client: Client) -> None:
    await client.post("/webhooks/sandbox/inbound", json=inbound("hello"))
    await settle(client)
    [out] = await log_of(client, direction=Direction.OUTBOUND)
    # A late 'sent' never moves 'delivered' back.
    resp = await client.post(
        "/webhooks/sandbox/status", json={"id": out.provider_message_id, "status": "sent"}
    )
    assert resp.status == 200 and (await resp.json())["applied"] == 1
    assert (await client.app[RUNTIME].store.get_message(out.id)).status == "delivered"
    resp = await client.post("/webhooks/sandbox/status", json={"id": "x", "status": "bogus"})
    assert resp.status == 400


async def test_concatenated_parts_are_joined_in_any_order(client: Client) -> None:
    from convo.models import InboundMessage

    intake = client.app[RUNTIME].intake
    parts = [(3, "c"), (1, "Al"), (2, "i"), (1, "Al")]  # last one: a provider retry
    for n, (index, text) in enumerate(parts):
        msg = InboundMessage(
            line=LINE,
            sender=ALICE,
            text=text,
            provider="sandbox",
            provider_message_id=f"p{index}" if n < 3 else "p1",
            part=MessagePart("ref-7", index, 3),
        )
        await intake.accept(msg)
    await settle(client)
    [received] = await log_of(client, direction=Direction.INBOUND)
    assert received.text == "Alic"
    assert received.provider_message_id == "p1"


async def test_incomplete_parts_are_delivered_after_the_timeout(client: Client) -> None:
    from convo.models import InboundMessage

    intake = client.app[RUNTIME].intake
    await intake.accept(
        InboundMessage(
            line=LINE,
            sender=ALICE,
            text="half",
            provider="sandbox",
            provider_message_id="q1",
            part=MessagePart("r", 1, 2),
        )
    )
    assert await intake.expire_fragments() == 0  # not yet old enough
    intake.clock = lambda: 10**10
    assert await intake.expire_fragments() == 1
    await settle(client)
    assert [m.text for m in await log_of(client, direction=Direction.INBOUND)] == ["half"]


async def test_shutdown_waits_for_an_in_flight_turn(aiohttp_client: Any, tmp_path: Path) -> None:
    waiting = waiting_flow(tmp_path)
    app = create_app(make_settings(tmp_path, **waiting.tables), bot=waiting.bot)
    client = await aiohttp_client(app)
    resp = await client.post("/webhooks/sandbox/inbound", json=inbound("hi"))
    assert resp.status == 200  # acknowledged while the turn is still running
    await asyncio.wait_for(waiting.started.wait(), 5)
    closing = asyncio.create_task(client.close())
    await asyncio.sleep(0.1)
    assert not closing.done()  # shutdown waits for the turn
    waiting.gate.set()
    await asyncio.wait_for(closing, 5)
    # The turn finished and its reply was sent before the store closed.
    from convo.store.sqlite import SqliteStore

    again = SqliteStore(tmp_path / "convo.db")
    await again.open()
    try:
        found, _ = await again.list_messages(MessageQuery(direction=Direction.OUTBOUND))
        assert [(m.text, m.status) for m in found] == [("Done waiting.", "delivered")]
        assert await again.unprocessed_inbound() == []
    finally:
        await again.close()


async def test_unprocessed_inbound_is_turned_on_start(aiohttp_client: Any, tmp_path: Path) -> None:
    """A message stored and acknowledged, but whose turn never ran (a crash), is answered
    when the server starts again."""
    from convo.models import InboundMessage, MessageRecord
    from convo.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    await store.add_inbound(
        MessageRecord.inbound(
            InboundMessage(
                LINE, ALICE, "hi", provider="sandbox", provider_message_id="before-crash"
            )
        )
    )
    await store.close()
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    # Recovery runs in the background from start-up: wait for its reply with a deadline a
    # loaded machine cannot miss (settle() alone may run before the turn has begun).
    deadline = asyncio.get_running_loop().time() + 30
    while not await log_of(client, direction=Direction.OUTBOUND):
        assert asyncio.get_running_loop().time() < deadline, "recovery never answered"
        await asyncio.sleep(0.02)
    await settle(client)
    assert [m.text for m in await log_of(client, direction=Direction.OUTBOUND)] == [
        "What is your name?"
    ]
    assert await client.app[RUNTIME].store.unprocessed_inbound() == []
