"""The console over HTTP without a browser: signing in, the session cookie, CSRF, escaping,
and the flow graph's edges and layout."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from convo.flow.loader import load_flow
from convo.models import Direction, MessageRecord, MessageStatus
from convo.web.app import create_app
from convo.web.console.auth import SESSION_COOKIE, SESSION_TTL, session_value
from convo.web.console.graph import flow_edges, layout
from convo.web.state import RUNTIME

from ..conftest import ALICE, LINE, TOKEN, make_settings

FLOWS = Path(__file__).parents[3] / "flows"


async def signed_in_client(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> tuple[TestClient[Any, Any], str]:
    """A client with a session, and the CSRF token of its forms."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(make_settings(tmp_path)))
    form = await client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await form.text())
    assert csrf is not None
    signed = await client.post(
        "/console/signin",
        data={"csrf": csrf[1], "token": TOKEN, "next": "/console/outbox"},
        allow_redirects=False,
    )
    assert signed.status == 303 and signed.headers["Location"] == "/console/outbox"
    page = await client.get("/console/outbox")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', await page.text())
    assert page.status == 200 and token is not None
    return client, token[1]


async def test_without_an_admin_token_the_console_is_off(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    settings = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, api_token=None)
    )
    client = await aiohttp_client(create_app(settings))
    for path in ("/console/signin", "/console/conversations"):
        assert (await client.get(path, allow_redirects=False)).status == 404


