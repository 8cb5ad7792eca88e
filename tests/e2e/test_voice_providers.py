"""The same IVR flows on every voice provider, each through its simulator, end to end.

For Telefoon Voice (TwiML-style XML), Twilio Voice (TwiML) and Vonage Voice (NCCO JSON): a
real convo server on a SQLite file with signed webhooks, and the provider's simulator
calling it (its caller listens, presses keys, speaks, is put through or not) and taking
its outbound call requests. The flows are the example ones, unchanged: ``support_line``,
``reminder_call``, and the echo and recorded-dial flows of the e2e data. At the end, replayed
webhooks (a provider's retries) made by hand the way each simulator makes them.
"""

from __future__ import annotations

import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.bot import load_bot
from convo.config import Settings, parse_settings
from convo.dialer import place_call
from convo.models import ConversationKey, ConversationStatus, Session
from convo.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.simulators.twilio_voice import TwilioVoiceSimulator
from convo.simulators.vonage_voice import VonageVoiceSimulator
from convo.voice.twiml import Node
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.providers.keys import RSA_KEY, RSA_PEM

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
REMINDER_BOT = ROOT / "bots_examples" / "reminder_call" / "bot.py"
SUPPORT, ECHO, REMINDER = "+3225550111", "+3225550112", "+3225550113"
DIALS = "+3225550114"
RECEPTION, CALLER = "+3225550199", "+32470123456"
SECRET = "voice-signing-secret-of-32-bytes-or-more"
TWILIO_ACCOUNT = "AC" + "7" * 32


@dataclass(frozen=True)
class VoiceKind:
    """One voice provider: its simulator, its config section, what it speaks."""

    simulator: Callable[[], Any]
    options: dict[str, Any]
    french: str  # the locale the support line's French is spoken in
    hears_after_recording: bool  # whether the caller hears the flow after a Record


KINDS: dict[str, VoiceKind] = {
    "telefoon_voice": VoiceKind(
        lambda: TelefoonVoiceSimulator(api_key="k", webhook_secret=SECRET),
        {"api_key": "k", "webhook_secret": SECRET},
        "fr-BE",
        True,
    ),
    "twilio_voice": VoiceKind(
        lambda: TwilioVoiceSimulator(account_sid=TWILIO_ACCOUNT, auth_token=SECRET),
        {"account_sid": TWILIO_ACCOUNT, "auth_token": SECRET},
        "fr-BE",
        True,
    ),
    "vonage_voice": VoiceKind(
        lambda: VonageVoiceSimulator(
            application_id="app-1", public_key=RSA_KEY.public_key(), signature_secret=SECRET
        ),
        {"application_id": "app-1", "private_key": RSA_PEM, "signature_secret": SECRET},
        "fr-FR",  # Vonage has no fr-BE: the fallback table picks fr-FR
        False,  # Vonage posts the recording on the side; the call ends with it
    ),
}


@dataclass
class World:
    kind: str
    sim: Any
    url: str
    settings: Settings
    app: web.Application
    sim_url: str = ""  # the simulator's own base URL (its control API)

    async def session(self, line: str, caller: str) -> Session | None:
        return await self.app[RUNTIME].store.get_session(ConversationKey(line, "voice", caller))


def settings_for(tmp_path: Path, kind: str, public_url: str, sim_url: str) -> Settings:
    lines = [
        {"number": SUPPORT, "provider": kind, "flow": "support_line", "channels": ["voice"]},
        {"number": ECHO, "provider": kind, "flow": "voice_echo", "channels": ["voice"]},
        {"number": DIALS, "provider": kind, "flow": "recorded_dial", "channels": ["voice"]},
        {"number": REMINDER, "provider": "sandbox", "voice_provider": kind,
         "flow": "reminder_call", "channels": ["sms", "voice"]},
    ]  # fmt: skip
    flows = [ROOT / "flows" / "support_line.yaml", DATA / "voice_echo.yaml"]
    flows.append(DATA / "recorded_dial.yaml")
    flows.append(ROOT / "bots_examples" / "reminder_call" / "reminder_call.yaml")
    doc = {
        "server": {"public_url": public_url, "api_token": "t", "shutdown_timeout": 5},
        "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
        "flows": {"paths": [str(path) for path in flows]},
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        "handoff": {"reception": RECEPTION},
        "lines": lines,
        "providers": {kind: KINDS[kind].options | {"base_url": sim_url}},
    }
    return parse_settings(doc, source="voice.toml", env={})


