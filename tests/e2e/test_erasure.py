"""Erasing a contact (GDPR) end to end: convo's real server, its SQLite file and the Telefoon
SMS simulator on loopback (harness: ``sms_world``).

A phone holds a conversation and another contact writes too; ``DELETE /api/contacts/{number}``
forgets the phone in convo (admin API shows nothing) and at the provider (the simulator
answers 404 for each of its messages), and leaves the other contact alone. The admin token
is required and a bad number is a 400; a provider failure for one copy is reported and the
other copies are still deleted. A signed inbound webhook replayed after erasure is answered
200 and changes nothing. ``convo erase`` (a real subprocess) does the same with the
configured store and providers, with exit codes 0, 1 and 2.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.sms_world import (
    DATA,
    LINE,
    PHONE,
    TOKEN,
    TelefoonSms,
    World,
    eventually,
    running_world,
)

OTHER = "+32470123457"
ENCODED = f"%2B{PHONE[1:]}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def conversation(world: World) -> list[str]:
    """PHONE texts twice and gets two replies, and OTHER texts once and gets one; returns
    the simulator's ids of PHONE's four messages once convo has recorded all of them."""
    provider = world.provider
    await provider.text_in("hello")
    await world.reply(0)
    await provider.delivered(0)
    await world.outbound_with_status(provider.message_id(0), "delivered")
    await provider.text_in("Ann")
    await world.reply(1)
    await world.outbound_with_status(provider.message_id(1), "sent")
    assert await world.sim.deliver_inbound(OTHER, LINE, "hi") == 200
    await world.reply(2)

    async def recorded() -> bool:  # sms_world's helpers read PHONE's log only
        log = await world.api(f"/api/messages?number=%2B{OTHER[1:]}")
        return any(m["provider_message_id"] == provider.message_id(2) for m in log["messages"])

    await eventually(recorded, "the reply to OTHER recorded with its provider id")
    return sim_ids(world, PHONE)


def sim_ids(world: World, number: str) -> list[str]:
    """The simulator's ids of the messages to or from ``number`` that it still keeps."""
    return [m["id"] for m in world.sim.messages.values() if number in (m["from"], m["to"])]


def sim_url(world: World) -> str:
    return str(world.settings.providers["telefoon_sms"]["base_url"])


async def sim_status(world: World, message_id: str) -> int:
    """What the simulator's ``GET /messages/{id}`` answers."""
    async with httpx.AsyncClient(base_url=sim_url(world), headers={"X-API-Key": "tk"}) as c:
        return (await c.get(f"/messages/{message_id}")).status_code


async def erase(world: World, number: str, headers: dict[str, str] | None = None) -> Any:
    async with httpx.AsyncClient(base_url=world.url) as client:
        return await client.delete(
            f"/api/contacts/{number}", headers=AUTH if headers is None else headers
        )


async def test_erasing_a_contact_forgets_them_here_and_at_the_provider(tmp_path: Path) -> None:
    async with running_world(tmp_path, TelefoonSms()) as world:
        phone_ids = await conversation(world)
        other_ids = sim_ids(world, OTHER)
        assert len(phone_ids) == 4 and len(other_ids) == 2

        response = await erase(world, ENCODED)

        assert response.status_code == 200, response.text
        assert response.json() == {
            "number": PHONE,
            "sessions": 1,
            "messages": 4,
            "fragments": 0,
            "provider_deleted": 4,
            "provider_failed": [],
            "kept_by_provider": 0,
            "contact": False,  # no contact record was kept for this number
        }
        gone = await world.api(f"/api/conversations/{ENCODED}")
        assert gone["conversations"] == [] and gone["messages"] == []
        assert (await world.api(f"/api/messages?number={ENCODED}"))["total"] == 0
        assert [await sim_status(world, i) for i in phone_ids] == [404] * 4
        # The other contact is untouched, here and at the provider.
        kept = await world.api(f"/api/conversations/%2B{OTHER[1:]}")
        assert [c["step"] for c in kept["conversations"]] == ["name"]
        assert [m["text"] for m in kept["messages"] if m["direction"] == "inbound"] == ["hi"]
        assert len(kept["messages"]) == 2
        assert [await sim_status(world, i) for i in other_ids] == [200, 200]
        # Erasing again finds nothing: the answer says so, and it is still a 200.
        again = (await erase(world, PHONE)).json()  # the number written unencoded
        assert (again["sessions"], again["messages"], again["provider_deleted"]) == (0, 0, 0)


