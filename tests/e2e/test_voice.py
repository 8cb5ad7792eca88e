"""Voice end to end: convo's real server and the Telefoon Voice simulator, over loopback.

Two real aiohttp servers: the simulator (Telefoon's REST API and its callers, who listen,
press keys, speak and hang up) and convo (``create_app`` on a SQLite file, signed webhooks,
``public_url`` = its own loopback URL, so the action URLs it hands out really lead back to
it). convo's socket is bound before the settings are built, so ``public_url`` is known.
"""

from __future__ import annotations

import asyncio
import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo import cli
from convo.bot import Bot, load_bot
from convo.config import Settings, load_settings, parse_settings
from convo.dialer import CallOptions, place_call
from convo.exceptions import ConfigError, FlowRuntimeError, ProviderUnavailable
from convo.models import ConversationKey, ConversationStatus, Session
from convo.providers.telefoon_voice_webhook import SIGNATURE_HEADER, sign
from convo.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.simulators.telefoon_voice_caller import CallTranscript
from convo.voice.twiml import RenderError
from convo.web.app import create_app
from convo.web.state import REJECTED, RUNTIME

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
REMINDER_BOT = ROOT / "bots_examples" / "reminder_call" / "bot.py"
KEY, SECRET = "sim-key", "sim-secret"
SUPPORT, ECHO, REMINDER = "+3225550111", "+3225550112", "+3225550113"
RECEPTION = "+3225550199"
CALLER = "+32470123456"

CONFIG = """
[server]
public_url = "{public_url}"
api_token = "admin-token"
shutdown_timeout = 5

[store]
url = "sqlite:///{db}"

[flows]
paths = ["{root}/flows/support_line.yaml", "{data}/voice_echo.yaml",
         "{root}/bots_examples/reminder_call/reminder_call.yaml"]

[webhooks]
rejected_dir = "{rejected}"

[handoff]
reception = "{reception}"

[[lines]]
number = "{support}"
provider = "telefoon_voice"
flow = "support_line"
channels = ["voice"]

[[lines]]
number = "{echo}"
provider = "telefoon_voice"
flow = "voice_echo"
channels = ["voice"]

[[lines]]
number = "{reminder}"
provider = "sandbox"
voice_provider = "telefoon_voice"
flow = "reminder_call"
channels = ["sms", "voice"]

[providers.telefoon_voice]
api_key = "{key}"
webhook_secret = "{secret}"
base_url = "{sim_url}"
"""


@dataclass
class World:
    sim: TelefoonVoiceSimulator
    url: str  # convo's base URL (= public_url)
    config: Path
    settings: Settings
    app: web.Application
    bot: Bot

    async def session(self, line: str, caller: str) -> Session | None:
        return await self.app[RUNTIME].store.get_session(ConversationKey(line, "voice", caller))

    async def post(self, route: str, fields: dict[str, str], *, secret: str = SECRET) -> Any:
        body = urlencode(fields).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: sign(secret, body),
        }
        async with httpx.AsyncClient() as client:
            return await client.post(f"{self.url}{route}", content=body, headers=headers)


def write_config(tmp_path: Path, public_url: str, sim_url: str) -> Path:
    config = tmp_path / "convo.toml"
    config.write_text(
        CONFIG.format(
            public_url=public_url,
            db=tmp_path / "convo.db",
            root=ROOT,
            data=DATA,
            rejected=tmp_path / "rejected",
            reception=RECEPTION,
            support=SUPPORT,
            echo=ECHO,
            reminder=REMINDER,
            key=KEY,
            secret=SECRET,
            sim_url=sim_url,
        )
    )
    return config


