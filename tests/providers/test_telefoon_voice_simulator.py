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
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    SignatureError,
)
from convo.models import CallEvent, CallStatus, WebhookRequest
from convo.providers.telefoon_voice import TelefoonVoice
from convo.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.voice.instructions import Dial, Gather, Hangup, Instruction, Redirect, Say
from convo.voice.twiml import RenderError

KEY = "sim-key"
SECRET = "sim-secret"
LINE = "+3225550100"
CALLER = "+32470123456"
HOSTILE = "</Say><Dial>+900123</Dial> & ]]>"


@dataclass
class Bot:
    """A stand-in for convo's web layer: verifies, parses, records, renders a script."""

    adapter: TelefoonVoice
    script: Callable[[Bot, str, str, CallEvent], list[Instruction]]
    public_url: str
    events: list[tuple[str, CallEvent]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        urlencoded = request.content_type == "application/x-www-form-urlencoded"
        hook = WebhookRequest(
            method=request.method,
            path=request.path,
            url=f"{self.public_url}{request.path_qs}",
            headers=dict(request.headers),
            query=dict(request.query),
            body=body,
            content_type=request.content_type,
            form=dict(parse_qsl(body.decode())) if urlencoded else {},
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
        step = request.query.get("step", "")
        doc, ctype = self.adapter.render(self.script(self, route, step, event))
        return web.Response(body=doc, headers={"Content-Type": ctype})


def ivr(bot: Bot, route: str, step: str, event: CallEvent) -> list[Instruction]:
    """Language menu -> name by speech (echoed back) -> redirect -> transfer."""
    if route == "answer" and step == "transfer":
        return [Dial("+3225550199", caller_id=event.line, timeout=20), Hangup()]
    if route == "answer":
        menu = Say("Druk 1 voor Nederlands.", language="nl-NL")
        return [Gather(num_digits=1, prompts=(menu,)), Say("Tot ziens.", language="nl-NL")]
    if event.digits == "1":
        ask = Say("Wat is uw naam?", language="nl-BE")  # no nl-BE at Telefoon: nl-NL
        return [
            Say("U koos Nederlands.", language="nl-NL"),
            Gather(input=frozenset({"speech"}), speech_language="nl-BE", prompts=(ask,)),
        ]
    if event.speech is not None:
        transfer = f"{bot.public_url}/webhooks/telefoon_voice/voice/answer?step=transfer"
        return [Say(f"Hallo {event.speech}", language="nl-NL"), Redirect(transfer)]
    return [Say("We hoorden niets.", language="nl-NL"), Hangup()]


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@dataclass
class World:
    sim: TelefoonVoiceSimulator
    api_url: str
    client: httpx.AsyncClient
    servers: list[TestServer] = field(default_factory=list)

    def adapter(
        self, *, key: str = KEY, public_url: str = "http://127.0.0.1:9", **options: object
    ) -> TelefoonVoice:
        opts = {"api_key": key, "webhook_secret": SECRET, "base_url": self.api_url, **options}
        return TelefoonVoice.from_config("telefoon_voice", opts, self.client, public_url=public_url)

    async def bot(self, *, secret: str = SECRET, fmt: str = "xml") -> Bot:
        bots: list[Bot] = []  # the bot needs the server's URL, the server its route

        async def handle(request: web.Request) -> web.Response:
            return await bots[0].handle(request)

        app = web.Application()
        app.router.add_post("/webhooks/telefoon_voice/voice/{route}", handle)
        server = await _serve(app)
        self.servers.append(server)
        public = str(server.make_url("")).rstrip("/")
        adapter = self.adapter(public_url=public, webhook_secret=secret, format=fmt)
        bots.append(Bot(adapter, ivr, public))
        self.sim.webhook_base = public
        return bots[0]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    sim = TelefoonVoiceSimulator(api_key=KEY, webhook_secret=SECRET, numbers=[LINE])
    server = await _serve(sim.app)
    async with httpx.AsyncClient() as client:
        w = World(sim, str(server.make_url("/v1/voice")), client, [server])
        yield w
        for s in reversed(w.servers):
            await s.close()


# -- the caller's side ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_caller_follows_gathers_redirect_and_dial(world: World, fmt: str) -> None:
    bot = await world.bot(fmt=fmt)
    transcript = await world.sim.place_call(CALLER, LINE, ["1", f"say:{HOSTILE}"])

    assert transcript.says == [
        ("Druk 1 voor Nederlands.", "nl-NL"),
        ("U koos Nederlands.", "nl-NL"),
        ("Wat is uw naam?", "nl-NL"),
        (f"Hallo {HOSTILE}", "nl-NL"),  # the caller's words stayed words
    ]
    assert [(g.input, g.attrs.get("language")) for g in transcript.gathers] == [
        ("1", None),
        (f"say:{HOSTILE}", "nl-NL"),
    ]
    assert [(d.verb, d.text) for d in transcript.dials] == [("Number", "+3225550199")]
    assert transcript.of("Dial")[0].attrs["callerId"] == LINE
    assert transcript.hangup and transcript.ended_by == "hangup"
    assert transcript.status_code == 200
    assert all(doc.status == 200 for doc in transcript.documents)
    assert len(transcript.documents) == 4

    routes = [(route, e.digits, e.speech, e.status) for route, e in bot.events]
    assert routes == [
        ("answer", None, None, CallStatus.IN_PROGRESS),
        ("input", "1", None, CallStatus.IN_PROGRESS),
        ("input", None, HOSTILE, CallStatus.IN_PROGRESS),
        ("answer", None, None, CallStatus.IN_PROGRESS),
        ("status", None, None, CallStatus.COMPLETED),
    ]
    first = bot.events[0][1]
    assert (first.line, first.caller, first.direction) == (LINE, CALLER, "inbound")
    assert bot.events[2][1].confidence == pytest.approx(0.9)


async def test_silence_posts_no_input_and_caller_may_hang_up(world: World) -> None:
    bot = await world.bot()
    silent = await world.sim.place_call(CALLER, LINE, [None])
    assert bot.events[1][0] == "input"
    assert (bot.events[1][1].digits, bot.events[1][1].speech) == (None, None)
    assert silent.says[-1] == ("We hoorden niets.", "nl-NL")
    assert silent.gathers[0].input is None
    assert silent.hangup

    gone = await world.sim.place_call(CALLER, LINE, [])
    assert gone.ended_by == "caller"
    assert gone.says == [("Druk 1 voor Nederlands.", "nl-NL")]
    assert gone.status_code == 200
    assert world.sim.calls[gone.call_id]["status"] == "completed"


async def test_wrong_signature_is_refused_by_the_bot(world: World) -> None:
    bot = await world.bot(secret="another-secret")
    transcript = await world.sim.place_call(CALLER, LINE, ["1"])
    assert transcript.ended_by == "error"
    assert "answered 401" in transcript.error
    assert bot.events == []


async def test_place_call_checks_inputs(world: World) -> None:
    await world.bot()
    with pytest.raises(ValueError, match=r"inputs\[1\]: input 'yes' is neither DTMF"):
        await world.sim.place_call(CALLER, LINE, ["1", "yes"])


async def test_deliver_status(world: World) -> None:
    bot = await world.bot()
    transcript = await world.sim.place_call(CALLER, LINE, [])
    assert await world.sim.deliver_status(transcript.call_id, "completed", duration=9) == 200
    assert bot.events[-1][1].duration == 9.0


# -- the API side -----------------------------------------------------------------------------


async def test_start_call_is_answered_by_the_simulator(world: World) -> None:
    bot = await world.bot()
    callee = "+32471999888"
    world.sim.queue_answer_inputs(callee, [None])
    assert bot.adapter is not None
    call_id = await bot.adapter.start_call(
        to=callee, line=LINE, answer_url="", status_url="", ring_timeout=25.5, tts_language="fr-FR"
    )
    await world.sim.drain()

    assert world.sim.sent == [
        {
            "to": callee,
            "from": LINE,
            "url": f"{bot.public_url}/webhooks/telefoon_voice/voice/answer",
            "status_callback": f"{bot.public_url}/webhooks/telefoon_voice/voice/status",
            "timeout": 26,
            "tts_language": "fr-BE",
        }
    ]
    transcript = world.sim.transcripts[call_id]
    assert transcript.direction == "outbound"
    assert transcript.says[-1] == ("We hoorden niets.", "nl-NL")
    answer = bot.events[0][1]
    assert (answer.call_id, answer.line, answer.caller, answer.direction) == (
        call_id,
        LINE,
        callee,
        "outbound",
    )
    info = await bot.adapter.get_call(call_id)
    assert (info.status, info.from_number, info.to_number) == (CallStatus.COMPLETED, LINE, callee)


async def test_list_end_and_conferences(world: World) -> None:
    world.sim.auto_answer = False  # nobody picks up: the calls stay queued
    tv = world.adapter()
    first = await tv.start_call(to="+32471000001", line=LINE, answer_url="", status_url="")
    await tv.start_call(to="+32471000002", line=LINE, answer_url="", status_url="")
    listed = await tv.list_calls(status="queued", direction="outbound", page=1, page_size=1)
    assert listed.total == 2 and len(listed.calls) == 1
    assert (await tv.list_calls(status=CallStatus.COMPLETED)).total == 0

    await tv.end_call(first)
    assert (await tv.get_call(first)).status is CallStatus.CANCELED

    room = await tv.create_conference(friendly_name="Support", max_participants=10)
    assert (room.friendly_name, room.status) == ("Support", "init")
    assert [r.id for r in await tv.list_conferences()] == [room.id]

    with pytest.raises(ValueError, match=r"page_size must be 1\.\.100"):
        await tv.list_calls(page_size=101)


async def test_open_conference_reuses_an_open_room_and_replaces_a_completed_one(
    world: World,
) -> None:
    tv = world.adapter()
    await tv.open_conference("bridge", record=True)
    await tv.open_conference("bridge", record=True)  # open already: nothing created
    assert world.sim.sent == [{"friendly_name": "bridge", "record": True}]
    (room,) = world.sim.conferences.values()
    room["status"] = "completed"
    await tv.open_conference("bridge", record=False)
    assert world.sim.sent[-1] == {"friendly_name": "bridge"}
    assert len(world.sim.conferences) == 2


async def test_error_mapping(world: World) -> None:
    tv = world.adapter()
    with pytest.raises(ProviderRejected) as rejected:
        await world.adapter(key="wrong").start_call(
            to=CALLER, line=LINE, answer_url="", status_url=""
        )
    assert rejected.value.code == "401"
    assert KEY not in str(rejected.value)

    world.sim.fail_next(429)
    with pytest.raises(RateLimited) as limited:
        await tv.get_call("CAnope")
    assert limited.value.retry_after == 1.0

    world.sim.fail_next(500)
    with pytest.raises(ProviderUnavailable):
        await tv.list_conferences()

    with pytest.raises(ProviderRejected) as missing:
        await tv.get_call("CA/../nope")
    assert missing.value.code == "404"

    with pytest.raises(ProviderRejected, match="must be a Telefoon number"):
        await tv.start_call(to=CALLER, line="+3225559999", answer_url="", status_url="")

    with pytest.raises(RenderError, match="tts_language: no supported locale for 'es-ES'"):
        await tv.start_call(
            to=CALLER, line=LINE, answer_url="", status_url="", tts_language="es-ES"
        )


async def test_unreachable_bot_fails_the_call_not_the_simulator(world: World) -> None:
    world.sim.webhook_base = "http://127.0.0.1:9"  # the discard port: nothing listens
    transcript = await world.sim.place_call(CALLER, LINE, ["1"])
    assert transcript.ended_by == "error"
    assert transcript.error.startswith("cannot reach http://127.0.0.1:9/webhooks/")
    assert world.sim.calls[transcript.call_id]["status"] == "failed"


async def test_simulator_validates_like_the_document(world: World) -> None:
    tv = world.adapter()
    with pytest.raises(ProviderRejected, match=r"'to' must be an E\.164 number") as bad:
        await tv.start_call(to="0471 12 34 56", line=LINE, answer_url="", status_url="")
    assert bad.value.code == "400"
    async with httpx.AsyncClient(base_url=world.api_url) as raw:
        no_body = await raw.post("/calls", content=b"[]", headers={"X-API-Key": KEY})
        assert no_body.status_code == 400
        assert no_body.json()["error"]["code"] == "invalid_body"
        bad_filter = await raw.get("/calls?status=answered", headers={"X-API-Key": KEY})
        assert bad_filter.status_code == 400
        unknown = await raw.delete("/calls/CAnope", headers={"X-API-Key": KEY})
        assert unknown.status_code == 404
