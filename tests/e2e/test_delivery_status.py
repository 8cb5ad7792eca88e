"""Delivery statuses that do not arrive by callback: reconciliation and Enco's start-up.

* A Telefoon/Telefonie status callback that never reaches convo: the server's reconcile
  loop asks the provider (``GET /messages/{id}``) and the message becomes ``delivered``.
* :class:`convo.reconcile.Reconciler` round by round against the Telefoon SMS simulator:
  fresh messages are not asked about, several due messages are asked about in one listing
  (``GET /messages``), a message the provider forgot is not asked again, an unavailable
  provider pauses the round, other providers' messages are left alone; the listing reaches
  back only as far as the window needs.
* Enco: a dedicated address that is not the account's (or credentials Enco refuses) stops
  the start with a ``ConfigError``; with delivery callbacks off, a message still ``sent``
  when convo restarts is tracked again and becomes ``delivered`` by polling.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer

from convo.exceptions import ConfigError
from convo.models import MessageRecord, MessageStatus, OutboundMessage
from convo.outbox import Outbox
from convo.providers.telefoon_sms import TelefoonSms as TelefoonAdapter
from convo.reconcile import Reconciler
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import (
    LINE,
    PHONE,
    Enco,
    TelefonieSms,
    TelefoonSms,
    running_world,
)


@pytest.mark.parametrize("provider", [TelefoonSms, TelefonieSms])
async def test_a_lost_status_callback_is_reconciled(
    tmp_path: Path, provider: type[TelefoonSms]
) -> None:
    async with running_world(tmp_path, provider(), reconcile_after=0.1) as world:
        await world.provider.text_in("hello")
        await world.reply(0)
        message_id = world.provider.message_id(0)
        sent = await world.outbound_with_status(message_id, "sent")
        # The provider delivered it, but its status callback never reaches convo.
        world.sim.messages[message_id]["status"] = "delivered"
        delivered = await world.outbound_with_status(message_id, "delivered")
        assert delivered["id"] == sent["id"] and delivered["segments"] == 1
        assert not [hook for hook in world.sim.webhooks if hook[0].endswith("/status")]


class Clock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def sim_url() -> AsyncIterator[tuple[TelefoonSmsSimulator, str]]:
    sim = TelefoonSmsSimulator(api_key="tk", webhook_secret="tsig")
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    yield sim, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_reconciler_rounds(tmp_path: Path, sim_url: tuple[TelefoonSmsSimulator, str]) -> None:
    sim, url = sim_url
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        if request.method == "GET":
            asked.append(request.url.path.rsplit("/", 1)[-1])

    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
        options = {"api_key": "tk", "webhook_secret": "tsig", "base_url": url}
        adapter = TelefoonAdapter.from_config("telefoon_sms", options, client)
        outbox = Outbox(store, {"telefoon_sms": adapter}, {LINE: "telefoon_sms"})
        ids: dict[str, str] = {}
        for text in ("delivered", "forgotten", "pending"):
            message = OutboundMessage(LINE, PHONE, text)
            result = await adapter.send(message)
            await store.add_outbound([MessageRecord.outbound(message, provider="telefoon_sms")])
            await store.update_message(
                message.id, status=result.status, provider_message_id=result.provider_message_id
            )
            ids[text] = result.provider_message_id
        other = OutboundMessage(LINE, PHONE, "via vonage")
        await store.add_outbound([MessageRecord.outbound(other, provider="vonage")])
        await store.update_message(other.id, status=MessageStatus.SENT, provider_message_id="V1")
        clock = Clock()
        reconciler = Reconciler(store, {"telefoon_sms": adapter}, outbox.apply_report,
                                after=600, clock=clock)  # fmt: skip

        assert await reconciler.reconcile() == 0  # all fresh: nobody is asked
        assert asked == []

        sim.messages[ids["delivered"]]["status"] = "delivered"
        del sim.messages[ids["forgotten"]]  # the provider erased it: 404
        clock.offset = 601
        assert await reconciler.reconcile() == 1
        # Three due: one listing; the erased one is not in it and is asked about on its own.
        # Never "V1": vonage cannot be asked.
        assert asked == ["messages", ids["forgotten"]]
        record = await store.find_message("telefoon_sms", ids["delivered"])
        assert record is not None and record.status is MessageStatus.DELIVERED
        pending = await store.find_message("telefoon_sms", ids["pending"])
        assert pending is not None and pending.status is MessageStatus.SENT

        asked.clear()
        clock.offset = 700  # asked less than `after` ago: not again
        assert await reconciler.reconcile() == 0 and asked == []

        sim.http_errors = [500, 500]
        clock.offset = 601 + 601  # "pending" is due again; "forgotten" never is
        assert [r.provider_message_id for r in await reconciler.due()] == [ids["pending"]]
        assert await reconciler.reconcile() == 0
        assert asked == [ids["pending"]] and sim.http_errors == [500]
    await store.close()


async def test_enco_dedicated_address_must_be_the_accounts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"address: '7777' is not one of .*8888"):
        async with running_world(tmp_path, Enco(line="7777", address="7777")):
            pass


async def test_enco_credentials_refused_at_start(tmp_path: Path) -> None:
    refused = r"\[providers.enco\].*refused our client credentials"
    with pytest.raises(ConfigError, match=refused) as caught:
        async with running_world(tmp_path, Enco(client_secret="wrong-secret")):
            pass
    assert "wrong-secret" not in str(caught.value)


async def test_enco_deliveries_are_tracked_again_after_a_restart(tmp_path: Path) -> None:
    provider = Enco(delivery_callbacks=False)
    async with running_world(tmp_path, provider) as world:
        await provider.text_in("hello")
        await world.reply(0)
        info_id = provider.message_id(0)
        assert "callbackURL" not in world.sim.sent[0]
        await world.outbound_with_status(info_id, "sent")
        await world.stop()
        # Delivered while convo was down; Enco has nowhere to call: it must be polled.
        assert await world.sim.deliver_status(info_id) is None
        await world.restart()
        record = await world.outbound_with_status(info_id, "delivered")
        assert record["text"] == "Hi! What is your name?"


async def test_outbound_listing_pages_back_to_the_window(
    sim_url: tuple[TelefoonSmsSimulator, str],
) -> None:
    sim, url = sim_url
    now = time.time()
    for n in range(230):  # stored oldest first: the simulator lists newest first
        old = n < 150
        stamp = now - 7200 if old else now
        sim.messages[f"M{n}"] = {
            "id": f"M{n}", "status": "delivered" if old else "sent",
            "direction": "outbound", "from": LINE, "to": PHONE, "body": "hi",
            "date_created": datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z"),
        }  # fmt: skip
    sim.inbound_record(PHONE, LINE, "not ours to reconcile")
    pages: list[str] = []

    async def count(request: httpx.Request) -> None:
        pages.append(request.url.params["page"])

    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
        options = {"api_key": "tk", "webhook_secret": "tsig", "base_url": url}
        adapter = TelefoonAdapter.from_config("telefoon_sms", options, client)
        # The second page is all older than the window: no third page.
        recent = await adapter.outbound_reports(now - 3600, max_pages=10)
        assert pages == ["1", "2"] and len(recent) == 200
        assert [r.provider_message_id for r in recent[:2]] == ["M229", "M228"]
        assert recent[0].status is MessageStatus.SENT
        assert recent[-1].status is MessageStatus.DELIVERED
        pages.clear()
        assert len(await adapter.outbound_reports(now - 3600, max_pages=1)) == 100
        assert pages == ["1"]
        pages.clear()
        everything = await adapter.outbound_reports(now - 86400, max_pages=10)
        assert pages == ["1", "2", "3"] and len(everything) == 230  # a short page ends it


async def test_a_failed_listing_pauses_the_provider_for_the_round(
    tmp_path: Path, sim_url: tuple[TelefoonSmsSimulator, str]
) -> None:
    sim, url = sim_url
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        asked.append(request.url.path.rsplit("/", 1)[-1])

    store = SqliteStore(tmp_path / "convo.db")
    await store.open()
    async with httpx.AsyncClient(event_hooks={"request": [count]}) as client:
        options = {"api_key": "tk", "webhook_secret": "tsig", "base_url": url}
        adapter = TelefoonAdapter.from_config("telefoon_sms", options, client)
        outbox = Outbox(store, {"telefoon_sms": adapter}, {LINE: "telefoon_sms"})
        for text in ("one", "two"):
            message = OutboundMessage(LINE, PHONE, text)
            result = await adapter.send(message)
            await store.add_outbound([MessageRecord.outbound(message, provider="telefoon_sms")])
            await store.update_message(
                message.id, status=result.status, provider_message_id=result.provider_message_id
            )
            sim.messages[result.provider_message_id]["status"] = "delivered"
        clock = Clock()
        clock.offset = 601
        reconciler = Reconciler(store, {"telefoon_sms": adapter}, outbox.apply_report,
                                after=600, clock=clock)  # fmt: skip
        asked.clear()
        sim.http_errors = [503]
        assert await reconciler.reconcile() == 0
        assert asked == ["messages"]  # no lookups one by one after the listing failed
        clock.offset = 601 + 601
        assert await reconciler.reconcile() == 2  # the next round's listing catches both up
        assert asked == ["messages", "messages"]
    await store.close()
