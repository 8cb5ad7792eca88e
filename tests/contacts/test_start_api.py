"""POST /api/conversations over a real server and the sandbox line: the first texts go out
through the outbox, a reply continues the conversation, Idempotency-Key starts nothing
twice, and every refusal is a JSON error saying which (SQLite and memory)."""

from __future__ import annotations

from typing import Any

from convo.web.state import RUNTIME
from tests.contacts.conftest import AN, AUTH, BO, LINE, VISIT_LINE, Client


async def start(client: Client, body: Any, key: str | None = None) -> tuple[int, Any, Any]:
    headers = dict(AUTH) | ({"Idempotency-Key": key} if key else {})
    resp = await client.post("/api/conversations", json=body, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def phone(client: Client, number: str) -> list[str]:
    assert await client.app[RUNTIME].outbox.drain(5)
    resp = await client.get("/sandbox/messages", params={"number": number})
    return [m["text"] for m in (await resp.json())["messages"]]


async def test_start_sends_the_first_text_and_a_reply_continues(client: Client) -> None:
    status, body, _ = await start(client, {"to": "0470 00 00 01", "flow": "greet", "line": LINE})
    assert status == 201, body
    assert set(body) == {"id", "to", "line", "flow", "channel", "status", "language", "messages"}
    assert (body["to"], body["line"], body["flow"], body["channel"]) == (AN, LINE, "greet", "sms")
    assert body["status"] == "active" and body["language"] == "en"
    assert [m["text"] for m in body["messages"]] == ["What is your name?"]
    assert await phone(client, AN) == ["What is your name?"]
    resp = await client.get("/api/messages", params={"number": AN}, headers=AUTH)
    logged = (await resp.json())["messages"]
    assert [m["id"] for m in logged] == [body["messages"][0]["id"]]
    resp = await client.post("/sandbox/messages", json={"from": AN, "to": LINE, "text": "An"})
    assert [r["text"] for r in (await resp.json())["replies"]] == ["Hi An!"]


async def test_the_contacts_language_unless_the_start_says_otherwise(client: Client) -> None:
    fields = {"name": "An", "language": "nl-BE", "fields": {"room": "3B"}}
    await client.put(f"/api/contacts/{AN}", json=fields, headers=AUTH)
    await client.put(f"/api/contacts/{BO}", json=fields | {"name": "Bo"}, headers=AUTH)
    status, body, _ = await start(client, {"to": AN, "line": VISIT_LINE, "params": {"day": "di"}})
    assert status == 201 and body["flow"] == "visit" and body["language"] == "nl"
    assert await phone(client, AN) == ["Dag An, kamer 3B op di? (JA/NEE)"]
    status, body, _ = await start(client, {"to": BO, "line": VISIT_LINE, "language": "en-GB"})
    assert status == 201 and body["language"] == "en"
    assert await phone(client, BO) == ["Hi Bo, room 3B on monday? (YES/NO)"]


async def test_idempotency_key_starts_nothing_twice(client: Client) -> None:
    request = {"to": AN, "flow": "greet", "line": LINE}
    first = await start(client, request, key="remind-an-1")
    again = await start(client, request, key="remind-an-1")
    assert first[0] == again[0] == 201
    assert again[1] == first[1] and again[2]["Idempotent-Replayed"] == "true"
    assert await phone(client, AN) == ["What is your name?"]  # one text, not two
    other = await start(client, request | {"to": BO}, key="remind-an-1")
    assert other[0] == 422 and "different request" in other[1]["error"]
    refused = await start(client, request | {"flow": "nope"}, key="k2")
    assert refused[0] == 404
    assert (await start(client, request | {"to": BO}, key="k2"))[0] == 201  # key freed
    bad = await start(client, request, key="x" * 256)
    assert bad[0] == 400 and "Idempotency-Key" in bad[1]["error"]


async def test_refusals_say_which(client: Client) -> None:
    await client.app[RUNTIME].store.set_suppressed(LINE, AN, True)
    cases = [
        ({"to": AN, "line": LINE}, 409, "opted out"),
        ({"to": "12345", "line": LINE}, 400, "'12345'"),
        ({"to": BO, "flow": "nope", "line": LINE}, 404, "no flow 'nope'"),
        ({"to": BO, "line": "+32460000999"}, 404, "'+32460000999' is not one of our lines"),
        ({"to": BO, "line": LINE, "channel": "voice"}, 404, "does not carry voice"),
        ({"to": BO, "line": LINE, "language": "fr"}, 400, "no language 'fr'"),
        ({"to": BO, "line": VISIT_LINE, "params": {"dag": 1}}, 400, "dag"),
        ({"to": BO, "line": LINE, "channel": "fax"}, 400, "channel"),
        ({"line": LINE}, 400, "to:"),
        ({"to": BO, "colour": "red"}, 400, "'colour'"),
    ]
    for body, code, words in cases:
        status, answer, _ = await start(client, body)
        assert status == code, (body, answer)
        assert words in answer["error"], (body, answer)
    assert await phone(client, AN) == []
    assert await phone(client, BO) == []
    resp = await client.post("/api/conversations", json={"to": BO})
    assert resp.status == 401


async def test_sandbox_start_goes_through_the_same_rules(client: Client) -> None:
    await client.app[RUNTIME].store.set_suppressed(LINE, AN, True)
    resp = await client.post("/sandbox/conversations", json={"line": LINE, "to": AN})
    assert resp.status == 409 and "opted out" in (await resp.json())["error"]
    resp = await client.post("/sandbox/conversations", json={"line": LINE, "to": BO})
    assert resp.status == 200
    assert [r["text"] for r in (await resp.json())["replies"]] == ["What is your name?"]