@pytest.fixture(params=sorted(KINDS))
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    kind: str = request.param
    sim = KINDS[kind].simulator()
    sim_server = TestServer(sim.app, host="127.0.0.1")
    await sim_server.start_server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sim_url = str(sim_server.make_url("")).rstrip("/")
    settings = settings_for(tmp_path, kind, url, sim_url)
    app = create_app(settings, bot=load_bot(REMINDER_BOT))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    sim.webhook_base = url
    try:
        yield World(kind, sim, url, settings, app, sim_url)
    finally:
        await runner.cleanup()
        await sim_server.close()


def said(transcript: Any) -> list[str]:
    return [text for text, _ in transcript.says]


async def test_the_support_line_in_french(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["2", "1"])
    assert transcript.error == "" and transcript.hangup
    french = KINDS[world.kind].french
    hours = "Nous sommes ouverts du lundi au vendredi, de huit à dix-huit heures."
    assert (hours, french) in transcript.says
    assert [lang for _, lang in transcript.says[:4]] == ["nl-NL", french, "de-DE", "en-GB"]
    assert [gather.input for gather in transcript.gathers] == ["2", "1"]
    # Each document's actions name it (``turn``), so a replayed webhook is told apart.
    actions = [g.attrs["action"] for g in transcript.gathers]
    assert all(
        action.startswith(f"{world.url}/webhooks/{world.kind}/voice/input?after=gather&turn=")
        for action in actions
    )
    assert len(set(actions)) == len(actions)
    assert transcript.status_code == 200
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_silence_and_wrong_keys_reprompt_then_goodbye(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["4", None, "9", "8", "1"])
    assert transcript.hangup and transcript.error == ""
    assert said(transcript).count("Sorry, I did not get that. Press 1, 2 or 3.") == 2
    assert said(transcript)[-1] == "Goodbye."
    assert [gather.input for gather in transcript.gathers] == ["4", None, "9", "8"]


async def test_a_busy_agent_leads_to_voicemail(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["4", "2", "dial:busy", "say:hi"])
    assert transcript.error == "" and transcript.hangup
    assert [step.text for step in transcript.dials] == ["+3225550100"]
    assert transcript.of("Dial")[0].input == "dial:busy"
    assert any(text.startswith("Speak after the beep") for text in said(transcript))
    assert transcript.of("Record")[0].input == "say:hi"
    heard_thanks = "Thank you, we will call you back." in said(transcript)
    assert heard_thanks is KINDS[world.kind].hears_after_recording
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED
    assert session.slots["voicemail"]["url"].startswith("https://")
    assert session.slots["voicemail"]["duration"] == 5.0


@pytest.mark.parametrize("speech", ["</Say><Dial>+900123</Dial>", '"}, {"action": "connect"'])
async def test_what_a_caller_says_stays_text(world: World, speech: str) -> None:
    transcript = await world.sim.place_call(CALLER, ECHO, [f"say:{speech}"])
    assert transcript.error == ""
    assert f"You said {speech}" in said(transcript)
    assert not transcript.dials
    session = await world.session(ECHO, CALLER)
    assert session is not None and session.slots["said"] == speech