async def test_pages_ask_to_sign_in_and_the_cookie_is_strict(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    answer = await client.get("/console/flows?period=24h", allow_redirects=False)
    assert answer.status == 303
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/console/signin"
    assert parse_qs(location.query) == {"next": ["/console/flows?period=24h"]}
    form = await client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await form.text())
    assert csrf is not None and "script-src 'self'" in form.headers["Content-Security-Policy"]
    wrong = await client.post("/console/signin", data={"csrf": csrf[1], "token": "nope"})
    assert wrong.status == 401
    no_csrf = await client.post("/console/signin", data={"token": TOKEN})
    assert no_csrf.status == 403
    form = await client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await form.text())
    assert csrf is not None
    right = await client.post(
        "/console/signin",
        data={"csrf": csrf[1], "token": TOKEN, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert right.status == 303 and right.headers["Location"] == "/console/conversations"
    cookie = next(v for v in right.headers.getall("Set-Cookie") if SESSION_COOKIE + "=" in v)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert TOKEN not in cookie


async def test_an_expired_or_forged_session_is_refused(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    old = session_value(TOKEN, int(time.time()) - SESSION_TTL - 5)
    forged = session_value("another-token", int(time.time()))
    for value in (old, forged, "1.abc", ""):
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: value})
        answer = await client.get("/console/conversations", allow_redirects=False)
        assert answer.status == 303, value


async def test_a_post_without_the_csrf_token_is_refused(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    client, csrf = await signed_in_client(aiohttp_client, tmp_path)
    refused = await client.post("/console/outbox/retry", data={"all": "1"})
    assert refused.status == 403
    wrong = await client.post("/console/outbox/retry", data={"all": "1", "csrf": "0" * 64})
    assert wrong.status == 403
    done = await client.post("/console/outbox/retry", data={"all": "1", "csrf": csrf})
    assert done.status == 200 and "0 dead letters queued again." in await done.text()
    by_header = await client.post(
        "/console/outbox/retry", data={"all": "1"}, headers={"X-CSRF-Token": csrf}
    )
    assert by_header.status == 200


async def test_what_a_contact_texts_is_escaped(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    client, _ = await signed_in_client(aiohttp_client, tmp_path)
    sent = await client.post(
        "/sandbox/messages", json={"from": ALICE, "to": LINE, "text": "<script>x()</script>"}
    )
    assert sent.status == 200
    page = await client.get("/console/contacts/%2B32470000001")
    body = await page.text()
    assert page.status == 200
    assert "&lt;script&gt;x()&lt;/script&gt;" in body and "<script>x()" not in body
    live = await client.get("/console/conversations", headers={"HX-Request": "true"})
    assert '<div id="conversations"' in await live.text() and "<html" not in await live.text()


def test_the_graph_labels_edges_with_the_answers_that_take_them() -> None:
    spec = load_flow(FLOWS / "faq.yaml")
    edges = [(e.source, e.dest, e.label) for e in flow_edges(spec)]
    assert ("menu", "hours", "1 · uren / openingsuren") in edges
    assert ("menu", "human", "3 · medewerker / mens") in edges
    assert ("menu", "human", "too many tries") in edges
    graph = layout(spec)
    x = {b.step: b.x for b in graph.boxes}
    assert x["menu"] < x["hours"] == x["address"] == x["human"]
    assert graph.anytime == (("AFMELDEN / STOP", "stopped"), ("MENU", "menu"))
    assert len(graph.lines) == len(edges)


async def test_the_flows_page_names_a_flow_file_broken_after_the_start(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(
        (Path(__file__).parents[1] / "data" / "greet.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, flows={"paths": [str(flows)]})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    client.session.cookie_jar.update_cookies(
        {SESSION_COOKIE: session_value(TOKEN, int(time.time()))}
    )
    page = await client.get("/console/flows")
    body = await page.text()
    assert page.status == 200 and 'id="flow-greet"' in body
    assert "do not load" not in body
    (flows / "broken.yaml").write_text("flow: broken\nstart: nowhere\nsteps:\n  a:\n    say: hi\n")
    body = await (await client.get("/console/flows")).text()
    assert "Flow files that do not load" in body
    assert re.search(r"broken\.yaml:\d+:\d+</code>: ", body), body
    assert 'id="flow-greet"' in body  # the running flows are still shown


async def test_the_phone_plays_a_dial_that_fails_and_a_voicemail(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    """Past the keypad: a dialled agent who is busy, then the voicemail's recording."""
    voice_line = "+32460000103"
    settings = make_settings(
        tmp_path,
        flows={"paths": [str(FLOWS / "support_line.yaml")]},
        lines=[
            {
                "number": voice_line,
                "provider": "sandbox",
                "flow": "support_line",
                "channels": ["voice"],
                "voice_provider": "sandbox_voice",
            }
        ],
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    client.session.cookie_jar.update_cookies(
        {SESSION_COOKIE: session_value(TOKEN, int(time.time()))}
    )
    page = await client.get("/console/phone")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await page.text())
    assert csrf is not None
    form = {"csrf": csrf[1], "line": voice_line, "number": ALICE}
    answer = await (await client.post("/console/phone/call", data=form)).text()
    call_id = re.search(r'name="call_id" value="([^"]+)"', answer)
    assert call_id is not None and "Voor Nederlands, druk 1." in answer
    form["call_id"] = call_id[1]

    async def step(after: str, **fields: str) -> str:
        response = await client.post(
            "/console/phone/input", data={**form, "after": after, **fields}
        )
        assert response.status == 200, await response.text()
        return await response.text()

    await step("gather", digits="1")
    dialling = await step("gather", digits="2")
    assert "puts you through to +3225550100" in dialling
    assert 'name="after" value="dial"' in dialling
    voicemail = await step("dial", action="busy")
    assert "the dialled number: busy" in voicemail and "Niemand is beschikbaar" in voicemail
    assert 'name="after" value="record"' in voicemail
    thanks = await step("record", action="record")
    assert "Bedankt, we bellen u terug." in thanks and "call ended" in thanks
    refused = await client.post("/console/phone/input", data={**form, "after": "gather"})
    assert refused.status == 200  # the call is over: the runner hangs up, nothing breaks
    wrong = await client.post("/console/phone/input", data={**form, "after": "dial"})
    assert wrong.status == 400  # keys are no answer to a dial


async def test_the_outbox_page_retries_a_dead_letter(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    client, csrf = await signed_in_client(aiohttp_client, tmp_path)
    store = client.app[RUNTIME].store
    dead = MessageRecord(
        id="dead-1",
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=ALICE,
        text="Your appointment moved",
        status=MessageStatus.DEAD,
        provider="sandbox",
        error="provider unavailable: 503",
    )
    await store.add_outbound([dead])
    page = await (await client.get("/console/outbox?view=dead")).text()
    assert "dead (1)" in page and "Your appointment moved" in page
    assert "provider unavailable: 503" in page and 'value="dead-1"' in page
    done = await client.post("/console/outbox/retry", data={"ids": "dead-1", "csrf": csrf})
    assert "1 dead letter queued again." in await done.text()
    for _ in range(400):  # the running outbox sends it (the sandbox delivers at once)
        record = await store.get_message("dead-1")
        if record is not None and record.status is MessageStatus.DELIVERED:
            break
        await asyncio.sleep(0.05)
    assert record is not None and record.status is MessageStatus.DELIVERED
