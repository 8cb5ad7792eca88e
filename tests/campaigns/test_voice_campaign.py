"""A voice campaign: convo's real server places each call through the Telefoon Voice
simulator, which answers and presses keys; a refused call counts as failed, a contact who
opted out is skipped, and each answered call runs the flow with that contact's params."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.bot import load_bot
from convo.config import parse_settings
from convo.models import ConversationKey, ConversationStatus
from convo.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.web.app import create_app
from convo.web.state import RUNTIME

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bots_examples" / "reminder_call" / "bot.py"
LINE = "+3225550113"
TOKEN = "admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[TelefoonVoiceSimulator, str, Any]]:
    sim = TelefoonVoiceSimulator(api_key="sim-key", webhook_secret="sim-secret")
    sim_server = TestServer(sim.app, host="127.0.0.1")
    await sim_server.start_server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = parse_settings(
        {
            "server": {"public_url": url, "api_token": TOKEN, "shutdown_timeout": 5},
            "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
            "flows": {"paths": [str(ROOT / "bots_examples" / "reminder_call")]},
            "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
            "lines": [{"number": LINE, "provider": "sandbox", "voice_provider": "telefoon_voice",
                       "flow": "reminder_call", "channels": ["sms", "voice"]}],
            "providers": {"telefoon_voice": {"api_key": "sim-key", "webhook_secret": "sim-secret",
                                             "base_url": str(sim_server.make_url("")).rstrip("/"),
                                             "rate_limit": 20}},
        },
        source="test.toml",
        env={},
    )  # fmt: skip
    app = create_app(settings, bot=load_bot(BOT))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    sim.webhook_base = url
    try:
        yield sim, url, app
    finally:
        await runner.cleanup()
        await sim_server.close()


async def test_a_voice_campaign_calls_each_contact_once(world: Any) -> None:
    sim, url, app = world
    store = app[RUNTIME].store
    refused, an, opted_out, bo = "+32470555101", "+32470555102", "+32470555103", "+32470555104"
    await store.set_suppressed(LINE, opted_out, True)
    for callee in (an, bo):
        sim.queue_answer_inputs(callee, ["1"])
    sim.fail_next(503)  # the first call the campaign places: the refused one
    contacts = [
        {"number": refused, "fields": {"patient": "Cy"}},
        {"number": an, "language": "en", "fields": {"patient": "An"}},
        {"number": opted_out, "fields": {"patient": "Di"}},
        {"number": bo, "language": "nl", "fields": {"patient": "Bo"}},
    ]
    body = {"flow": "reminder_call", "channel": "voice", "contacts": contacts,
            "params": {"date": "2026-12-01"}}  # fmt: skip
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        created = await client.post("/api/campaigns", json=body)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        assert created.json()["rate_per_second"] == 20  # the voice provider's limit
        for _ in range(300):
            shown = (await client.get(f"/api/campaigns/{campaign_id}")).json()
            if shown["status"] == "done":
                break
            await asyncio.sleep(0.05)
    assert shown["status"] == "done", shown
    counts = shown["counts"]
    assert (counts["started"], counts["sent"], counts["failed"]) == (2, 2, 1)
    assert counts["skipped_opted_out"] == 1
    await sim.drain()
    placed = [request["to"] for request in sim.sent if "to" in request]
    assert sorted(placed) == [an, bo]  # each once; the refused one was not accepted
    said = {t.caller: [text for text, _ in t.says] for t in sim.transcripts.values()}
    assert said[an][0].startswith("Hello An, this is the dental practice.")
    assert said[bo][0].startswith("Hallo Bo, dit is de tandartspraktijk.")
    for callee in (an, bo):
        session = await store.get_session(ConversationKey(LINE, "voice", callee))
        assert session is not None and session.status is ConversationStatus.ENDED
    cy = await store.get_session(ConversationKey(LINE, "voice", refused))
    assert cy is None or cy.status is ConversationStatus.ENDED  # the refused call is closed