async def test_an_outbound_reminder_call(world: World) -> None:
    callee = "+32470555001"
    world.sim.queue_answer_inputs(callee, ["1"])
    params = {"patient": "An", "date": "2026-12-01"}
    call_id = await place_call(
        world.settings, "reminder_call", to=callee, line=REMINDER, params=params, lang="en",
        bot=load_bot(REMINDER_BOT),
    )  # fmt: skip
    await world.sim.drain()
    transcript = world.sim.transcripts[call_id]
    assert transcript.direction == "outbound" and transcript.error == ""
    assert said(transcript)[0].startswith("Hello An, this is the dental practice.")
    assert said(transcript)[-1].startswith("Thank you, your appointment is confirmed.")
    assert transcript.hangup and transcript.status_code == 200
    assert len(world.sim.sent) == 1
    session = await world.session(REMINDER, callee)
    assert session is not None and session.status is ConversationStatus.ENDED
    assert session.slots["confirmation"] == "2026-12-01:confirmed"


async def test_a_forged_webhook_is_refused(world: World) -> None:
    world.sim._caller.dialect.secret = "forged-secret-of-more-than-32-bytes-long"
    transcript = await world.sim.place_call(CALLER, SUPPORT, ["1"])
    assert transcript.ended_by == "error" and transcript.documents[0].status == 401
    assert await world.session(SUPPORT, CALLER) is None


# -- the simulators' control API, over HTTP --------------------------------------------


async def test_a_scripted_call_through_the_control_api(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.sim_url) as client:
        answer = await client.post(
            "/_simulator/calls", json={"from": CALLER, "to": ECHO, "inputs": ["say:hi there"]}
        )
        assert answer.status_code == 200
        transcript = answer.json()
        assert transcript["says"][-1]["text"] == "You said hi there"
        assert transcript["error"] == "" and transcript["status_code"] == 200
        bad = await client.post("/_simulator/calls", json={"from": CALLER, "to": ECHO,
                                                          "inputs": ["12a"]})  # fmt: skip
        assert bad.status_code == 400 and "12a" in bad.json()["error"]


async def test_a_live_caller_speaks_presses_keys_and_hangs_up(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.sim_url) as client:
        started = await client.post(
            "/_simulator/calls", json={"from": CALLER, "to": ECHO, "live": True}
        )
        assert started.status_code == 201
        echo_id = started.json()["call_id"]
        said_hi = await client.post(f"/_simulator/calls/{echo_id}/say", json={"text": "hello"})
        assert said_hi.status_code == 202
        await world.sim.drain()
        transcript = (await client.get(f"/_simulator/calls/{echo_id}/transcript")).json()
        assert [s["text"] for s in transcript["says"]][-1] == "You said hello"
        late = await client.post(f"/_simulator/calls/{echo_id}/keys", json={"keys": "1"})
        assert late.status_code == 409  # the call is over

        caller = "+32470123499"
        started = await client.post(
            "/_simulator/calls", json={"from": caller, "to": SUPPORT, "live": True}
        )
        support_id = started.json()["call_id"]
        bad = await client.post(f"/_simulator/calls/{support_id}/keys", json={"keys": "say:x"})
        assert bad.status_code == 400
        pressed = await client.post(f"/_simulator/calls/{support_id}/keys", json={"keys": "4"})
        assert pressed.status_code == 202  # English
        hung_up = await client.post(f"/_simulator/calls/{support_id}/hangup")
        assert hung_up.status_code == 202
        await world.sim.drain()
        transcript = (await client.get(f"/_simulator/calls/{support_id}/transcript")).json()
        assert transcript["ended_by"] == "caller" and transcript["status_code"] == 200
        assert transcript["says"][-1]["text"].startswith("Press 1 for our opening hours")
        listed = (await client.get("/_simulator/calls")).json()["calls"]
        assert [(c["call_id"], c["live"], c["status"]) for c in listed] == [
            (echo_id, True, "completed"),
            (support_id, True, "completed"),
        ]
        assert (await client.post("/_simulator/calls/nope/hangup")).status_code == 404
    session = await world.session(SUPPORT, caller)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_a_live_callee_answers_an_outbound_call(world: World) -> None:
    callee = "+32470555009"
    async with httpx.AsyncClient(base_url=world.sim_url) as client:
        queued = await client.post("/_simulator/answers", json={"to": callee, "live": True})
        assert queued.status_code == 201
        params = {"patient": "An", "date": "2026-12-01"}
        call_id = await place_call(
            world.settings, "reminder_call", to=callee, line=REMINDER, params=params,
            lang="en", bot=load_bot(REMINDER_BOT),
        )  # fmt: skip
        pressed = await client.post(f"/_simulator/calls/{call_id}/keys", json={"keys": "1"})
        assert pressed.status_code == 202
        await world.sim.drain()
        transcript = (await client.get(f"/_simulator/calls/{call_id}/transcript")).json()
    assert transcript["direction"] == "outbound"
    assert transcript["says"][-1]["text"].startswith("Thank you, your appointment is confirmed.")
    session = await world.session(REMINDER, callee)
    assert session is not None and session.slots["confirmation"] == "2026-12-01:confirmed"


