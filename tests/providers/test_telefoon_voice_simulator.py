"""Telefoon Voice adapter against its simulator on loopback, and the simulator's caller.

Two real aiohttp servers: the simulator (the provider's API and its callers) and a tiny
"bot" app that answers call webhooks through the real adapter (verify, parse_call, render)
with a fixed script, so both directions run over HTTP as in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import (
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    SignatureError,
)
from convo.models import CallEvent, CallStatus, WebhookRequest
from convo.providers.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.providers.telefoon_voice import TelefoonVoice
from convo.voice.instructions import Dial, Gather, Hangup, Instruction, Redirect, Say
from convo.voice.twiml import RenderError

KEY = "sim-key"
SECRET = "sim-secret"
LINE = "+3225550100"
CALLER = "+32470123456"
Script = Callable[[str, str, CallEvent], list[Instruction]]


@dataclass
class Bot:
    """A stand-in for convo's web layer: verifies, parses, records, renders."""

    script: Script
    adapter: TelefoonVoice | None = None
    public_url: str = ""
    events: list[tuple[str, CallEvent]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        assert self.adapter is not None
        body = await request.read()
        form = dict(parse_qsl(body.decode())) if request.content_type.endswith("urlencoded") else {}
        hook = WebhookRequest(
            method=request.method,
            path=request.path,
            url=f"{self.public_url}{request.path_qs}",
            headers=dict(request.headers),
            query=dict(request.query),
            body=body,
            content_type=request.content_type,
            form=form,
        )
        try:
            self.adapter.verify(hook)
        except SignatureError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        route = request.match_info["route"]
        event = self.adapter.parse_call(hook)
        self.events.append((route, event))
        if route == "status":
            return web.Response(status=200)
        doc, ctype = self.adapter.render(self.script(route, request.query.get("step", ""), event))
        return web.Response(body=doc, headers={"Content-Type": ctype})


def ivr(route: str, step: str, event: CallEvent) -> list[Instruction]:
    """Language menu -> name by speech -> redirect -> transfer."""
    if route == "answer" and step == "transfer":
        return [Dial("+3225550199", caller_id=event.line, timeout=20), Hangup()]
    if route == "answer":
        menu = Say("Druk 1 voor Nederlands.", language="nl-NL")
        return [Gather(num_digits=1, prompts=(menu,)), Say("Tot ziens.", language="nl-NL")]
    if event.digits == "1":
        ask = Say("Wat is uw naam?", language="nl-BE")  # nl-BE falls back to nl-NL
        return [
            Say("U koos Nederlands.", language="nl-NL"),
            Gather(input=frozenset({"speech"}), speech_language="nl-BE", prompts=(ask,)),
        ]
    if event.speech is not None:
        assert event.adapter_public_url if False else True
        return [Say(f"Hallo {event.speech}", language="nl-NL"), Redirect(TRANSFER_URL[0])]
    return [Say("We hoorden niets.", language="nl-NL"), Hangup()]


TRANSFER_URL = [""]  # set once the bot's URL is known


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def sim() -> AsyncIterator[TelefoonVoiceSimulator]:
    simulator = TelefoonVoiceSimulator(api_key=KEY, webhook_secret=SECRET)
    server = await _serve(simulator.app)
    simulator.base_url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]  # test-only note
    yield simulator
    await server.close()


async def make_bot(
    sim: TelefoonVoiceSimulator,
    client: httpx.AsyncClient,
    *,
    fmt: str = "xml",
    secret: str = SECRET,
    script: Script = ivr,
) -> tuple[Bot, TestServer]:
    bot = Bot(script)
    app = web.Application()
    app.router.add_post("/webhooks/telefoon_voice/voice/{route}", bot.handle)
    server = await _serve(app)
    bot.public_url = str(server.make_url("")).rstrip("/")
    TRANSFER_URL[0] = f"{bot.public_url}/webhooks/telefoon_voice/voice/answer?step=transfer"
    bot.adapter = TelefoonVoice.from_config(
        "telefoon_voice",
        {
            "api_key": KEY,
            "webhook_secret": secret,
            "base_url": sim.base_url,  # type: ignore[attr-defined]  # set by the fixture
            "format": fmt,
        },
        client,
        public_url=bot.public_url,
    )
    sim.webhook_base = bot.public_url
    return bot, server
