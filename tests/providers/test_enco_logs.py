"""Enco's ``GET /logs`` against its simulator on loopback, and the reconciler using it.

* The simulator: entries per origin (dedicated or shared), the error log, the document's
  required parameters, paging with ``pageref``, months, the bearer token.
* The adapter: ``outbound_reports`` pages and crosses a month's end; ``get_message``.
* Receipts lost (the delivery callbacks never reach convo): one reconciler round asks Enco
  once, through ``/logs``, about several messages and gives each its status; a message
  the log does not list, or lists with a status that is not final, is asked about alone;
  and through convo's real server, a reply whose callback was lost ends up ``delivered``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderRejected
from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox
from convo.providers._enco_logs import month_windows
from convo.providers.enco import EncoSms
from convo.reconcile import Reconciler
from convo.simulators.enco import EncoSimulator
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import Enco, running_world

PHONE = "+32470123456"


class Env:
    def __init__(self, sim: EncoSimulator, api: str, client: httpx.AsyncClient) -> None:
        self.sim, self.api, self.client = sim, api.rstrip("/"), client
        self.paths: list[str] = []  # the path of each API request the adapters made

    def adapter(self, **extra: Any) -> EncoSms:
        options = {
            "client_id": "test-client", "client_secret": "test-secret",
            "base_url": self.api, "token_url": f"{self.api}/token", "address": "8888",
            "callback_secret": "cb", **extra,
        }  # fmt: skip
        # Callbacks go to a public_url nobody serves: every receipt is lost.
        return EncoSms.from_config("enco", options, self.client, public_url="http://127.0.0.1:9")

    async def raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A request with a fresh token, past the adapter's own checks."""
        grant = {"grant_type": "client_credentials"}
        issued = await self.client.post(
            f"{self.api}/token", data=grant, auth=("test-client", "test-secret")
        )
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        return await self.client.request(method, f"{self.api}{path}", headers=headers, **kw)

    async def raw_logs(self, query: dict[str, str]) -> httpx.Response:
        return await self.raw("GET", "/logs", params=query)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = EncoSimulator(dedicated_addresses=("8888", "666"))
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    paths: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.url.path != "/token":
            paths.append(request.url.path.rsplit("/", 1)[-1])

    async with httpx.AsyncClient(timeout=5, verify=False, event_hooks={"request": [count]}) as c:
        state = Env(sim, str(server.make_url("")), c)
        state.paths = paths
        yield state
    await server.close()
    await sim.aclose()


def this_month() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"type": "sms-outbound", "year": str(now.year), "month": str(now.month)}


