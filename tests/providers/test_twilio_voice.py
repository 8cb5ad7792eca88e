"""Twilio Voice: call webhooks (signed as Twilio's RequestValidator signs), TwiML answers,
and the Calls resource through the simulator."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from convo.exceptions import MalformedWebhook, ProviderRejected, ProviderUnavailable
from convo.models import CallStatus, WebhookRequest
from convo.providers.twilio_voice import TwilioVoice
from convo.simulators.twilio_voice import TwilioVoiceSimulator
from convo.voice.instructions import Gather, Say

ACCOUNT, TOKEN = "AC" + "b" * 32, "voice-token"
PUBLIC = "https://bot.example.com"
LINE, CALLER = "+3225550126", "+32470123456"


def adapter(client: httpx.AsyncClient | None = None, **options: Any) -> TwilioVoice:
    base = {"account_sid": ACCOUNT, "auth_token": TOKEN}
    return TwilioVoice.from_config(
        "twilio_voice", base | options, client or httpx.AsyncClient(), public_url=PUBLIC
    )


def webhook(fields: dict[str, str], route: str = "voice/input?after=gather") -> WebhookRequest:
    url = f"{PUBLIC}/webhooks/twilio_voice/{route}"
    return WebhookRequest(
        method="POST",
        path=f"/webhooks/twilio_voice/{route.split('?')[0]}",
        url=url,
        headers={"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, fields)},
        query={},
        body=urlencode(fields).encode(),
        content_type="application/x-www-form-urlencoded",
        form=fields,
    )


CALL = {"CallSid": "CA1", "AccountSid": ACCOUNT, "From": CALLER, "To": LINE,
        "CallStatus": "in-progress", "Direction": "inbound"}  # fmt: skip


def test_a_gather_result_signed_by_twilio() -> None:
    request = webhook(CALL | {"Digits": "42#", "SpeechResult": "ja", "Confidence": "0.93"})
    twilio = adapter()
    assert twilio.verify(request) is True
    event = twilio.parse_call(request)
    assert (event.line, event.caller, event.direction) == (LINE, CALLER, "inbound")
    assert (event.digits, event.speech, event.confidence) == ("42#", "ja", 0.93)


def test_an_outbound_call_has_our_line_in_from() -> None:
    fields = CALL | {"From": LINE, "To": CALLER, "Direction": "outbound-api"}
    event = adapter().parse_call(webhook(fields, "voice/answer"))
    assert (event.line, event.caller, event.direction) == (LINE, CALLER, "outbound")


def test_dial_and_record_results() -> None:
    dialled = adapter().parse_call(webhook(CALL | {"DialCallStatus": "answered"}))
    assert dialled.dial_status is CallStatus.COMPLETED
    busy = adapter().parse_call(webhook(CALL | {"DialCallStatus": "busy"}))
    assert busy.dial_status is CallStatus.BUSY
    fields = CALL | {"RecordingUrl": "https://api.twilio.com/r/RE1", "RecordingDuration": "7",
                     "Digits": "hangup"}  # fmt: skip
    recorded = adapter().parse_call(webhook(fields))
    assert (recorded.recording_url, recorded.recording_duration, recorded.digits) == (
        "https://api.twilio.com/r/RE1",
        7.0,
        None,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [({"CallSid": ""}, "CallSid"), ({"Direction": "sideways"}, "Direction"),
     ({"CallStatus": "on-hold"}, "CallStatus"), ({"Digits": "12a"}, "Digits"),
     ({"Confidence": "2"}, "Confidence"), ({"RecordingUrl": "ftp://x"}, "RecordingUrl")],
)  # fmt: skip
def test_malformed_call_webhooks_name_the_field(change: dict[str, str], field: str) -> None:
    with pytest.raises(MalformedWebhook, match=f"'{field}'"):
        adapter().parse_call(webhook(CALL | change))


def test_twiml_with_language_voice_and_escaped_text() -> None:
    body, ctype = adapter().render(
        [Gather(input=frozenset({"dtmf", "speech"}), num_digits=1, speech_language="nl-BE",
                prompts=(Say("Zeg </Say><Hangup/> & ja", "nl-BE", voice="Polly.Lotte"),))]
    )  # fmt: skip
    assert ctype.startswith("application/xml")
    gather = ET.fromstring(body).find("Gather")
    assert gather is not None
    assert (gather.get("input"), gather.get("language"), gather.get("numDigits")) == (
        "dtmf speech",
        "nl-BE",
        "1",
    )
    assert gather.get("action") == f"{PUBLIC}/webhooks/twilio_voice/voice/input"
    say = gather.find("Say")
    assert say is not None and say.text == "Zeg </Say><Hangup/> & ja"
    assert (say.get("language"), say.get("voice")) == ("nl-BE", "Polly.Lotte")
    assert ET.fromstring(body).find(".//Hangup") is None


@pytest.fixture
async def sim() -> AsyncIterator[tuple[TwilioVoiceSimulator, str]]:
    simulator = TwilioVoiceSimulator(account_sid=ACCOUNT, auth_token=TOKEN)
    server = TestServer(simulator.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield simulator, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_calls_resource_errors_and_hanging_up(
    sim: tuple[TwilioVoiceSimulator, str],
) -> None:
    simulator, url = sim
    async with httpx.AsyncClient() as client:
        twilio = adapter(client, base_url=url)
        with pytest.raises(ProviderRejected, match="21211") as bad:
            await twilio.start_call(to="0470", line=LINE)
        assert bad.value.code == "21211"
        simulator.fail_next(503, 20503)
        with pytest.raises(ProviderUnavailable):
            await twilio.start_call(to=CALLER, line=LINE)
        simulator.webhook_base = "http://127.0.0.1:9"  # nobody answers: the call fails
        sid = await twilio.start_call(to=CALLER, line=LINE, ring_timeout=20)
        [request] = simulator.sent
        assert (request["To"], request["From"], request["Timeout"]) == (CALLER, LINE, "20")
        assert request["Url"] == f"{PUBLIC}/webhooks/twilio_voice/voice/answer"
        assert request["StatusCallbackEvent"] == "initiated ringing answered completed"
        await simulator.drain()
        await twilio.end_call(sid)
        assert simulator.calls[sid]["status"] in ("completed", "canceled")
        with pytest.raises(ProviderRejected, match="20404"):
            await twilio.end_call("CA" + "0" * 32)
