"""Telefoon Voice adapter, pure parts: config, signatures, webhook parsing, rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from convo.exceptions import ConfigError, MalformedWebhook, SignatureError
from convo.models import CallStatus, WebhookRequest
from convo.providers.base import VoiceProvider
from convo.providers.registry import create_provider
from convo.providers.telefoon_voice import TelefoonVoice
from convo.providers.telefoon_voice_webhook import sign
from convo.voice.instructions import Dial, Gather, Say
from convo.voice.twiml import RenderError, parse_document

SECRET = "whsec-telefoon-0123"
PUBLIC = "https://bot.example.com"
FORM = "application/x-www-form-urlencoded"
# What we assume Telefoon Voice posts when a call is answered / a gather finishes.
ANSWER = {
    "call_id": "CA7f3e2a",
    "from": "+32470123456",
    "to": "+3225550100",
    "direction": "inbound",
    "status": "in-progress",
}


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"pure adapter code made a request: {request.url}")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # A transport that refuses: webhook parsing and rendering must do no I/O.
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as c:
        yield c


def adapter(client: httpx.AsyncClient, **options: Any) -> TelefoonVoice:
    opts = {"api_key": "key-123", "webhook_secret": SECRET, **options}
    return TelefoonVoice.from_config("telefoon_voice", opts, client, public_url=PUBLIC)


def webhook(
    fields: Mapping[str, str] | None = None,
    *,
    secret: str | None = SECRET,
    body: bytes | None = None,
    ctype: str = FORM,
    parse_form: bool = True,
) -> WebhookRequest:
    raw = body if body is not None else urlencode(fields or {}).encode()
    headers = {"Content-Type": ctype}
    if secret is not None:
        headers["X-Signature"] = sign(secret, raw)
    return WebhookRequest(
        method="POST",
        path="/webhooks/telefoon_voice/voice/answer",
        url=f"{PUBLIC}/webhooks/telefoon_voice/voice/answer",
        headers=headers,
        query={},
        body=raw,
        content_type=ctype,
        form=dict(fields or {}) if parse_form and fields is not None else {},
    )


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"webhook_secret": SECRET}, r"\[providers.tv\] api_key: missing"),
        ({"api_key": "k"}, r"\[providers.tv\] webhook_secret: missing"),
        ({"api_key": "k", "allow_unsigned": "yes"}, r"allow_unsigned: expected true or false"),
        ({"api_key": "k", "allow_unsigned": True, "format": "yaml"}, r"format: expected"),
        ({"api_key": "k", "allow_unsigned": True, "base_url": "ftp://x"}, r"base_url"),
        ({"api_key": "k", "allow_unsigned": True, "supported_languages": "nl-NL"}, "list"),
        ({"api_key": "k", "allow_unsigned": True, "locale_fallbacks": {"fr-FR": "fr-BE"}}, "list"),
        ({"api_key": "k", "allow_unsigned": True, "rate_limit": 0}, "greater than 0"),
        ({"api_key": "k", "allow_unsigned": True, "apikey": "k"}, r"apikey: unknown option"),
        # A value of the wrong type is named by its key, never echoed (it may be a secret).
        ({"api_key": 12345678, "allow_unsigned": True}, r"api_key: expected a string, got int$"),
    ],
)
def test_bad_config_names_the_key(
    client: httpx.AsyncClient, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TelefoonVoice.from_config("tv", options, client)


def test_config_defaults_and_no_secret_in_repr(client: httpx.AsyncClient) -> None:
    options = {"api_key": "key-123", "webhook_secret": SECRET, "type": "telefoon_voice"}
    tv = create_provider("telefoon_voice", options, client, public_url=PUBLIC)
    assert isinstance(tv, TelefoonVoice)
    assert isinstance(tv, VoiceProvider)
    assert tv.base_url == "https://api.telefoon.com/v1/voice"
    assert tv.document_format == "xml"
    assert tv.supported_languages == ("nl-NL", "fr-BE", "de-DE", "en-GB")
    assert "key-123" not in repr(tv) and SECRET not in repr(tv)
    assert tv.webhook_url("input") == f"{PUBLIC}/webhooks/telefoon_voice/voice/input"


# -- signatures -----------------------------------------------------------------------------


def test_good_signature_passes(client: httpx.AsyncClient) -> None:
    adapter(client).verify(webhook(ANSWER))


def test_signature_is_case_insensitive_hex(client: httpx.AsyncClient) -> None:
    raw = urlencode(ANSWER).encode()
    upper = WebhookRequest(
        method="POST",
        path="/webhooks/telefoon_voice/voice/answer",
        url=f"{PUBLIC}/webhooks/telefoon_voice/voice/answer",
        headers={"x-signature": sign(SECRET, raw).upper()},
        query={},
        body=raw,
        content_type=FORM,
    )
    adapter(client).verify(upper)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (webhook(ANSWER, secret="wrong-secret"), "does not match"),
        (webhook(ANSWER, secret=None), "no X-Signature header"),
    ],
)
def test_bad_signatures_are_refused(
    client: httpx.AsyncClient, request_: WebhookRequest, message: str
) -> None:
    with pytest.raises(SignatureError, match=message) as info:
        adapter(client).verify(request_)
    assert SECRET not in str(info.value)


def test_tampered_body_is_refused(client: httpx.AsyncClient) -> None:
    good = webhook(ANSWER)
    tampered_body = good.body.replace(b"%2B32470123456", b"%2B32470999999")
    assert tampered_body != good.body
    tampered = WebhookRequest(
        method="POST",
        path=good.path,
        url=good.url,
        headers=good.headers,
        query={},
        body=tampered_body,
        content_type=FORM,
    )
    with pytest.raises(SignatureError):
        adapter(client).verify(tampered)


def test_non_ascii_signature_is_refused_not_crashing(client: httpx.AsyncClient) -> None:
    request = webhook(ANSWER, secret=None)
    odd = WebhookRequest(
        method="POST",
        path=request.path,
        url=request.url,
        headers={"X-Signature": "é" * 64},
        query={},
        body=request.body,
    )
    with pytest.raises(SignatureError):
        adapter(client).verify(odd)


def test_allow_unsigned(client: httpx.AsyncClient) -> None:
    open_tv = TelefoonVoice.from_config(
        "tv", {"api_key": "k", "allow_unsigned": True}, client, public_url=PUBLIC
    )
    assert open_tv.verify(webhook(ANSWER, secret=None)) is False  # no secret: let in
    signed_tv = adapter(client, allow_unsigned=True)
    # with a webhook_secret the signature is required, whatever allow_unsigned says
    with pytest.raises(SignatureError, match="no X-Signature header"):
        signed_tv.verify(webhook(ANSWER, secret=None))
    assert signed_tv.verify(webhook(ANSWER)) is True
    with pytest.raises(SignatureError):  # a wrong signature is never accepted
        signed_tv.verify(webhook(ANSWER, secret="forged"))


# -- parsing ----------------------------------------------------------------------------------


def test_parse_answer(client: httpx.AsyncClient) -> None:
    event = adapter(client).parse_call(webhook(ANSWER))
    assert event.provider == "telefoon_voice"
    assert event.call_id == "CA7f3e2a"
    assert event.line == "+3225550100"
    assert event.caller == "+32470123456"
    assert event.direction == "inbound"
    assert event.status is CallStatus.IN_PROGRESS
    assert (event.digits, event.speech, event.recording_url) == (None, None, None)


def test_parse_outbound_swaps_line_and_caller(client: httpx.AsyncClient) -> None:
    fields = {**ANSWER, "from": "+3225550100", "to": "+32470123456", "direction": "outbound"}
    event = adapter(client).parse_call(webhook(fields))
    assert (event.line, event.caller, event.direction) == (
        "+3225550100",
        "+32470123456",
        "outbound",
    )


def test_parse_inputs_from_raw_body(client: httpx.AsyncClient) -> None:
    tv = adapter(client)
    digits = tv.parse_call(webhook({**ANSWER, "digits": "12#"}, parse_form=False))
    assert digits.digits == "12#"
    speech = tv.parse_call(
        webhook({**ANSWER, "speech_result": "</Say><Dial>+900123</Dial>", "confidence": "0.87"})
    )
    assert speech.speech == "</Say><Dial>+900123</Dial>"
    assert speech.confidence == pytest.approx(0.87)
    rec = tv.parse_call(
        webhook(
            {
                **ANSWER,
                "recording_url": "https://rec.telefoon.com/r/1.wav",
                "recording_duration": "12",
            }
        )
    )
    assert rec.recording_url == "https://rec.telefoon.com/r/1.wav"
    assert rec.recording_duration == 12.0
    done = tv.parse_call(webhook({**ANSWER, "status": "completed", "duration": "47"}))
    assert done.status is CallStatus.COMPLETED
    assert done.duration == 47.0


@pytest.mark.parametrize("status", ["queued", "ringing", "busy", "no-answer", "canceled", "failed"])
def test_every_document_status_maps(client: httpx.AsyncClient, status: str) -> None:
    event = adapter(client).parse_call(webhook({**ANSWER, "status": status}))
    assert event.status.value == status


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (webhook(body=b'{"call_id": "x"}', ctype="application/json"), "expected a form body"),
        (webhook(body=b"call_id=\xff\xfe", parse_form=False), "not UTF-8"),
        (webhook({k: v for k, v in ANSWER.items() if k != "call_id"}), "'call_id' is missing"),
        (webhook({**ANSWER, "from": ""}), "'from' is missing"),
        (webhook({**ANSWER, "direction": "sideways"}), "'direction' must be inbound"),
        (webhook({**ANSWER, "status": "answered"}), "'status' must be one of"),
        (webhook({**ANSWER, "from": "anonymous"}), "'from' is not an E.164 number"),
        (webhook({**ANSWER, "digits": "12a"}), "'digits' has keys other than"),
        (webhook({**ANSWER, "confidence": "high"}), "'confidence' is not a number"),
        (webhook({**ANSWER, "confidence": "1.5"}), "'confidence' must be 0..1.0"),
        (webhook({**ANSWER, "recording_duration": "-3"}), "'recording_duration' must be >= 0"),
    ],
)
def test_malformed_webhooks(
    client: httpx.AsyncClient, request_: WebhookRequest, message: str
) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        adapter(client).parse_call(request_)


def test_sip_caller_is_kept(client: httpx.AsyncClient) -> None:
    event = adapter(client).parse_call(webhook({**ANSWER, "from": "sip:alice@pbx.example.com"}))
    assert event.caller == "sip:alice@pbx.example.com"


# -- rendering ----------------------------------------------------------------------------------


def test_render_applies_fallback_fills_actions_and_escapes(client: httpx.AsyncClient) -> None:
    tv = adapter(client)
    said = "</Say><Dial>+900123</Dial>"
    instructions = [
        Say(f"Vous avez dit: {said}", language="fr-FR"),
        Gather(num_digits=1, prompts=(Say("Tapez 1", language="fr-FR"),)),
    ]
    prepared = tv.prepare(instructions)
    assert prepared[0] == Say(
        f"Vous avez dit: {said}", language="fr-BE", requested_language="fr-FR"
    )
    body, ctype = tv.render(instructions)
    assert ctype.startswith("application/xml")
    nodes = parse_document(body, ctype)
    assert [n.verb for n in nodes] == ["Say", "Gather"]
    assert nodes[0].text == f"Vous avez dit: {said}"
    assert nodes[0].get("language") == "fr-BE"
    assert nodes[1].get("action") == f"{PUBLIC}/webhooks/telefoon_voice/voice/input"
    assert nodes[1].children[0].get("language") == "fr-BE"


def test_render_json_form(client: httpx.AsyncClient) -> None:
    body, ctype = adapter(client, format="json").render([Say("Hallo", language="nl-BE")])
    assert ctype == "application/json"
    assert body == b'[{"verb": "Say", "language": "nl-NL", "text": "Hallo"}]'


def test_provider_fallbacks_and_render_errors(client: httpx.AsyncClient) -> None:
    tv = adapter(client, locale_fallbacks={"lb-LU": ["de-DE"]})
    assert tv.prepare([Say("Moien", language="lb-LU")])[0] == Say(
        "Moien", language="de-DE", requested_language="lb-LU"
    )
    with pytest.raises(RenderError, match=r"instruction 0 \(Say\): no supported locale"):
        tv.render([Say("Hola", language="es-ES")])
    with pytest.raises(RenderError, match=r"instruction 1 \(Dial\): Dial target"):
        tv.render([Say("Even geduld"), Dial("kantoor")])
    with pytest.raises(RenderError, match="instruction 0: expected one of"):
        tv.render(["<Hangup/>"])
