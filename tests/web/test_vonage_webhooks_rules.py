"""The webhook rules and delivery receipts over Vonage, end to end: convo's real
server (SQLite store, signed Vonage webhooks) and the Vonage simulator, both on loopback
(harness: ``tests.e2e.sms_world``).

* An impossible sender number is a malformed webhook: 400 with a JSON error naming the
  field, the request kept, nothing stored and no reply sent.
* A webhook whose fields cannot be read (text/plain, invalid JSON) or that lacks required
  fields is malformed (400, kept); a tampered signature is 401 and leaves nothing behind.
* A reply sent in parts gets one receipt per part: the message keeps the first part's id
  and the send's total price, stays ``sent`` until every part is delivered, and is
  ``failed``/``undelivered`` (with that part's error) as soon as one part is.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from convo.providers.vonage_webhooks import signature
from convo.simulators.vonage import VonageSimulator
from tests.e2e.sms_world import LINE, PHONE, Vonage, World, running_world

SECRET, METHOD = "vsig", "sha256"  # what sms_world's Vonage world signs with


def rejected(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "rejected").glob("*.json"))]


def signed(fields: dict[str, str]) -> dict[str, str]:
    fields = {**fields, "timestamp": str(int(time.time())), "nonce": uuid.uuid4().hex}
    return {**fields, "sig": signature(fields, SECRET, METHOD)}


def inbound_fields(text: str = "hello", msisdn: str = PHONE[1:]) -> dict[str, str]:
    return {
        "msisdn": msisdn,
        "to": LINE[1:],
        "messageId": uuid.uuid4().hex[:16].upper(),
        "text": text,
        "type": "text",
        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


async def post(world: World, kind: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.url) as client:
        return await client.post(f"/webhooks/vonage/{kind}", **kwargs)


# -- 1. impossible numbers --------------------------------------------------------------


@pytest.mark.parametrize("sender", ["+99912345678", "+3212345"])
async def test_inbound_from_an_impossible_number_is_malformed(tmp_path: Path, sender: str) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        sim: VonageSimulator = world.sim
        assert await sim.deliver_inbound(sender, LINE, "hello") == 400
        [kept] = rejected(tmp_path)
        assert "'msisdn'" in kept["error"] and "cannot be a phone number" in kept["error"]
        assert kept["provider"] == "vonage"
        # the same request answered directly: the JSON error says which field and why
        answer = await post(world, "inbound", data=signed(inbound_fields(msisdn=sender[1:])))
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert "'msisdn'" in error and sender in error
        assert await world.messages() == []
        assert (await world.api("/api/messages"))["total"] == 0
        assert sim.sent == []  # no reply


async def test_inbound_from_a_possible_number_is_still_answered(tmp_path: Path) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        assert await world.sim.deliver_inbound(PHONE, LINE, "hello") == 200
        assert await world.reply(0) == "Hi! What is your name?"
        assert rejected(tmp_path) == []


# -- 2. malformed (400, kept) versus wrongly signed (401, not kept) ---------------------


async def test_malformed_signed_webhooks_get_400_and_are_kept(tmp_path: Path) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        good = signed(inbound_fields())
        no_text = signed({k: v for k, v in inbound_fields().items() if k != "text"})
        no_status = signed({"messageId": "0A0000001234567B", "msisdn": PHONE[1:]})
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("inbound", {"content": json.dumps(good),
                         "headers": {"Content-Type": "text/plain"}}, "unsupported content type"),
            ("inbound", {"content": b"{not json",
                         "headers": {"Content-Type": "application/json"}}, "not valid JSON"),
            ("status", {"content": b"[1, 2]",
                        "headers": {"Content-Type": "application/json"}}, "must be an object"),
            ("inbound", {"data": no_text}, "missing field 'text'"),
            ("status", {"json": no_status}, "missing field 'status'"),
        ]  # fmt: skip
        for kind, kwargs, expected in cases:
            answer = await post(world, kind, **kwargs)
            assert answer.status_code == 400, (kind, kwargs, answer.text)
            assert answer.headers["Content-Type"].startswith("application/json")
            assert expected in answer.json()["error"]
        kept = rejected(tmp_path)
        assert len(kept) == len(cases)
        assert [k["error"] for k in kept] and all(k["provider"] == "vonage" for k in kept)
        assert {k["content_type"] for k in kept} >= {"text/plain", "application/json"}
        assert await world.messages() == []
        assert world.sim.sent == []


async def test_a_tampered_signature_is_401_and_leaves_nothing(tmp_path: Path) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        fields = signed(inbound_fields())
        tampered = {**fields, "text": "hello!"}
        for kwargs in ({"data": tampered}, {"json": tampered}, {"params": tampered},
                       {"data": {k: v for k, v in fields.items() if k != "sig"}},
                       {"data": {**fields, "sig": "0" * 64}}):  # fmt: skip
            answer = await post(world, "inbound", **kwargs)
            assert answer.status_code == 401, kwargs
            assert answer.json()["error"]
        stale = inbound_fields()
        stale["timestamp"] = str(int(time.time()) - 3600)
        stale["sig"] = signature(stale, SECRET, METHOD)
        assert (await post(world, "inbound", data=stale)).status_code == 401
        assert rejected(tmp_path) == []
        assert await world.messages() == []
        assert world.sim.sent == []
        assert (await post(world, "inbound", data=fields)).status_code == 200  # the original


# -- 3. multi-part delivery receipts ------------------------------------------------------

LONG_NAME = "Ann " + "the very patient person who writes long names " * 3


async def long_reply(world: World) -> tuple[dict[str, Any], list[str]]:
    """Have convo send a reply in several parts; its log entry and its part ids."""
    sim: VonageSimulator = world.sim
    await world.provider.text_in("hi")
    await world.reply(0)
    await world.provider.text_in(LONG_NAME.strip())
    await world.reply(1)
    part_ids = list(sim.sent[1]["message-ids"])
    assert len(part_ids) >= 2
    sent = await world.outbound_with_status(part_ids[0], "sent")
    return sent, part_ids


async def record(world: World, message_id: str) -> dict[str, Any]:
    [found] = [m for m in await world.messages() if m["id"] == message_id]
    return found


async def test_parts_delivered_one_by_one(tmp_path: Path) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        sent, parts = await long_reply(world)
        total = pytest.approx(len(parts) * 0.0333)
        assert sent["segments"] == len(parts) and sent["price"] == total
        for part in parts[:-1]:
            assert await world.sim.deliver_status(part) == 200
            now = await record(world, sent["id"])
            assert now["status"] == "sent"  # parts outstanding
            assert now["provider_message_id"] == parts[0] and now["price"] == total
        assert await world.sim.deliver_status(parts[0]) == 200  # a retry counts once
        assert (await record(world, sent["id"]))["status"] == "sent"
        assert await world.sim.deliver_status(parts[-1]) == 200
        done = await world.outbound_with_status(parts[0], "delivered")
        assert done["id"] == sent["id"] and done["price"] == total and done["error"] is None
        assert done["segments"] == len(parts)


async def test_parts_delivered_across_a_restart(tmp_path: Path) -> None:
    """The delivered parts are in the store: receipts that straddle a restart (or reach
    another server) still add up to ``delivered``."""
    async with running_world(tmp_path, Vonage()) as world:
        sent, parts = await long_reply(world)
        for part in parts[:-1]:
            assert await world.sim.deliver_status(part) == 200
        await world.restart()
        world.sim.webhook_base = world.url
        assert (await record(world, sent["id"]))["status"] == "sent"
        assert await world.sim.deliver_status(parts[-1]) == 200
        done = await world.outbound_with_status(parts[0], "delivered")
        assert done["id"] == sent["id"]


@pytest.mark.parametrize(("status", "final"), [("failed", "failed"), ("expired", "undelivered")])
async def test_one_failed_part_fails_the_message(tmp_path: Path, status: str, final: str) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        sent, parts = await long_reply(world)
        assert await world.sim.deliver_status(parts[0]) == 200
        assert await world.sim.deliver_status(parts[1], status, err_code="6") == 200
        failed = await world.outbound_with_status(parts[0], final)
        assert failed["error"] == "6"
        assert failed["price"] == pytest.approx(len(parts) * 0.0333)
        for part in parts[2:]:  # later parts delivered: a final status stays
            assert await world.sim.deliver_status(part) == 200
        after = await record(world, sent["id"])
        assert (after["status"], after["error"]) == (final, "6")
        assert after["provider_message_id"] == parts[0]


async def test_failed_part_after_the_others_were_delivered(tmp_path: Path) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        sent, parts = await long_reply(world)
        for part in parts[:-1]:
            assert await world.sim.deliver_status(part) == 200
        assert await world.sim.deliver_status(parts[-1], "rejected", err_code="3") == 200
        failed = await world.outbound_with_status(parts[0], "failed")
        assert failed["id"] == sent["id"] and failed["error"] == "3"


async def test_receipt_without_client_ref_finds_the_message_by_any_part_id(
    tmp_path: Path,
) -> None:
    async with running_world(tmp_path, Vonage()) as world:
        sent, parts = await long_reply(world)
        base = {"msisdn": PHONE[1:], "to": LINE[1:], "price": "0.03330000", "err-code": "0",
                "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}  # fmt: skip
        for part in reversed(parts):  # no client-ref; the last part first
            answer = await post(
                world, "status", json=signed({**base, "messageId": part, "status": "delivered"})
            )
            assert answer.status_code == 200 and answer.json()["applied"] == 1
        done = await world.outbound_with_status(parts[0], "delivered")
        assert done["id"] == sent["id"]