#: How each provider's document says a Dial is recorded, and in which TTS locale.
DIAL_RECORDED = {
    "telefoon_voice": {"record": "true", "tts_language": "de-DE"},  # its POST /calls names
    "twilio_voice": {"record": "record-from-answer"},  # TwiML's <Dial record>
    "vonage_voice": {"record": "true"},  # a record action before the connect
}


async def test_a_recorded_dial_says_its_notice_in_its_own_locale(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, DIALS)
    assert transcript.error == ""
    [dial] = transcript.of("Dial")
    assert [number.text for number in transcript.dials] == [RECEPTION]
    recorded = {key: dial.attrs.get(key) for key in DIAL_RECORDED[world.kind]}
    assert recorded == DIAL_RECORDED[world.kind]
    if world.kind != "telefoon_voice":  # only Telefoon's dial takes a TTS language
        assert "tts_language" not in dial.attrs
    # The GDPR notice first, then what the step says, both in the dial's locale (de-DE,
    # not the flow's en-GB); then the flow goes on once the dialled call ended.
    assert transcript.says == [
        ("Dieses Gespräch wird aufgezeichnet.", "de-DE"),
        ("Einen Moment bitte, wir verbinden Sie.", "de-DE"),
        ("Thank you for calling.", "en-GB"),
    ]
    steps = [step.verb for step in transcript.steps]
    assert steps.index("Dial") > steps.index("Say")  # the notice is heard before the dial


# -- replays ---------------------------------------------------------------------------------
#
# A provider delivering a call webhook twice: the flow neither advances twice nor starts
# again. On every voice provider, through the real routes of a running server (SQLite file, signed
# webhooks), with webhooks made and signed the way that provider's simulator makes them: the
# same ``input`` webhook twice (a retry after a lost answer) advances the flow once and gets
# the same document; a replayed ``answer`` gets the first answer, and the conversation stays
# where the caller had taken it. The support line is the example flow: its language menu
# takes 2 (French), and 2 in the main menu would put the caller through to an agent, so a
# second advance shows as a handoff.


