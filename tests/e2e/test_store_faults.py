"""The store stops taking writes while texts come in and replies go out; when it takes
them again, every text is answered exactly once, without a restart.

Real faults on the real SQLite file, with convo's real server and the Vonage simulator on
loopback: another connection holding the file's write lock (``BEGIN EXCLUSIVE``) past the
busy timeout, and triggers that make one kind of write fail (a turn's save, a send's
outcome) while the rest works. Webhooks are posted as Vonage posts them (form fields;
``allow_unsigned``), so a provider's retry carries the same message id."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiohttp import web

from tests.e2e.sms_world import Vonage, World, eventually, running_world

BUSY_TIMEOUT = 5.0  # the SQLite store's own
PHONES = [f"+3247055{i:04d}" for i in range(12)]


def vonage_inbound(phone: str, line: str, message_id: str, text: str = "hi") -> dict[str, str]:
    return {"msisdn": phone.lstrip("+"), "to": line.lstrip("+"), "messageId": message_id,
            "text": text, "type": "text", "message-timestamp": "2026-01-01 10:00:00"}  # fmt: skip


async def post_inbound(world: World, fields: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
        return await client.post("/webhooks/vonage/inbound", data=fields)


def replies_per_phone(world: World) -> Counter[str]:
    return Counter("+" + str(send["to"]) for send in world.sim.sent)


def hold_sends(provider: Vonage) -> asyncio.Event:
    """The simulator answers no send until the returned event is set (a slow provider)."""
    gate = asyncio.Event()

    @web.middleware
    async def wait(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/sms/json":
            await gate.wait()
        return await handler(request)

    provider.sim.app.middlewares.append(wait)  # before the simulator starts
    return gate


async def answered_once_each(world: World, phones: list[str]) -> None:
    async def all_answered() -> bool:
        counts = replies_per_phone(world)
        return all(counts[p] >= 1 for p in phones)

    await eventually(all_answered, "every text to be answered", timeout=60)
    await world.api("/api/messages")  # a round trip: late duplicates would be in by now
    await asyncio.sleep(1)
    counts = replies_per_phone(world)
    assert {p: counts[p] for p in phones} == dict.fromkeys(phones, 1)


async def test_webhooks_are_refused_while_the_file_is_locked_and_all_answered_once_after(
    tmp_path: Path,
) -> None:
    provider = Vonage(allow_unsigned=True, signature_secret="")  # unsigned: no secret
    gate = hold_sends(provider)
    async with running_world(tmp_path, provider) as world:
        early, late = PHONES[:6], PHONES[6:]
        # Texts acknowledged before the fault; their replies reach the provider, which
        # answers only once the database is locked: their outcomes cannot be written.
        for i, phone in enumerate(early):
            answer = await post_inbound(world, vonage_inbound(phone, provider.line, f"E{i}"))
            assert answer.status_code == 200, answer.text

        async def sends_waiting() -> bool:
            return len(world.sim.sent) == 0 and await _pending_sends(tmp_path) == len(early)

        await eventually(sends_waiting, "the early replies to be claimed and in flight")
        holder = sqlite3.connect(tmp_path / "convo.db", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            gate.set()
            refused = await asyncio.gather(
                *(
                    post_inbound(world, vonage_inbound(p, provider.line, f"L{i}"))
                    for i, p in enumerate(late)
                )
            )
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert 0 < int(answer.headers["Retry-After"]) <= 60
                assert str(tmp_path) not in answer.text and "convo.db" not in answer.text
            async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
                ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "store" in ready.json()["failed"]
            assert str(tmp_path) not in ready.text
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # The provider retries what was refused, with the same message ids.
        for i, phone in enumerate(late):
            answer = await post_inbound(world, vonage_inbound(phone, provider.line, f"L{i}"))
            assert answer.status_code == 200, answer.text
        await answered_once_each(world, PHONES)
        # Every send's outcome was recorded: a restart sends nothing again.
        await world.restart()
        await asyncio.sleep(2)
        await answered_once_each(world, PHONES)


async def _pending_sends(tmp_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / "convo.db")) as cx, cx:
        (count,) = cx.execute(
            "SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sending'"
        ).fetchone()
    return int(count)


async def test_acknowledged_texts_whose_turns_failed_are_answered_once_the_store_recovers(
    tmp_path: Path,
) -> None:
    provider = Vonage(allow_unsigned=True, signature_secret="")  # unsigned: no secret
    async with running_world(tmp_path, provider) as world:
        db = sqlite3.connect(tmp_path / "convo.db", isolation_level=None, timeout=5)
        try:
            # Texts are stored (and acknowledged), but no turn can save its conversation.
            db.execute(
                "CREATE TRIGGER broken_turns BEFORE INSERT ON sessions "
                "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
            )
            for i, phone in enumerate(PHONES):
                answer = await post_inbound(world, vonage_inbound(phone, provider.line, f"T{i}"))
                assert answer.status_code == 200, answer.text

            async def turns_failed() -> bool:
                (left,) = db.execute(
                    "SELECT count(*) FROM messages WHERE direction = 'inbound' AND processed = 0"
                ).fetchone()
                return bool(left == len(PHONES))

            await eventually(turns_failed, "the turns to fail, leaving the texts unprocessed")
            await asyncio.sleep(0.5)
            assert world.sim.sent == []
            db.execute("DROP TRIGGER broken_turns")
        finally:
            db.close()
        await answered_once_each(world, PHONES)  # no restart