async def test_a_signed_webhook_replayed_after_erasure_is_answered_and_dropped(
    tmp_path: Path,
) -> None:
    # Telefoon SMS signs the body and nothing else: a captured webhook stays valid for ever.
    # Erasure leaves a tombstone of the message's id, so its replay is the duplicate it
    # would have been before erasure: 200 for the sender, nothing stored, nobody texted.
    async with running_world(tmp_path, TelefoonSms()) as world:
        provider = world.provider
        await provider.text_in("hello")
        await world.reply(0)
        await world.outbound_with_status(provider.message_id(0), "sent")
        [(url, captured, status)] = [w for w in world.sim.webhooks if w[0].endswith("/inbound")]
        assert status == 200
        erased = (await erase(world, ENCODED)).json()
        assert (erased["sessions"], erased["messages"]) == (1, 2)

        replayed = await world.sim.post_webhook(url, captured)  # same body, same X-Signature

        assert replayed == 200
        assert (await world.api(f"/api/messages?number={ENCODED}"))["total"] == 0
        assert (await world.api(f"/api/conversations/{ENCODED}"))["conversations"] == []
        # The phone's next real text is a stranger's first message: one new conversation,
        # one reply. Had the replay been taken, its turn (queued first) would show here.
        await provider.text_in("hello again")
        question = await world.reply(1)
        log = [(m["direction"], m["text"]) for m in await world.messages()]
        assert log == [("inbound", "hello again"), ("outbound", question)]
        assert len(world.sim.sent) == 2
        [conversation] = (await world.api(f"/api/conversations/{ENCODED}"))["conversations"]
        assert conversation["step"] == "name"  # the first question's answer awaited


async def test_erasure_needs_the_admin_token_and_a_phone_number(tmp_path: Path) -> None:
    async with running_world(tmp_path, TelefoonSms()) as world:
        await world.provider.text_in("hello")
        await world.reply(0)
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await erase(world, ENCODED, headers)
            assert refused.status_code == 401
        bad = await erase(world, "not-a-number")
        assert bad.status_code == 400
        assert "not-a-number" in bad.json()["error"]
        kept = await world.api(f"/api/conversations/{ENCODED}")
        assert len(kept["conversations"]) == 1 and len(kept["messages"]) == 2
        assert len(sim_ids(world, PHONE)) == 2


async def test_a_failed_provider_deletion_is_reported_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    async with running_world(tmp_path, TelefoonSms()) as world:
        phone_ids = await conversation(world)
        world.sim.http_errors = [503]  # the next request to the provider's API fails

        body = (await erase(world, ENCODED)).json()

        [failed] = body["provider_failed"]
        assert failed["provider"] == "telefoon_sms" and "503" in failed["error"]
        assert body["provider_deleted"] == 3 and body["messages"] == 4
        # Only the copy whose deletion failed is still at the provider; convo kept nothing.
        assert sim_ids(world, PHONE) == [failed["provider_message_id"]]
        assert failed["provider_message_id"] in phone_ids
        assert (await world.api(f"/api/messages?number={ENCODED}"))["total"] == 0


async def convo_erase(config: Path, number: str) -> tuple[int, str, str]:
    """``convo erase NUMBER --config CONFIG`` in a subprocess (the simulator keeps serving
    on this loop meanwhile): exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "convo", "erase", number, "--config", str(config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_convo_erase_uses_the_configured_store_and_providers(tmp_path: Path) -> None:
    async with running_world(tmp_path, TelefoonSms()) as world:
        phone_ids = await conversation(world)
        config = tmp_path / "convo.toml"
        config.write_text(
            f'[store]\nurl = "{world.settings.store.url}"\n'
            f'[flows]\npaths = ["{DATA / "sms_two_questions.yaml"}"]\n'
            f'[[lines]]\nnumber = "{LINE}"\nprovider = "telefoon_sms"\n'
            'flow = "sms_two_questions"\n'
            f'[providers.telefoon_sms]\napi_key = "tk"\nwebhook_secret = "tsig"\n'
            f'base_url = "{sim_url(world)}"\n'
        )

        code, out, err = await convo_erase(config, "phone me")
        assert (code, out) == (2, "")
        assert "cannot erase" in err and "phone me" in err

        world.sim.http_errors = [503]
        code, out, err = await convo_erase(config, "0470 12 34 56")  # PHONE, as people write it
        assert code == 1, err
        lines = out.splitlines()
        assert lines[0] == (
            f"erased {PHONE}: 1 conversation(s), 4 message(s), 0 long-text fragment(s)"
        )
        assert lines[1].startswith("provider copies: 3 deleted, 1 failed, 0 kept")
        [left] = sim_ids(world, PHONE)
        assert left in phone_ids and lines[2].startswith(f"failed: telefoon_sms {left}: ")

        code, out, err = await convo_erase(config, OTHER)
        assert code == 0, err
        assert out.startswith(f"erased {OTHER}: 1 conversation(s), 2 message(s)")
        assert sim_ids(world, OTHER) == []
        assert (await world.api("/api/messages"))["total"] == 0