class Phone:
    """One simulated inbound call to the support line, its webhooks made by hand."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.caller = world.sim._caller  # the simulator's own caller: its encoding, signing
        self.call = {
            "id": f"call-{uuid.uuid4().hex}",
            "conversation": f"CON-{uuid.uuid4().hex}",  # Vonage's conversation_uuid
            "from": CALLER,
            "to": SUPPORT,
            "direction": "inbound",
            "status": "in-progress",
        }

    def url(self, route: str) -> str:
        return f"{self.world.url}/webhooks/{self.world.kind}/voice/{route}"

    async def post(self, url: str, fields: dict[str, Any], status: int = 200) -> httpx.Response:
        response = await self.caller.post(url, fields)
        assert response.status_code == status, response.text
        return response

    async def answer(self) -> httpx.Response:
        return await self.post(self.url("answer"), self.caller.fields(self.call, "answer"))

    async def press(self, action: str, keys: str, status: int = 200) -> httpx.Response:
        fields = self.caller.fields(self.call) | self.caller.dialect.input_fields(keys, "test")
        return await self.post(action, fields, status)

    def gather_action(self, response: httpx.Response) -> str:
        nodes: list[Node] = self.caller.dialect.parse(
            response.content, response.headers["Content-Type"]
        )
        [action] = [node.get("action") for node in nodes if node.verb == "Gather"]
        assert action is not None and "turn=" in action
        return action


async def test_the_same_input_twice_advances_once(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    first = await phone.press(menu, "2")  # French
    again = await phone.press(menu, "2")  # the provider's retry of the same webhook
    assert again.content == first.content
    session = await world.session(SUPPORT, CALLER)
    assert session is not None
    assert (session.step, session.lang, session.status) == ("main", "fr", ConversationStatus.ACTIVE)
    # The next turn's document names itself anew: its input is a turn of its own.
    main = phone.gather_action(first)
    assert main != menu
    hours = await phone.press(main, "1")
    assert b"lundi au vendredi" in hours.content
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.status is ConversationStatus.ENDED


async def test_a_replayed_answer_starts_nothing_again(world: World) -> None:
    phone = Phone(world)
    answered = await phone.answer()
    menu = phone.gather_action(answered)
    await phone.press(menu, "2")
    before = await world.session(SUPPORT, CALLER)
    replayed = await phone.answer()
    assert replayed.content == answered.content
    after = await world.session(SUPPORT, CALLER)
    assert before is not None and after is not None
    assert (after.step, after.lang, after.updated_at) == ("main", "fr", before.updated_at)


async def test_another_call_from_the_same_caller_starts_the_flow_again(world: World) -> None:
    phone = Phone(world)
    await phone.press(phone.gather_action(await phone.answer()), "2")
    await phone.post(
        phone.url("status"), phone.caller.fields(phone.call | {"status": "completed"}, "status")
    )
    second = Phone(world)  # a new call: its own call id
    menu = second.gather_action(await second.answer())
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and (session.step, session.status) == (
        "language",
        ConversationStatus.ACTIVE,
    )
    assert menu != phone.gather_action(await phone.answer())


async def test_a_turn_the_store_refused_runs_when_retried(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    db = sqlite3.connect(world.settings.store.url.removeprefix("sqlite:///"))
    try:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON sessions "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
        )
        db.commit()
        french = phone.caller.dialect.input_fields("2", "test")
        refused = await phone.caller.post(menu, phone.caller.fields(phone.call) | french)
        assert refused.status_code >= 500
        session = await world.session(SUPPORT, CALLER)
        assert session is not None and session.step == "language"
        db.execute("DROP TRIGGER refuse")
        db.commit()
    finally:
        db.close()
    # Nothing was committed, so the claim was let go: the retry runs the turn.
    await phone.press(menu, "2")
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and (session.step, session.lang) == ("main", "fr")


async def test_other_input_for_an_answered_document_changes_nothing(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    french = await phone.press(menu, "2")
    late = await phone.press(menu, "3")  # German, for a menu the caller already answered
    assert late.content == french.content
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and (session.step, session.lang) == ("main", "fr")


async def test_a_retry_of_a_turn_that_stopped_half_way_hangs_up(world: World) -> None:
    phone = Phone(world)
    menu = phone.gather_action(await phone.answer())
    # The state a server killed between saving a turn and saving its answer leaves behind:
    # the webhook claimed, no answer stored (whether the turn counted is unknown).
    turn = menu.rsplit("turn=", 1)[1]
    store = world.app[RUNTIME].store
    claim = f"voice {world.kind} {phone.call['id']} turn {turn}"
    assert await store.claim_request(claim, "half-way", 0.0) is None
    retried = await phone.press(menu, "2")
    nodes = phone.caller.dialect.parse(retried.content, retried.headers["Content-Type"])
    # Vonage has no hang-up action: its call ends where the NCCO ends.
    assert [node.verb for node in nodes] == ([] if world.kind == "vonage_voice" else ["Hangup"])
    session = await world.session(SUPPORT, CALLER)
    assert session is not None and session.step == "language"  # not run a second time
