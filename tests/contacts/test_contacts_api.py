"""GET/PUT/DELETE /api/contacts/{number} over a real server, and what flows see of a
contact (name, fields, language), on SQLite and in memory."""

from __future__ import annotations

from typing import Any

from tests.contacts.conftest import AN, AUTH, BO, VISIT_LINE, Client


async def put(client: Client, number: str, body: Any) -> tuple[int, Any]:
    resp = await client.put(f"/api/contacts/{number}", json=body, headers=AUTH)
    return resp.status, await resp.json()


async def test_put_get_replace(client: Client) -> None:
    status, body = await put(client, "0470 00 00 01", {"name": "An", "fields": {"room": 3}})
    assert status == 201
    assert body == {
        "number": AN,
        "name": "An",
        "language": None,
        "timezone": "Europe/Brussels",
        "fields": {"room": 3},
    }
    resp = await client.get("/api/contacts/%2B32470000001", headers=AUTH)
    assert resp.status == 200 and await resp.json() == body
    status, body = await put(client, AN, {"language": "nl_be", "timezone": "Europe/Paris"})
    assert status == 200
    assert (body["name"], body["language"], body["timezone"]) == (None, "nl-BE", "Europe/Paris")
    assert body["fields"] == {}  # PUT replaces the whole contact


async def test_errors_name_what_is_wrong(client: Client) -> None:
    resp = await client.get(f"/api/contacts/{BO}", headers=AUTH)
    assert resp.status == 404 and BO in (await resp.json())["error"]
    for number, body, words in [
        ("12", {}, "number"),
        (AN, {"language": "klingon!"}, "language"),
        (AN, {"timezone": "Mars/Olympus"}, "time zone"),
        (AN, {"fields": [1, 2]}, "fields"),
        (AN, {"name": 7}, "name"),
        (AN, {"nickname": "A"}, "'nickname'"),
        (AN, "just text", "JSON object"),
    ]:
        status, answer = await put(client, number, body)
        assert status == 400, (body, answer)
        assert words in answer["error"]
    assert (await client.get(f"/api/contacts/{AN}", headers=AUTH)).status == 404
    resp = await client.put(f"/api/contacts/{AN}", json={})
    assert resp.status == 401


async def test_delete_is_the_erasure_and_forgets_the_contact(client: Client) -> None:
    await put(client, AN, {"name": "An"})
    resp = await client.delete(f"/api/contacts/{AN}", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["contact"] is True
    assert (await client.get(f"/api/contacts/{AN}", headers=AUTH)).status == 404


async def text(client: Client, sender: str, line: str, words: str) -> list[str]:
    resp = await client.post("/sandbox/messages", json={"from": sender, "to": line, "text": words})
    assert resp.status == 200, await resp.text()
    return [r["text"] for r in (await resp.json())["replies"]]


async def test_templates_see_the_contact_and_its_language(client: Client) -> None:
    await put(client, AN, {"name": "An", "language": "nl-BE", "fields": {"room": "3B"}})
    assert await text(client, AN, VISIT_LINE, "hallo") == ["Dag An, kamer 3B op monday? (JA/NEE)"]
    # A change to the contact shows on the next turn of the same conversation.
    await put(client, AN, {"name": "Anna", "language": "nl"})
    assert await text(client, AN, VISIT_LINE, "ja") == ["Genoteerd, Anna."]
