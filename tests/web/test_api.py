"""Admin API and /healthz on a real server with the sandbox line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.web.conftest import ALICE, BOB, LINE, TOKEN, make_settings

Client = TestClient[Any, Any]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def talk(client: Client, sender: str, *texts: str) -> None:
    for text in texts:
        resp = await client.post(
            "/sandbox/messages", json={"from": sender, "to": LINE, "text": text}
        )
        assert resp.status == 200, await resp.text()
    assert await client.app[RUNTIME].outbox.drain(5)


async def test_healthz(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_admin_needs_the_bearer_token(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        resp = await client.get("/api/messages", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/api/messages", headers=AUTH)).status == 200


async def test_admin_is_off_without_a_token(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"api_token": ""})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/messages", headers=AUTH)
    assert resp.status == 404
    assert "api_token" in (await resp.json())["error"]


async def test_message_log_filters_and_pages(client: Client) -> None:
    await talk(client, ALICE, "hi", "Alice")
    await talk(client, BOB, "hello")
    resp = await client.get("/api/messages", headers=AUTH)
    body = await resp.json()
    assert body["total"] == 6  # 3 inbound, 3 replies
    texts = [m["text"] for m in body["messages"]]
    assert texts[0] == "What is your name?" and "Hi Alice!" in texts  # newest first
    first = body["messages"][0]
    for key in (
        "id",
        "direction",
        "from",
        "to",
        "text",
        "status",
        "segments",
        "provider",
        "provider_message_id",
        "created_at",
    ):
        assert key in first

    resp = await client.get(
        "/api/messages", headers=AUTH, params={"direction": "outbound", "number": ALICE}
    )
    body = await resp.json()
    assert body["total"] == 2
    assert [m["text"] for m in body["messages"]] == ["Hi Alice!", "What is your name?"]
    assert all(m["from"] == LINE and m["to"] == ALICE for m in body["messages"])

    resp = await client.get(
        "/api/messages", headers=AUTH, params={"status": "received", "page": "2", "page_size": "2"}
    )
    body = await resp.json()
    assert body["total"] == 3 and len(body["messages"]) == 1
    assert body["messages"][0]["text"] == "hi"  # the oldest is on the last page


async def test_message_log_rejects_bad_filters(client: Client) -> None:
    for params, expected in (
        ({"direction": "sideways"}, "direction"),
        ({"status": "lost"}, "status"),
        ({"page": "0"}, "page"),
        ({"page_size": "abc"}, "page_size"),
        ({"page_size": "100000"}, "page_size"),
        ({"number": "12"}, "number"),
    ):
        resp = await client.get("/api/messages", headers=AUTH, params=params)
        assert resp.status == 400
        assert expected in (await resp.json())["error"]


async def test_conversations_by_number(client: Client) -> None:
    await talk(client, ALICE, "hi", "Alice")
    for path in (f"/api/conversations/{ALICE}", "/api/conversations/%2B32470000001"):
        resp = await client.get(path, headers=AUTH)
        assert resp.status == 200
        body = await resp.json()
        assert body["number"] == ALICE
        [conv] = body["conversations"]
        assert conv["flow"] == "greet" and conv["line"] == LINE and conv["channel"] == "sms"
        assert conv["slots"] == {"name": "Alice"} and conv["status"] == "ended"
        assert len(body["messages"]) == 4
    resp = await client.get(f"/api/conversations/{BOB}", headers=AUTH)
    assert (await resp.json())["conversations"] == []
    resp = await client.get("/api/conversations/garbage", headers=AUTH)
    assert resp.status == 400


async def test_sandbox_lines_and_unknown_line(client: Client) -> None:
    resp = await client.get("/sandbox/lines")
    assert await resp.json() == {"lines": [{"number": LINE, "flow": "greet", "channels": ["sms"]}]}
    resp = await client.post(
        "/sandbox/messages", json={"from": ALICE, "to": "+32460000999", "text": "hi"}
    )
    assert resp.status == 404
    resp = await client.post("/sandbox/messages", data=b"nope")
    assert resp.status == 400
    assert client.app[RUNTIME].intake.in_flight == 0


async def test_sandbox_line_can_text_first(client: Client) -> None:
    resp = await client.post("/sandbox/conversations", json={"line": LINE, "to": BOB})
    assert resp.status == 200, await resp.text()
    assert [r["text"] for r in (await resp.json())["replies"]] == ["What is your name?"]
    assert await client.app[RUNTIME].outbox.drain(5)
    resp = await client.get("/sandbox/messages", params={"number": BOB})
    assert [m["text"] for m in (await resp.json())["messages"]] == ["What is your name?"]
    await talk(client, BOB, "Bob")
    resp = await client.get("/sandbox/messages", params={"number": BOB})
    assert [m["text"] for m in (await resp.json())["messages"]][-1] == "Hi Bob!"
    resp = await client.post(
        "/sandbox/conversations", json={"line": LINE, "to": BOB, "params": {"nope": 1}}
    )
    assert resp.status == 400
    assert "unknown param" in (await resp.json())["error"]