@pytest.fixture
def world_config(tmp_path: Path) -> Path:
    """The e2e config file, for tests that need no server (nothing listens there)."""
    return write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    sim = TelefoonVoiceSimulator(api_key=KEY, webhook_secret=SECRET)
    sim_server = TestServer(sim.app, host="127.0.0.1")
    await sim_server.start_server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = write_config(tmp_path, url, str(sim_server.make_url("")).rstrip("/"))
    settings = load_settings(config, env={})
    bot = load_bot(REMINDER_BOT)
    app = create_app(settings, bot=bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    sim.webhook_base = url
    try:
        yield World(sim, url, config, settings, app, bot)
    finally:
        await runner.cleanup()
        await sim_server.close()


def said(transcript: CallTranscript) -> list[str]:
    return [text for text, _ in transcript.says]


HOURS = {
    "1": ("nl-NL", "We zijn open van maandag tot vrijdag, van acht tot achttien uur."),
    "2": ("fr-BE", "Nous sommes ouverts du lundi au vendredi, de huit à dix-huit heures."),
    "3": ("de-DE", "Wir sind von Montag bis Freitag von acht bis achtzehn Uhr geöffnet."),
    "4": ("en-GB", "We are open Monday to Friday, from eight am to six pm."),
}


@pytest.mark.parametrize("key", sorted(HOURS))
async def test_support_line_tells_the_hours_in_each_language(world: World, key: str) -> None:
    caller = f"+3247012340{key}"
    transcript = await world.sim.place_call(caller, SUPPORT, [key, "1"])
    assert transcript.error == "" and transcript.hangup
    # The language menu mixes the four locales in one Gather.
    menu = transcript.says[:4]
    assert [lang for _, lang in menu] == ["nl-NL", "fr-BE", "de-DE", "en-GB"]
    locale, hours = HOURS[key]
    assert (hours, locale) in transcript.says
    after_menu = transcript.says[4:]
    assert after_menu and all(lang == locale for _, lang in after_menu)
    assert [s.input for s in transcript.gathers] == [key, "1"]
    # Every document was XML, and every Gather posts back to convo's own input URL.
    assert all(doc.content_type.startswith("application/xml") for doc in transcript.documents)
    # Each document's actions name it (``turn``), so a replayed webhook is told apart.
    actions = [g.attrs["action"] for g in transcript.gathers]
    assert all(
        action.startswith(f"{world.url}/webhooks/telefoon_voice/voice/input?after=gather&turn=")
        for action in actions
    )
    assert len(set(actions)) == len(actions)
    assert transcript.status_code == 200
    session = await world.session(SUPPORT, caller)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_busy_agent_leads_to_voicemail_with_consent_first(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["4", "2", "dial:busy", "say:hi"])
    assert transcript.error == "" and transcript.hangup
    verbs = [step.verb for step in transcript.steps]
    assert [step.text for step in transcript.dials] == ["+3225550100"]
    dial = transcript.of("Dial")[0]
    assert dial.input == "dial:busy" and dial.attrs["timeout"] == "20"
    consent = verbs.index("Record") - 2  # consent, then the instructions, then Record
    assert transcript.steps[consent].text.startswith("Nobody is available.")
    assert transcript.steps[consent + 1].text.startswith("Speak after the beep")
    assert said(transcript)[-2:] == ["Thank you, we will call you back.", "Goodbye."]
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED
    recording = f"https://recordings.telefoon.invalid/{transcript.call_id}/1.wav"
    assert session.slots["voicemail"] == {"url": recording, "duration": 5.0}


@pytest.mark.parametrize(
    "speech", ["</Say><Dial>+900123</Dial>", 'a & b <c> "d" ]]>', "<![CDATA[x]]><Hangup/>"]
)
async def test_speech_is_escaped_in_the_answer(world: World, speech: str) -> None:
    transcript = await world.sim.place_call(CALLER, ECHO, [f"say:{speech}"])
    assert transcript.error == ""
    last = transcript.documents[-1]
    root = ET.fromstring(last.body)  # well-formed, or this raises
    assert root.tag == "Response"
    assert root.find(".//Dial") is None and root.find(".//Number") is None
    assert [say.text for say in root.iter("Say")] == [f"You said {speech}"]
    assert not transcript.dials
    session = await world.session(ECHO, CALLER)
    assert session is not None and session.slots["said"] == speech


async def test_outbound_reminder_call_from_python(world: World) -> None:
    callee = "+32470555001"
    world.sim.queue_answer_inputs(callee, ["1"])
    call_id = await place_call(
        world.settings,
        "reminder_call",
        to="0470 55 50 01",
        line=REMINDER,
        params={"patient": "An", "date": "2026-12-01"},
        lang="en",
        bot=world.bot,
    )
    await world.sim.drain()
    request = world.sim.sent[-1]
    assert request["from"] == REMINDER and request["to"] == callee
    assert request["url"] == f"{world.url}/webhooks/telefoon_voice/voice/answer"
    assert request["status_callback"] == f"{world.url}/webhooks/telefoon_voice/voice/status"
    transcript = world.sim.transcripts[call_id]
    assert transcript.direction == "outbound" and transcript.error == ""
    assert said(transcript)[0].startswith("Hello An, this is the dental practice.")
    assert said(transcript)[-1].startswith("Thank you, your appointment is confirmed.")
    assert transcript.hangup and transcript.status_code == 200
    session = await world.session(REMINDER, callee)
    assert session is not None and session.status is ConversationStatus.ENDED
    assert session.slots["confirmation"] == "2026-12-01:confirmed"
    assert session.params["patient"] == "An"


async def test_outbound_call_from_the_cli_hands_off_to_reception(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    callee = "+32470555002"
    world.sim.queue_answer_inputs(callee, ["2"])
    argv = ["call", "reminder_call", "--config", str(world.config), "--to", callee]
    argv += ["--line", REMINDER, "--param", "patient=Bo", "--param", "date=2026-12-01"]
    argv += ["--lang", "nl", "--bot", str(REMINDER_BOT)]
    assert await asyncio.to_thread(cli.main, argv) == 0
    call_id = capsys.readouterr().out.strip()
    await world.sim.drain()
    transcript = world.sim.transcripts[call_id]
    assert said(transcript)[0].startswith("Hallo Bo, dit is de tandartspraktijk.")
    assert transcript.says[0][1] == "nl-NL"  # nl-BE asked, Telefoon has nl-NL
    assert [step.text for step in transcript.dials] == [RECEPTION]  # from [handoff]
    session = await world.session(REMINDER, callee)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_refused_outbound_call_ends_the_prepared_conversation(world: World) -> None:
    world.sim.fail_next(503)
    callee = "+32470555003"
    with pytest.raises(ProviderUnavailable):
        await place_call(
            world.settings,
            "reminder_call",
            to=callee,
            line=REMINDER,
            params={"patient": "Cy", "date": "2026-12-01"},
            bot=world.bot,
        )
    session = await world.session(REMINDER, callee)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_place_call_refuses_bad_requests_before_calling(world: World) -> None:
    params = {"patient": "An", "date": "2026-12-01"}
    with pytest.raises(ConfigError, match="not one of our lines"):
        await place_call(world.settings, "reminder_call", to=CALLER, line="+3225550177")
    with pytest.raises(FlowRuntimeError, match="no language 'de'"):
        await place_call(world.settings, "reminder_call", to=CALLER, params=params, lang="de")
    with pytest.raises(FlowRuntimeError, match="patient"):
        await place_call(world.settings, "reminder_call", to=CALLER, line=REMINDER)
    assert world.sim.sent == []


def rejected(world: World) -> list[dict[str, Any]]:
    """The webhook requests convo kept as malformed (one JSON file each)."""
    return [json.loads(path.read_text()) for path in world.app[REJECTED].files()]


def call_fields(**extra: str) -> dict[str, str]:
    base = {"call_id": "CA1", "from": CALLER, "to": SUPPORT}
    return base | {"direction": "inbound", "status": "in-progress"} | extra


async def test_bad_signature_is_401_and_changes_nothing(world: World) -> None:
    resp = await world.post("/webhooks/telefoon_voice/voice/answer", call_fields(), secret="x")
    assert resp.status_code == 401
    assert "X-Signature" in resp.json()["error"]
    assert await world.session(SUPPORT, CALLER) is None
    assert rejected(world) == []


async def test_malformed_call_webhooks_are_400_and_kept(world: World) -> None:
    fields = call_fields()
    del fields["call_id"]
    resp = await world.post("/webhooks/telefoon_voice/voice/answer", fields)
    assert resp.status_code == 400 and "'call_id'" in resp.json()["error"]
    resp = await world.post("/webhooks/telefoon_voice/voice/input?after=later", call_fields())
    assert resp.status_code == 400 and "'after'" in resp.json()["error"]
    kept = rejected(world)
    assert len(kept) == 2 and {k["provider"] for k in kept} == {"telefoon_voice"}
    assert {k["url"] for k in kept} == {
        f"{world.url}/webhooks/telefoon_voice/voice/answer",
        f"{world.url}/webhooks/telefoon_voice/voice/input?after=later",
    }
    assert await world.session(SUPPORT, CALLER) is None
    resp = await world.post("/webhooks/vonage/voice/answer", call_fields())
    assert resp.status_code == 404


async def test_call_to_a_number_that_is_not_ours_is_hung_up(world: World) -> None:
    resp = await world.post("/webhooks/telefoon_voice/voice/answer", call_fields(to=RECEPTION))
    assert resp.status_code == 200
    root = ET.fromstring(resp.content)
    assert [child.tag for child in root] == ["Hangup"]


async def test_voice_provider_must_be_a_voice_provider(tmp_path: Path) -> None:
    line = {"number": SUPPORT, "provider": "sandbox", "flow": "voice_echo"}
    settings = parse_settings(
        {
            "store": {"url": "memory://"},
            "flows": {"paths": [str(DATA)]},
            "lines": [line | {"channels": ["sms", "voice"], "voice_provider": "sandbox"}],
        },
        source="bad.toml",
        env={},
    )
    runner = web.AppRunner(create_app(settings))
    with pytest.raises(ConfigError, match="voice_provider 'sandbox' is not a voice provider"):
        await runner.setup()
    await runner.cleanup()


def test_handoff_numbers_are_checked_and_normalised() -> None:
    good = parse_settings({"handoff": {"reception": "02 555 01 99", "desk": "sip:d@x"}}, env={})
    assert good.handoff == {"reception": RECEPTION, "desk": "sip:d@x"}
    with pytest.raises(ConfigError, match=r"\[handoff\] reception"):
        parse_settings({"handoff": {"reception": "12"}}, env={})


def test_convo_call_with_an_unknown_line_exits_2(
    world_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["call", "voice_echo", "--to", CALLER, "--line", "+3225550177"]
    assert cli.main([*argv, "--config", str(world_config)]) == 2
    assert "+3225550177 is not one of our lines" in capsys.readouterr().err


async def test_convo_call_passes_ring_timeout_recording_and_tts_language(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.sim.auto_answer = False  # the call stays queued: listed, then hung up
    callee = "+32470555004"
    argv = ["call", "reminder_call", "--config", str(world.config), "--to", callee]
    argv += ["--line", REMINDER, "--param", "patient=Di", "--param", "date=2026-12-01"]
    argv += ["--bot", str(REMINDER_BOT), "--timeout", "44.5", "--record"]
    argv += ["--tts-language", "fr-FR"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    call_id = capsys.readouterr().out.strip()
    request = world.sim.sent[-1]
    assert request["timeout"] == 45  # whole seconds, rounded up
    assert request["record"] is True
    assert request["tts_language"] == "fr-BE"  # Telefoon speaks fr-BE, not fr-FR

    listing = ["calls", "list", "--config", str(world.config), "--line", REMINDER]
    assert await asyncio.to_thread(cli.main, [*listing, "--status", "queued", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in listed["calls"]] == [call_id] and listed["total"] == 1
    assert listed["calls"][0]["to_number"] == callee
    assert listed["calls"][0]["direction"] == "outbound"
    assert await asyncio.to_thread(cli.main, [*listing, "--status", "completed"]) == 0
    assert capsys.readouterr().out.splitlines() == ["page 1: 0 of 0"]

    hangup = ["calls", "hangup", call_id, "--config", str(world.config), "--line", REMINDER]
    assert await asyncio.to_thread(cli.main, hangup) == 0
    assert capsys.readouterr().out.strip() == f"hung up {call_id}"
    assert world.sim.calls[call_id]["status"] == "canceled"

    unknown = ["calls", "hangup", "CA-nope", "--config", str(world.config)]
    assert await asyncio.to_thread(cli.main, unknown) == 2
    assert "404" in capsys.readouterr().err


async def test_call_options_a_provider_lacks_are_refused_before_calling(world: World) -> None:
    params = {"patient": "An", "date": "2026-12-01"}
    with pytest.raises(ValueError, match="ring_timeout"):
        CallOptions(ring_timeout=0)
    with pytest.raises(ValueError, match="tts_language is empty"):
        CallOptions(tts_language=" ")
    with pytest.raises(RenderError, match="xx-XX"):
        await place_call(
            world.settings, "reminder_call", to=CALLER, line=REMINDER, params=params,
            options=CallOptions(tts_language="xx-XX"),
        )  # fmt: skip
    assert world.sim.sent == []
    session = await world.session(REMINDER, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED


def test_call_options_name_what_the_provider_takes() -> None:
    class RecordsOnly:  # a provider's class attribute, as Twilio Voice has it
        call_options = frozenset({"record"})

    asked = CallOptions(ring_timeout=20, record=True).for_provider(RecordsOnly(), "tw")
    assert asked == {"ring_timeout": 20, "record": True}
    with pytest.raises(ConfigError, match=r"'tw' cannot set tts_language .*takes: record"):
        CallOptions(record=True, tts_language="nl-NL").for_provider(RecordsOnly(), "tw")
    with pytest.raises(ConfigError, match=r"cannot set record .*neither record nor"):
        CallOptions(record=True).for_provider(object(), "sandbox")
    assert CallOptions().for_provider(object(), "sandbox") == {"ring_timeout": 30.0}


def test_convo_call_timeout_must_be_positive_seconds(
    world_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["call", "voice_echo", "--to", CALLER, "--config", str(world_config)]
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--timeout", "0"])
    assert exited.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err


async def test_conference_step_opens_the_room_once_then_callers_join_it(world: World) -> None:
    first = await world.sim.place_call(CALLER, SUPPORT, ["4", "3"])
    second = await world.sim.place_call("+32470123457", SUPPORT, ["4", "3"])
    for transcript in (first, second):
        assert [s.text for s in transcript.of("Conference")] == ["support-bridge"]
        assert said(transcript)[-1] == "You are joining the conference bridge."
    rooms = list(world.sim.conferences.values())
    assert [room["friendly_name"] for room in rooms] == ["support-bridge"]  # opened once
    assert world.sim.sent == [{"friendly_name": "support-bridge"}]  # not recorded


async def test_a_room_that_cannot_be_opened_is_still_joined_by_name(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.sim.fail_next(503)  # the room lookup fails
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["4", "3"])
    assert [s.text for s in transcript.of("Conference")] == ["support-bridge"]
    assert transcript.error == "" and world.sim.conferences == {}
    assert "cannot open conference 'support-bridge'" in caplog.text
