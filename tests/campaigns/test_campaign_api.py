"""Campaigns through the admin API, on a real server with a sandbox line, SQLite and the
example reminder flow: created from CSV or a list, run by the server's runner, counted,
paused, resumed and cancelled; replies continue each conversation."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from convo.config import Settings, parse_settings
from convo.web.app import create_app
from convo.web.state import RUNTIME

ROOT = Path(__file__).resolve().parents[2]
LINE = "+32460000103"
TOKEN = "admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[Any, Any]
Body = dict[str, Any]


def make_settings(tmp_path: Path, store: str) -> Settings:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'convo.db'}"
    doc: dict[str, Any] = {
        "server": {"api_token": TOKEN, "shutdown_timeout": 5},
        "store": {"url": url},
        "flows": {"paths": [str(ROOT / "flows")]},
        "lines": [
            {"number": LINE, "provider": "sandbox", "flow": "reminder"},
            {"number": "+32460000101", "provider": "sandbox", "flow": "appointment"},
        ],
        "providers": {"sandbox": {"rate_limit": 200}},
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        "outbox": {"sweep_interval": 0.2, "base_delay": 0.01, "max_delay": 0.05},
    }
    return parse_settings(doc, source="test.toml", env={})


@pytest.fixture(params=["sqlite", "memory"])
async def client(
    request: pytest.FixtureRequest, aiohttp_client: Callable[..., Any], tmp_path: Path
) -> Client:
    return await aiohttp_client(create_app(make_settings(tmp_path, request.param)))  # type: ignore[no-any-return]


async def create(client: Client, **body: Any) -> tuple[int, Body]:
    resp = await client.post("/api/campaigns", json=body, headers=AUTH)
    return resp.status, await resp.json()


async def until(client: Client, campaign_id: str, done: Callable[[Body], bool]) -> Body:
    """The campaign once ``done(it)`` holds (bounded: 15 s, then the test fails)."""
    for _ in range(300):
        resp = await client.get(f"/api/campaigns/{campaign_id}", headers=AUTH)
        body: Body = await resp.json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"campaign never got there: {body}")


async def texts_to(client: Client, number: str) -> list[str]:
    resp = await client.get("/sandbox/messages", params={"number": number})
    return [m["text"] for m in (await resp.json())["messages"]]


async def test_a_csv_campaign_runs_to_the_end_and_replies_continue_it(client: Client) -> None:
    csv = (ROOT / "examples" / "contacts.csv").read_text(encoding="utf-8")
    status, body = await create(client, flow="reminder", csv=csv, name="December")
    assert status == 201, body
    assert (body["name"], body["line"], body["channel"], body["status"]) == (
        "December",
        LINE,
        "sms",
        "running",
    )
    assert body["rate_per_second"] == 200  # the provider's limit by default
    assert [(s["row"], s["state"]) for s in body["skipped"]] == [
        (7, "skipped_duplicate"),
        (8, "skipped_invalid"),
    ]
    done = await until(client, body["id"], lambda b: b["status"] == "done")
    counts = done["counts"]
    assert counts["total"] == 7 and counts["started"] == 5 and counts["pending"] == 0
    assert (counts["skipped_duplicate"], counts["skipped_invalid"]) == (1, 1)
    assert await client.app[RUNTIME].outbox.drain(5)
    # Each contact got the first text in their language, with their own CSV params.
    [an] = await texts_to(client, "+32470111201")
    assert an.startswith("Hallo An Peeters, u hebt een afspraak op") and "om 09:30" in an
    [chloe] = await texts_to(client, "+32470111203")
    assert chloe.startswith("Bonjour Chloé Dubois") and "à 14:15" in chloe
    [eva] = await texts_to(client, "+32470111205")
    assert eva.startswith("Hallo Eva Maes")  # no language: the flow's first
    assert len(await texts_to(client, "+32470111202")) == 1  # its duplicate sent nothing

    resp = await client.post(
        "/sandbox/messages", json={"from": "+32470111201", "to": LINE, "text": "1"}
    )
    assert resp.status == 200
    assert await client.app[RUNTIME].outbox.drain(5)
    assert (await texts_to(client, "+32470111201"))[-1] == "Bedankt, tot dan!"
    counts = await until(client, body["id"], lambda b: b["counts"]["sent"] == 5)
    assert counts["counts"]["replied"] == 1 and counts["counts"]["completed"] == 1


async def test_rows_with_more_than_a_number_become_contacts(client: Client) -> None:
    contacts = [
        {"number": "+32470111601", "name": "Fien", "language": "en", "fields": {"vip": "yes"}},
        "+32470111602",  # a bare number: nothing to keep about it
    ]
    status, body = await create(
        client, flow="reminder", contacts=contacts, params={"date": "2026-12-01"}
    )
    assert status == 201, body
    fien = await (await client.get("/api/contacts/%2B32470111601", headers=AUTH)).json()
    assert (fien["name"], fien["language"], fien["fields"]) == ("Fien", "en", {"vip": "yes"})
    assert (await client.get("/api/contacts/%2B32470111602", headers=AUTH)).status == 404
    await until(client, body["id"], lambda b: b["status"] == "done")
    assert await client.app[RUNTIME].outbox.drain(5)
    [text] = await texts_to(client, "+32470111601")
    assert text.startswith("Hi Fien, you have an appointment")  # her name and language


async def test_opted_out_contacts_are_skipped_at_send_time(client: Client) -> None:
    store = client.app[RUNTIME].store
    await store.set_suppressed(LINE, "+32470111302", True)
    contacts = ["+32470111301", {"number": "+32470111302", "name": "Stop"}, "+32470111303"]
    status, body = await create(
        client, flow="reminder", contacts=contacts, params={"date": "2026-12-01"}
    )
    assert status == 201, body
    done = await until(client, body["id"], lambda b: b["status"] == "done")
    assert done["counts"]["started"] == 2 and done["counts"]["skipped_opted_out"] == 1
    assert await texts_to(client, "+32470111302") == []


async def test_a_stop_that_arrives_mid_campaign_counts(client: Client) -> None:
    first, later = "+32470111901", "+32470111902"
    # One start every 2.5 s: the later contact is still to come when the first is out.
    status, body = await create(
        client,
        flow="reminder",
        contacts=[first, later],
        rate_per_second=0.2,
        params={"date": "2026-12-01"},
    )
    assert status == 201, body
    url = f"/api/campaigns/{body['id']}"
    await until(client, body["id"], lambda b: b["counts"]["started"] >= 1)
    paused = await (await client.post(f"{url}/pause", headers=AUTH)).json()
    assert paused["counts"]["started"] == 1
    stop = {"from": later, "to": LINE, "text": "STOP"}  # a stranger's first STOP opts out
    assert (await client.post("/sandbox/messages", json=stop)).status == 200
    await client.post(f"{url}/resume", headers=AUTH)
    done = await until(client, body["id"], lambda b: b["status"] == "done")
    assert done["counts"]["started"] == 1 and done["counts"]["skipped_opted_out"] == 1
    assert not any("afspraak" in t for t in await texts_to(client, later))


async def test_quiet_hours_hold_a_contact_in_their_own_time_zone(client: Client) -> None:
    now = dt.datetime.now(dt.UTC)
    quiet = {
        "from": f"{(now - dt.timedelta(hours=1)):%H:%M}",
        "to": f"{(now + dt.timedelta(hours=1)):%H:%M}",
    }
    contacts = [
        {"number": "+32470111401", "timezone": "UTC"},  # inside the quiet hours
        {"number": "+32470111402", "timezone": "Asia/Tokyo"},  # 9 hours later: not
    ]
    status, body = await create(
        client, flow="reminder", contacts=contacts, quiet_hours=quiet, params={"date": "2026-12-01"}
    )
    assert status == 201, body
    held = await until(client, body["id"], lambda b: b["counts"]["started"] == 1)
    assert held["status"] == "running" and held["counts"]["pending"] == 1
    assert await texts_to(client, "+32470111401") == []


async def test_pause_resume_and_cancel(client: Client) -> None:
    contacts = [f"+3247011{n:04d}" for n in range(1000, 1040)]
    status, body = await create(
        client, flow="reminder", contacts=contacts, rate_per_second=2, params={"date": "2026-12-01"}
    )
    assert status == 201, body
    url = f"/api/campaigns/{body['id']}"
    paused = await (await client.post(f"{url}/pause", headers=AUTH)).json()
    assert paused["status"] == "paused"
    started = paused["counts"]["started"]
    await asyncio.sleep(1.2)  # at 2/s, a running campaign would start more meanwhile
    still = await (await client.get(url, headers=AUTH)).json()
    assert still["counts"]["started"] <= started + 1  # one may have been under way
    assert still["counts"]["pending"] >= 35
    resumed = await client.post(f"{url}/resume", headers=AUTH)
    assert (await resumed.json())["status"] == "running"
    await until(client, body["id"], lambda b: b["counts"]["started"] > still["counts"]["started"])
    cancelled = await (await client.post(f"{url}/cancel", headers=AUTH)).json()
    assert cancelled["status"] == "cancelled"
    again = await client.post(f"{url}/resume", headers=AUTH)
    assert again.status == 409 and "cancelled" in (await again.json())["error"]
    assert (await client.post("/api/campaigns/nope/pause", headers=AUTH)).status == 404
    listed = await (await client.get("/api/campaigns", headers=AUTH)).json()
    assert [c["id"] for c in listed["campaigns"]] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"flow": "nope", "contacts": []}, 404, "flow 'nope'"),
        ({"flow": "reminder", "line": "+32460000999", "contacts": []}, 404, "+32460000999"),
        ({"flow": "reminder", "contacts": [], "csv": "number\n"}, 400, "one"),
        ({"flow": "reminder", "csv": "name\nAn\n"}, 400, "no 'number' column"),
        (
            {"flow": "reminder", "contacts": [], "quiet_hours": {"from": "9", "to": "x"}},
            400,
            "quiet_hours.from",
        ),
        ({"flow": "reminder", "contacts": [], "rate_per_second": 500}, 400, "at most 200"),
        ({"flow": "reminder", "contacts": [], "params": {"colour": "red"}}, 400, "colour"),
        ({"flow": "reminder", "contacts": ["+32470111701", 3]}, 400, "contacts[1]"),
        ({"flow": "reminder", "contacts": ["+32470111701"]}, 400, "requires date"),
        ({"flow": "reminder", "contacts": [], "start_at": "soon"}, 400, "start_at"),
        ({"flow": "reminder", "contacts": [], "channel": "voice"}, 400, "no voice channel"),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    client: Client, body: Body, status: int, says: str
) -> None:
    got, answer = await create(client, **body)
    assert got == status, answer
    assert says in answer["error"]
    listed = await (await client.get("/api/campaigns", headers=AUTH)).json()
    assert listed["campaigns"] == []  # nothing was stored


async def test_start_at_in_the_future_waits(client: Client) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    status, body = await create(
        client,
        flow="reminder",
        contacts=["+32470111501"],
        start_at=later,
        params={"date": "2026-12-01"},
    )
    assert status == 201
    await asyncio.sleep(0.7)  # more than a poll of the runner
    still = await (await client.get(f"/api/campaigns/{body['id']}", headers=AUTH)).json()
    assert still["counts"]["pending"] == 1 and still["status"] == "running"


async def test_campaign_routes_need_the_token(client: Client) -> None:
    assert (await client.get("/api/campaigns")).status == 401
    assert (await client.post("/api/campaigns", json={"flow": "reminder"})).status == 401
