"""Vonage Voice: signed-JWT webhooks (tokens made with PyJWT, as Vonage makes them), NCCO
rendering, event parsing and the application JWT of API calls (checked by the simulator)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aiohttp.test_utils import TestServer

from convo.exceptions import ConfigError, MalformedWebhook, ProviderRejected, SignatureError
from convo.models import CallStatus, WebhookRequest
from convo.providers.vonage_voice import VonageVoice
from convo.simulators.vonage_voice import VonageVoiceSimulator
from convo.voice.instructions import Dial, Gather, Hangup, Pause, Record, Redirect, Say
from convo.voice.twiml import RenderError
from tests.providers.keys import RSA_KEY, RSA_PEM

SECRET = "vonage-signature-secret-of-32-bytes-at-least"
PUBLIC = "https://bot.example.com"
LINE, CALLER = "3225550130", "32470123456"


def adapter(client: httpx.AsyncClient | None = None, **options: Any) -> VonageVoice:
    base = {"application_id": "app-1", "private_key": RSA_PEM, "signature_secret": SECRET}
    return VonageVoice.from_config(
        "vonage_voice", base | options, client or httpx.AsyncClient(), public_url=PUBLIC
    )


def webhook(
    route: str, fields: dict[str, Any], *, query: str = "", claims: dict[str, Any] | None = None,
    secret: str = SECRET,
) -> WebhookRequest:  # fmt: skip
    body = json.dumps(fields).encode()
    token_claims = {"iat": int(time.time()), "jti": "j1", "application_id": "app-1",
                    "payload_hash": hashlib.sha256(body).hexdigest()} | (claims or {})  # fmt: skip
    token = jwt.encode(token_claims, secret, algorithm="HS256")
    path = f"/webhooks/vonage_voice/{route}"
    params = dict(part.split("=", 1) for part in query.split("&") if part)
    return WebhookRequest(
        method="POST",
        path=path,
        url=PUBLIC + path + (f"?{query}" if query else ""),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        query=params,
        body=body,
        content_type="application/json",
    )


ANSWER = {"uuid": "leg-1", "conversation_uuid": "CON-1", "from": CALLER, "to": LINE}


def test_a_jwt_signed_as_vonage_signs_is_accepted() -> None:
    assert adapter().verify(webhook("voice/answer", ANSWER)) is True


@pytest.mark.parametrize(
    ("claims", "secret", "message"),
    [
        ({}, "another-secret-of-32-bytes-or-more-yes", "not valid"),
        ({"iat": int(time.time()) - 3600}, SECRET, r"issued \d+s ago; more than 300s"),
        ({"payload_hash": "00" * 32}, SECRET, "payload_hash"),
        ({"application_id": "app-2"}, SECRET, "another application"),
    ],
)
def test_a_wrong_jwt_is_refused(claims: dict[str, Any], secret: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        adapter().verify(webhook("voice/answer", ANSWER, claims=claims, secret=secret))


def test_an_unsigned_webhook_is_refused_while_a_secret_is_set() -> None:
    request = webhook("voice/answer", ANSWER)
    unsigned = WebhookRequest(request.method, request.path, request.url,
                              {"Content-Type": "application/json"}, {}, request.body)  # fmt: skip
    with pytest.raises(SignatureError, match="no Authorization: Bearer JWT"):
        adapter().verify(unsigned)


def test_config_needs_one_readable_rsa_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of private_key"):
        adapter(private_key="")
    with pytest.raises(ConfigError, match="private_key: not an unencrypted PEM"):
        adapter(private_key="-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
    key_file = tmp_path / "app.key"
    key_file.write_text(RSA_PEM)
    assert adapter(private_key="", private_key_path=str(key_file)).application_id == "app-1"
    with pytest.raises(ConfigError, match="signature_secret: missing"):
        adapter(signature_secret="")


def test_events_of_one_call_are_matched_by_its_conversation() -> None:
    vonage = adapter()
    answered = vonage.parse_call(webhook("voice/answer", ANSWER))
    assert (answered.line, answered.caller, answered.direction) == (f"+{LINE}", f"+{CALLER}",
                                                                    "inbound")  # fmt: skip
    dtmf = {"dtmf": {"digits": "12", "timed_out": False}} | ANSWER
    assert vonage.parse_call(webhook("voice/input", dtmf, query="after=gather")).digits == "12"
    speech = ANSWER | {"speech": {"results": [{"text": "ja graag", "confidence": "0.8"}]}}
    heard = vonage.parse_call(webhook("voice/input", speech, query="after=gather"))
    assert (heard.speech, heard.confidence, heard.digits) == ("ja graag", 0.8, None)
    recording = {"conversation_uuid": "CON-1", "recording_url": "https://api.nexmo.com/v1/r",
                 "start_time": "2026-01-01T10:00:00Z",
                 "end_time": "2026-01-01T10:00:07Z"}  # fmt: skip
    recorded = vonage.parse_call(webhook("voice/input", recording, query="after=record"))
    assert (recorded.caller, recorded.recording_duration) == (f"+{CALLER}", 7.0)
    leg = {"uuid": "leg-2", "conversation_uuid": "CON-1", "from": LINE, "to": "3225550100",
           "status": "busy", "direction": "outbound"}  # fmt: skip
    dialled = vonage.parse_call(webhook("voice/input", leg, query="after=dial"))
    assert (dialled.caller, dialled.dial_status) == (f"+{CALLER}", CallStatus.BUSY)
    agent_gone = leg | {"status": "completed", "duration": "30"}  # to the app's event URL
    assert vonage.parse_call(webhook("voice/status", agent_gone)).status is CallStatus.IN_PROGRESS
    ended = ANSWER | {"status": "completed", "direction": "inbound", "duration": "42"}
    finished = vonage.parse_call(webhook("voice/status", ended))
    assert (finished.status, finished.duration) == (CallStatus.COMPLETED, 42.0)


def test_an_outbound_answer_puts_our_line_in_from() -> None:
    outbound = {"uuid": "leg-9", "conversation_uuid": "CON-9", "from": LINE, "to": CALLER}
    event = adapter().parse_call(webhook("voice/answer", outbound, query="direction=outbound"))
    assert (event.line, event.caller, event.direction) == (f"+{LINE}", f"+{CALLER}", "outbound")


@pytest.mark.parametrize(
    ("fields", "query", "message"),
    [
        ({"conversation_uuid": "CON-X", "recording_url": "https://x/r"}, "after=record",
         "does not know"),
        (ANSWER | {"conversation_uuid": "CON-Y", "status": "exploded", "direction": "inbound"},
         "", "'status'"),
        (ANSWER | {"conversation_uuid": "CON-Z", "from": "not a number", "direction": "inbound"},
         "", "'from'"),
        (ANSWER | {"conversation_uuid": "CON-W"}, "", "'direction'"),
        ({"uuid": "u"}, "", "'conversation_uuid'"),
    ],
)  # fmt: skip
def test_malformed_events_name_what_is_wrong(
    fields: dict[str, Any], query: str, message: str
) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        adapter().parse_call(webhook("voice/status", fields, query=query))


def test_ncco_of_a_menu_with_a_fallback_locale() -> None:
    body, ctype = adapter().render(
        [
            Say("Bonjour", "fr-BE", voice="2"),
            Gather(input=frozenset({"dtmf", "speech"}), num_digits=1, finish_on_key="",
                   speech_language="nl-BE", hints=("ja", "nee"),
                   prompts=(Say("Druk 1", "nl-BE"), Pause(12))),
            Redirect(f"{PUBLIC}/webhooks/vonage_voice/voice/input?after=gather"),
            Hangup(),
            Say("never said"),
        ]
    )  # fmt: skip
    assert ctype == "application/json"
    assert json.loads(body) == [
        {"action": "talk", "text": "Bonjour", "language": "fr-FR", "style": 2},
        {"action": "talk", "text": "Druk 1", "language": "nl-NL", "bargeIn": True},
        {"action": "talk", "text": '<speak><break time="10s"/><break time="2s"/></speak>'},
        {"action": "input", "type": ["dtmf", "speech"],
         "eventUrl": [f"{PUBLIC}/webhooks/vonage_voice/voice/input"], "eventMethod": "POST",
         "dtmf": {"maxDigits": 1, "submitOnHash": False, "timeOut": 5},
         "speech": {"startTimeout": 5, "language": "nl-NL", "context": ["ja", "nee"]}},
    ]  # fmt: skip


def test_ncco_of_record_dial_and_what_vonage_cannot_do() -> None:
    vonage = adapter()
    record, dial = json.loads(
        vonage.render([Record(max_length=60, action="https://b/r"),
                       Dial("+3225550100", caller_id="+3225550130", timeout=20,
                            action="https://b/d")])[0]
    )  # fmt: skip
    assert record == {"action": "record", "timeOut": 60, "endOnSilence": 5,
                      "beepStart": True, "eventUrl": ["https://b/r"], "eventMethod": "POST",
                      "endOnKey": "#"}  # fmt: skip
    assert dial["endpoint"] == [{"type": "phone", "number": "3225550100"}]
    assert (dial["from"], dial["timeout"], dial["eventType"]) == ("3225550130", 20, "synchronous")
    with pytest.raises(RenderError, match="on # only"):
        vonage.render([Gather(finish_on_key="*")])
    with pytest.raises(RenderError, match=r"timeout of 30 s is outside 1\.\.10"):
        vonage.render([Gather(timeout=30)])
    with pytest.raises(RenderError, match="no supported locale for 'xx-XX'"):
        vonage.render([Say("?", "xx-XX")])


@pytest.fixture
async def sim() -> AsyncIterator[tuple[VonageVoiceSimulator, str]]:
    simulator = VonageVoiceSimulator(application_id="app-1", public_key=RSA_KEY.public_key())
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield simulator, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_api_calls_carry_the_applications_rs256_jwt(
    sim: tuple[VonageVoiceSimulator, str],
) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        vonage = adapter(client, base_url=url)
        token = jwt.decode(vonage.api_token(), RSA_KEY.public_key(), algorithms=["RS256"])
        assert token["application_id"] == "app-1" and token["exp"] > token["iat"]
        other = adapter(client, base_url=url, application_id="app-2")
        with pytest.raises(ProviderRejected, match="401"):
            await other.start_call(to="+32470123456", line="+3225550130")
        assert simulator.sent == []