async def test_simulator_logs_each_origins_calls(env: Env) -> None:
    dedicated, shared = env.adapter(), env.adapter(address="", shared=True)
    first = await dedicated.send(OutboundMessage("8888", PHONE, "een"))
    await shared.send(OutboundMessage("8937", PHONE, "from the shared code"))
    refused_send = await env.raw("POST", "/sms/outboundmessages/8888", json={"message": "x"})
    assert refused_send.status_code == 400  # no destinations
    day = {**this_month(), "function": "interval"}
    day["startTime"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    day["endTime"] = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    answer = await env.raw_logs({**day, "dedicatedaddress": "8888"})
    [entry] = answer.json()
    assert entry["requestId"] == first.provider_message_id
    assert (entry["destinationAddress"], entry["message"]) == (PHONE, "een")
    assert (entry["initialDeliveryInfo"], entry["numberOfMessages"]) == ("DeliveredToNetwork", "1")
    env.sim.delivery_infos[first.provider_message_id]["deliveryStatus"] = "DeliveredToTerminal"
    [entry] = (await env.raw_logs({**day, "dedicatedaddress": "8888"})).json()
    assert entry["initialDeliveryInfo"] == "DeliveredToTerminal"  # as Enco knows it now

    [shared_entry] = (await env.raw_logs(day)).json()  # no dedicatedaddress: the shared code
    assert shared_entry["message"] == "from the shared code"
    errors = await env.raw_logs({**day, "dedicatedaddress": "8888", "type": "sms-outbound-error"})
    [refused] = errors.json()
    assert refused["httpResponseCode"] == "400" and refused["requestId"] != entry["requestId"]
    by_day = await env.raw_logs({**this_month(), "function": "groupByDay"})
    assert [d["numberOfRequests"] for d in by_day.json()] == [1]  # the shared code's one send

    for query, field in [
        ({**day, "type": "sms"}, "type"),
        ({k: v for k, v in day.items() if k != "month"}, "month"),
        ({k: v for k, v in day.items() if k != "endTime"}, "endTime"),
        ({**day, "page": "next"}, "pageref"),
        ({**day, "page": "next", "pageref": "nobody"}, "pageref"),
    ]:
        bad = await env.raw_logs(query)
        assert bad.status_code == 400 and field in bad.text, field
    unknown = await env.raw_logs({**day, "dedicatedaddress": "9999"})
    assert unknown.status_code == 404
    anonymous = await env.client.get(f"{env.api}/logs", params=day)
    assert anonymous.status_code == 401


async def test_outbound_reports_page_through_the_log(env: Env) -> None:
    adapter = env.adapter()
    adapter.logs_page_size = 2
    sent = [await adapter.send(OutboundMessage("8888", PHONE, f"m{n}")) for n in range(5)]
    await env.adapter(address="666").send(OutboundMessage("666", PHONE, "another address"))
    statuses = [
        "DeliveredToTerminal", "DeliveryImpossible",
        "Exploded",  # unknown: left out
        "MessageWaiting",  # may be out of date (module docstring of _enco_logs): left out
        "DeliveryUncertain",
    ]  # fmt: skip
    for result, status in zip(sent, statuses, strict=True):
        env.sim.delivery_infos[result.provider_message_id]["deliveryStatus"] = status
    env.sim.log_requests.clear()

    reports = await adapter.outbound_reports(time.time() - 3600, max_pages=10)
    expected = [s.provider_message_id for n, s in enumerate(sent) if n in (0, 1, 4)]
    assert [r.provider_message_id for r in reports] == expected
    assert [r.status for r in reports] == [
        MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.SENT
    ]  # fmt: skip
    assert reports[1].error_code == "DeliveryImpossible"
    pages = [(q["page"], q.get("pageref"), q["dedicatedaddress"]) for q in env.sim.log_requests]
    assert pages == [
        ("first", None, "8888"),
        ("next", sent[1].provider_message_id, "8888"),
        ("next", sent[3].provider_message_id, "8888"),
    ]
    env.sim.log_requests.clear()
    assert len(await adapter.outbound_reports(time.time() - 3600, max_pages=1)) == 2
    assert len(env.sim.log_requests) == 1


async def test_outbound_reports_cross_a_months_end(env: Env) -> None:
    adapter = env.adapter()
    old = await adapter.send(OutboundMessage("8888", PHONE, "last month"))
    new = await adapter.send(OutboundMessage("8888", PHONE, "this month"))
    for info in env.sim.delivery_infos.values():
        info["deliveryStatus"] = "DeliveredToTerminal"
    start_of_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    env.sim.logs["8888"][0]["moment"] = start_of_month - timedelta(hours=1)
    env.sim.log_requests.clear()

    since = (start_of_month - timedelta(hours=2)).timestamp()
    reports = await adapter.outbound_reports(since, max_pages=5)
    assert [r.provider_message_id for r in reports] == [
        old.provider_message_id,
        new.provider_message_id,
    ]
    months = [(q["year"], q["month"]) for q in env.sim.log_requests]
    last = start_of_month - timedelta(days=1)
    now = datetime.now(UTC)
    assert months == [(str(last.year), str(last.month)), (str(now.year), str(now.month))]
    # Only the window asked for: the back-dated send is outside a window of the last minute.
    recent = await adapter.outbound_reports(time.time() - 60, max_pages=5)
    assert [r.provider_message_id for r in recent] == [new.provider_message_id]


def test_month_windows() -> None:
    start = datetime(2026, 11, 30, 22, tzinfo=UTC)
    end = datetime(2027, 1, 1, 1, tzinfo=UTC)
    assert month_windows(start, end) == [
        (2026, 11, start, datetime(2026, 12, 1, tzinfo=UTC)),
        (2026, 12, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (2027, 1, datetime(2027, 1, 1, tzinfo=UTC), end),
    ]
    assert month_windows(end, start) == []


async def test_get_message(env: Env) -> None:
    adapter = env.adapter()
    sent = await adapter.send(OutboundMessage("8888", PHONE, "Hoi"))
    env.sim.delivery_infos[sent.provider_message_id]["deliveryStatus"] = "DeliveredToTerminal"
    report = await adapter.get_message(sent.provider_message_id)
    assert (report.provider_message_id, report.status) == (
        sent.provider_message_id,
        MessageStatus.DELIVERED,
    )
    with pytest.raises(ProviderRejected):
        await adapter.get_message("no-such-info")


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_lost_receipts_are_reconciled_from_one_listing(tmp_path: Path, env: Env) -> None:
    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    adapter = env.adapter()
    outbox = Outbox(store, {"enco": adapter}, {"8888": "enco"})
    ids: dict[str, str] = {}
    for text in ("delivered", "impossible", "waiting", "unlisted"):
        message = OutboundMessage("8888", PHONE, text)
        await store.add_outbound([MessageRecord.outbound(message, provider="enco")])
        result = await adapter.send(message)
        await store.update_message(
            message.id, status=result.status, provider_message_id=result.provider_message_id
        )
        ids[text] = result.provider_message_id
    # Enco learned where each went, but its callbacks never reached convo.
    infos = env.sim.delivery_infos
    infos[ids["delivered"]]["deliveryStatus"] = "DeliveredToTerminal"
    infos[ids["impossible"]]["deliveryStatus"] = "DeliveryImpossible"
    infos[ids["waiting"]]["deliveryStatus"] = "MessageWaiting"
    infos[ids["unlisted"]]["deliveryStatus"] = "DeliveredToTerminal"
    env.sim.logs["8888"] = [e for e in env.sim.logs["8888"] if e["requestId"] != ids["unlisted"]]
    clock = Clock()
    reconciler = Reconciler(store, {"enco": adapter}, outbox.apply_report, after=600, clock=clock)
    env.paths.clear()
    assert await reconciler.reconcile() == 0 and env.paths == []  # all fresh

    clock.offset = 601
    assert await reconciler.reconcile() == 3
    # One listing for the four due messages; asked about alone (newest first): the one it
    # lacks, and the one it lists as still waiting (a status that may have moved on since).
    assert env.paths == ["logs", ids["unlisted"], ids["waiting"]]
    statuses = {}
    for text, info_id in ids.items():
        record = await store.find_message("enco", info_id)
        assert record is not None
        statuses[text] = record.status
    assert statuses == {
        "delivered": MessageStatus.DELIVERED,
        "impossible": MessageStatus.UNDELIVERED,
        "waiting": MessageStatus.SENT,
        "unlisted": MessageStatus.DELIVERED,
    }
    assert env.sim.webhooks == []  # no receipt ever reached convo
    await store.close()


async def test_a_lost_receipt_is_reconciled_by_the_server(tmp_path: Path) -> None:
    provider = Enco()
    async with running_world(tmp_path, provider, reconcile_after=0.1) as world:
        await provider.text_in("hello")
        await world.reply(0)
        info_id = provider.message_id(0)
        assert "callbackURL" in world.sim.sent[0]
        await world.outbound_with_status(info_id, "sent")
        world.sim.delivery_infos[info_id]["deliveryStatus"] = "DeliveredToTerminal"  # no POST
        record = await world.outbound_with_status(info_id, "delivered")
        assert record["text"] == "Hi! What is your name?" and world.sim.webhooks == []
