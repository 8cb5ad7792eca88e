"""POST /api/conversations with channel voice: the call is placed through the line's voice
provider (the Telefoon Voice simulator), the flow runs when it is answered, in the
contact's language unless the start says otherwise."""

from __future__ import annotations

from typing import Any

import httpx

from convo.models import ConversationStatus
from convo.web.state import RUNTIME
from tests.e2e.test_voice import REMINDER, World, said, world

__all__ = ["world"]  # the fixture, shared with test_voice

AUTH = {"Authorization": "Bearer admin-token"}
PARAMS = {"patient": "An", "date": "2026-12-01"}


async def api(world: World, method: str, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"{world.url}{path}", json=body, headers=AUTH)


async def test_a_voice_start_places_the_call_in_the_contacts_language(world: World) -> None:
    callee = "+32470555101"
    await api(world, "PUT", f"/api/contacts/{callee}", {"language": "nl"})
    world.sim.queue_answer_inputs(callee, ["1"])
    request = {"to": callee, "flow": "reminder_call", "line": REMINDER, "channel": "voice"}
    resp = await api(world, "POST", "/api/conversations", request | {"params": PARAMS})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["channel"], body["status"], body["language"]) == ("voice", "pending", "nl")
    await world.sim.drain()
    transcript = world.sim.transcripts[body["call_id"]]
    assert transcript.direction == "outbound" and transcript.error == ""
    assert said(transcript)[0].startswith("Hallo An, dit is de tandartspraktijk.")
    session = await world.session(REMINDER, callee)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_a_refused_call_is_an_error_and_an_opted_out_number_is_not_called(
    world: World,
) -> None:
    request = {"to": "+32470555102", "line": REMINDER, "channel": "voice", "params": PARAMS}
    world.sim.fail_next(503)
    resp = await api(world, "POST", "/api/conversations", request)
    assert resp.status_code == 502 and "error" in resp.json()
    await world.app[RUNTIME].store.set_suppressed(REMINDER, "+32470555102", True)
    sent = len(world.sim.sent)
    resp = await api(world, "POST", "/api/conversations", request)
    assert resp.status_code == 409 and "opted out" in resp.json()["error"]
    assert len(world.sim.sent) == sent
