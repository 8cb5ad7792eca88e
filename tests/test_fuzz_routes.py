"""Property-based fuzzing of every route: no input makes the server answer 500 or hang.

Two real apps over real SQLite files, one per signing mode: *open* (no secrets,
``allow_unsigned``) and *signed* (every provider has a secret; a generated request is
signed correctly half of the time, so the parsers behind the check are reached too). Every
provider kind of the registry is configured, with a line each; outbound sends go to a
closed loopback port.

Requests are drawn by hypothesis: a method (the route's own, or another), a path from the
app's router (``{provider}`` filled with every configured provider and an unknown one,
``{number}`` with arbitrary text), a query (provider field names with values such as
Unicode digits, huge numbers and percent-encoded junk), headers (content types, bearer
tokens right and wrong, signatures) and a body (random bytes, JSON of random shapes with
huge integers, deep nesting and lone surrogates, provider-shaped JSON and form bodies).
Every answer must be below 500 and arrive within :data:`REQUEST_TIMEOUT`.

Reproducible: ``derandomize=True`` and no example database, so every run draws the same
requests. :data:`EXAMPLES` requests run in about 25 s on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator
from yarl import URL

from convo.config import parse_settings
from convo.providers.registry import kinds, provider_kind
from convo.providers.vonage_webhooks import signature
from convo.web.app import create_app
from tests.providers.keys import RSA_PEM

ROOT = Path(__file__).parent
EXAMPLES = 2400
REQUEST_TIMEOUT = 10.0
TOKEN, SECRET = "fuzz-token", "fuzz-secret-of-32-bytes-for-hs256-keys"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, sends fail at once
LINES = {
    "sandbox": "+32460000101", "vonage": "+3225550121", "telefoon_sms": "+3225550122",
    "telefonie_sms": "+3225550123", "enco": "8937", "telefoon_voice": "+3225550124",
    "twilio": "+3225550125", "twilio_voice": "+3225550126", "vonage_voice": "+3225550127",
    "sandbox_voice": "+3225550128",
}  # fmt: skip
VOICE = ("telefoon_voice", "twilio_voice", "vonage_voice", "sandbox_voice")
TWILIO_ACCOUNT = "AC" + "f" * 32
PHONE = "+32470000001"
FIELDS = [
    # Vonage inbound and receipts
    "msisdn", "to", "text", "type", "messageId", "message-timestamp", "timestamp", "sig",
    "concat", "concat-ref", "concat-part", "concat-total", "status", "price", "err-code",
    "client-ref", "nonce",
    # Telefoon family and the sandbox
    "id", "from", "direction", "body", "error_code", "error_message", "price_unit",
    "num_media", "media_url",
    # voice
    "call_id", "digits", "speech_result", "confidence", "recording_url",
    "recording_duration", "duration", "dial_status", "after",
    # Twilio and Vonage Voice
    "MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MessageStatus", "ErrorCode",
    "CallSid", "CallStatus", "Direction", "Digits", "SpeechResult", "Confidence",
    "RecordingUrl", "RecordingDuration", "DialCallStatus", "CallDuration", "uuid",
    "conversation_uuid", "dtmf", "speech", "start_time", "end_time",
    # Enco and the admin API
    "ref", "token", "deliveryInfo", "resourceURL", "number", "page", "page_size",
    "line", "params", "lang",
]  # fmt: skip
#: Values that break naive parsers: Unicode digits, numbers beyond 64 bits or floats,
#: lone surrogates (JSON can spell them), empty, NUL.
HOSTILE = ["²", "١٢", "\ud800", "a\udfff b", str(10**20), "9" * 30, "1e999", "nan", "-1",
           "", "\x00"]  # fmt: skip
#: Values a field of some provider legitimately holds, so a spoiled field meets others.
PLAUSIBLE = ["0", "1", "1_0", " 5 ", "true", "binary", "delivered", "received", "inbound",
             "outbound", "in-progress", "completed", PHONE, PHONE[1:], "sip:x@y", "\ufffd",
             "2026-01-01 00:00:00", "gather", "record", "dial", "en"]  # fmt: skip


def options(kind: str, signed: bool) -> dict[str, Any]:
    """A provider section of ``kind``: with a secret when ``signed``, else allow_unsigned."""
    secret = {"webhook_secret": SECRET} if signed else {"allow_unsigned": True}
    if kind in ("sandbox", "sandbox_voice"):
        return secret if signed else {}
    if kind == "vonage":
        vonage = {"signature_secret": SECRET} if signed else {"allow_unsigned": True}
        return {"api_key": "k", "api_secret": "s", "base_url": CLOSED, "sign_requests": False,
                **vonage}  # fmt: skip
    if kind == "enco":
        return {"client_id": "c", "client_secret": "cs", "shared": True, "token_url": CLOSED,
                "base_url": CLOSED, "poll_interval": 3600, "callback_secret": SECRET}  # fmt: skip
    if kind in ("twilio", "twilio_voice"):
        token = {"auth_token": SECRET} if signed else {"allow_unsigned": True}
        key = {} if signed else {"api_key_sid": "SK1", "api_key_secret": "ks"}
        return {"account_sid": TWILIO_ACCOUNT, "base_url": CLOSED, **token, **key}
    if kind == "vonage_voice":
        jwt_secret = {"signature_secret": SECRET} if signed else {"allow_unsigned": True}
        return {"application_id": "app", "private_key": RSA_PEM, "base_url": CLOSED,
                **jwt_secret}  # fmt: skip
    return {"api_key": "k", "base_url": CLOSED, **secret}


def fuzz_settings(tmp_path: Path, signed: bool) -> Any:
    assert sorted(LINES) == kinds(), "a new provider kind needs a line here"
    lines = [
        {"number": number, "provider": kind, "flow": "greet", "channels": ["sms"]}
        if kind not in VOICE
        else {"number": number, "provider": kind, "flow": "voice_echo", "channels": ["voice"]}
        for kind, number in LINES.items()
    ]
    doc = {
        "server": {"api_token": TOKEN, "shutdown_timeout": 2, "public_url": "http://fuzz.test"},
        "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
        "flows": {"paths": [str(ROOT / "web/data"), str(ROOT / "e2e/data/voice_echo.yaml")]},
        "lines": lines,
        "providers": {kind: options(kind, signed) for kind in LINES},
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        "outbox": {"sweep_interval": 60, "base_delay": 30, "max_delay": 60},
    }
    return parse_settings(doc, source=f"fuzz-{signed}.toml", env={})


# -- what a request is made of -----------------------------------------------------------------


@dataclass(frozen=True)
class Fuzz:
    signed_app: bool
    sign: bool  # in the signed app: sign it right
    method: str
    template: str  # the router's path, e.g. /webhooks/{provider}/inbound
    provider: str
    number: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes


texts = st.text(max_size=40)
values = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(PLAUSIBLE), texts)
json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from([10**400, 2**64]),
    st.text(max_size=20), st.sampled_from(HOSTILE), st.sampled_from(PLAUSIBLE),
)  # fmt: skip
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=6),
    ),
    max_leaves=20,
)
shaped = st.dictionaries(st.sampled_from(FIELDS), st.one_of(values, json_values), max_size=10)


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth if depth % 2 else b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=10).map(
        lambda v: urlencode(v, errors="surrogatepass").encode()
    ),
    st.integers(1, 3000).map(nested),
    st.just(b""),
)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "x/y",
     "application/json; charset=latin-1", "multipart/form-data; boundary=x", "application/json;;"]
)  # fmt: skip
header_texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


def base_fields(template: str, kind: str) -> tuple[dict[str, Any], str]:
    """A well-formed request of ``kind`` to ``template`` (fields, and how they travel:
    ``json``, ``form`` or ``query``), which the fuzzer then spoils."""
    line = LINES.get(kind, PHONE)
    if template.startswith("/api/") or template == "/healthz":
        return {"page": "1", "page_size": "50", "direction": "inbound", "status": "received",
                "number": PHONE}, "query"  # fmt: skip
    if template == "/sandbox/conversations":
        return {"line": LINES["sandbox"], "to": PHONE, "params": {}, "lang": "en"}, "json"
    if template.startswith("/sandbox/"):
        return {"from": PHONE, "to": LINES["sandbox"], "text": "hi", "number": PHONE}, "json"
    if "/voice/" in template and kind == "twilio_voice":
        return {"CallSid": "CA1", "From": PHONE, "To": line, "Direction": "inbound",
                "CallStatus": "in-progress", "Digits": "1", "SpeechResult": "yes",
                "Confidence": "0.9", "DialCallStatus": "busy",
                "RecordingUrl": "https://x/r.wav", "RecordingDuration": "4"}, "form"  # fmt: skip
    if "/voice/" in template and kind == "vonage_voice":
        return {"uuid": "u1", "conversation_uuid": "c1", "from": PHONE[1:], "to": line[1:],
                "direction": "inbound", "status": "answered",
                "dtmf": {"digits": "1", "timed_out": False},
                "speech": {"results": [{"text": "yes", "confidence": "0.9"}]},
                "recording_url": "https://x/r.mp3", "start_time": "2026-01-01T10:00:00Z",
                "end_time": "2026-01-01T10:00:04Z"}, "json"  # fmt: skip
    if "/voice/" in template:
        voice_line = LINES[kind] if kind in VOICE else LINES["telefoon_voice"]
        return {"call_id": "c1", "from": PHONE, "to": voice_line,
                "direction": "inbound", "status": "in-progress", "digits": "1",
                "speech_result": "yes", "confidence": "0.9", "duration": "3"}, "form"  # fmt: skip
    inbound = template.endswith("/inbound")
    if kind == "vonage":
        if inbound:
            return {"msisdn": PHONE[1:], "to": line[1:], "text": "hi", "type": "text",
                    "messageId": "v1", "message-timestamp": "2026-01-01 10:00:00",
                    "concat": "true", "concat-ref": "9", "concat-part": "1",
                    "concat-total": "2"}, "query"  # fmt: skip
        return {"messageId": "v1", "status": "delivered", "price": "0.03", "err-code": "0",
                "client-ref": "x"}, "query"  # fmt: skip
    if kind == "enco":
        return {"resourceURL": "https://x/deliveryinfos/d1",
                "deliveryInfo": [{"address": "tel:" + PHONE,
                                  "deliveryStatus": "DeliveredToTerminal"}]}, "json"  # fmt: skip
    if kind == "twilio":
        if inbound:
            return {"MessageSid": "SM1", "From": PHONE, "To": line, "Body": "hi",
                    "NumMedia": "1", "MediaUrl0": "https://x/y.png"}, "form"  # fmt: skip
        return {"MessageSid": "SM1", "MessageStatus": "delivered", "ErrorCode": "30003"}, "form"
    if kind == "sandbox":
        if inbound:
            return {"id": "s1", "from": PHONE, "to": line, "text": "hi"}, "json"
        return {"id": "s1", "status": "delivered", "client_ref": "x"}, "json"
    if inbound:  # the Telefoon family
        return {"id": "t1", "status": "received", "direction": "inbound", "from": PHONE,
                "to": line, "body": "hi", "num_media": 1,
                "media_url": ["https://x/y.png"]}, "json"  # fmt: skip
    return {"id": "t1", "status": "delivered", "direction": "outbound", "from": line,
            "to": PHONE, "price": "0.07", "price_unit": "EUR"}, "json"  # fmt: skip


def encoded(fields: dict[str, Any], how: str) -> tuple[bytes, str, list[tuple[str, str]]]:
    """Body, content type and query of ``fields`` sent ``how``."""
    if how == "json":
        return json.dumps(fields).encode(), "application/json", []
    flat = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()]
    if how == "form":
        # a lone surrogate goes out as the bytes UTF-8 would have (invalid UTF-8)
        form = urlencode(flat, errors="surrogatepass")
        return form.encode(), "application/x-www-form-urlencoded", []
    return b"", "", flat


def provider_for(template: str) -> st.SearchStrategy[str]:
    """Mostly a provider that serves the route, now and then any (or none)."""
    if "/voice/" in template:
        served = list(VOICE)
    elif template.endswith("/status"):
        served = [kind for kind in LINES if kind not in VOICE]
    else:
        served = [kind for kind in LINES if kind not in (*VOICE, "enco")]
    return st.one_of(*[st.just(kind) for kind in served], st.sampled_from([*LINES, "nope"]))


@st.composite
def requests(draw: st.DrawFn, routes: list[tuple[str, str]]) -> Fuzz:
    method, template = draw(st.sampled_from(routes))
    if draw(st.integers(0, 7)) == 0:  # now and then a method the route does not take
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    provider = draw(provider_for(template))
    query: list[tuple[str, str]] = []
    if draw(st.integers(0, 4)):  # mostly a well-formed request with a field or two spoiled
        fields, how = base_fields(template, provider_kind(provider, None))
        for key in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2)):
            if draw(st.integers(0, 5)) == 0:
                fields.pop(key, None)
            else:
                fields[key] = draw(st.one_of(values, values, json_values))
        fields |= draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=1))
        how = draw(st.sampled_from([how] * 5 + ["json", "form", "query"]))
        body, ctype, query = encoded(fields, how)
        if how == "query" and method == "POST" and draw(st.booleans()):
            body, ctype, query = encoded(fields, "form")
        if how == "json" and draw(st.integers(0, 9)) == 0:
            body = nested(draw(st.integers(1, 3000)))
    else:
        body, ctype = draw(bodies), draw(content_types)
        query = draw(st.lists(st.tuples(st.sampled_from(FIELDS), values), max_size=4))
    if draw(st.integers(0, 7)) == 0:
        ctype = draw(content_types)
    headers = [("Content-Type", ctype)] if ctype else []
    auth = draw(st.sampled_from([f"Bearer {TOKEN}"] * 3 + ["", "Bearer x", "Basic"]))
    if auth:
        headers.append(("Authorization", auth))
    headers += draw(
        st.lists(st.tuples(st.sampled_from(["X-Signature", "X-Other", "Host"]), header_texts),
                 max_size=1)
    )  # fmt: skip
    number = draw(st.one_of(st.just(PHONE), st.sampled_from(HOSTILE + PLAUSIBLE), texts))
    return Fuzz(
        signed_app=draw(st.booleans()),
        sign=draw(st.integers(0, 5)) > 0,
        method=method,
        template=template,
        provider=provider,
        number=number,
        query=tuple(query),
        headers=tuple(headers),
        body=body,
    )


def router_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD comes with GET)."""
    found = []
    for resource in app.router.resources():
        for route in resource:
            if route.method != "HEAD":
                found.append((route.method, resource.canonical))
    return sorted(set(found))


# -- signing, as each provider signs ------------------------------------------------------------


def signed(fuzz: Fuzz) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bytes]:
    """The query, headers and body of ``fuzz``, signed for its provider when asked to."""
    query, headers, body = list(fuzz.query), list(fuzz.headers), fuzz.body
    if not (fuzz.signed_app and fuzz.sign):
        return query, headers, body
    kind = provider_kind(fuzz.provider, None)
    if kind == "vonage":
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        given = dict(query) if fuzz.method == "GET" else form
        # signed as sent: a lone surrogate cannot travel as UTF-8, so it goes as "?"
        fields = {k: v.encode("utf-8", "replace").decode() for k, v in given.items()}
        fields |= {"timestamp": str(int(time.time()))}
        fields["sig"] = signature(fields, SECRET, "md5hash")
        if fuzz.method == "GET":
            return list(fields.items()), headers, body
        return query, headers, urlencode(fields).encode()
    if kind == "enco":
        # signed as sent: a lone surrogate cannot travel as UTF-8, so it goes as "?"
        ref = (dict(query).get("ref") or "msg-1").encode("utf-8", "replace").decode()
        token = hmac.new(SECRET.encode(), ref.encode(), hashlib.sha256).hexdigest()
        return [*query, ("ref", ref), ("token", token)], headers, body
    if kind in ("twilio", "twilio_voice"):
        # Over the public URL as sent (a lone surrogate travels as its UTF-8 bytes, which
        # the server reads back as U+FFFD) and the form as the server decodes it.
        path = url_of(URL("http://fuzz.test/"), fuzz, query)
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if fuzz.method != "POST" or not any(k == "Content-Type" and "form" in v.lower()
                                            for k, v in headers):  # fmt: skip
            form = []
        given = RequestValidator(SECRET).compute_signature(str(path), MultiDict(form))
        return query, [*headers, ("X-Twilio-Signature", given)], body
    if kind == "vonage_voice":
        claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest()}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        return query, [*headers, ("Authorization", f"Bearer {token}")], body
    signature_ = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return query, [*headers, ("X-Signature", signature_)], body


def url_of(base: URL, fuzz: Fuzz, query: list[tuple[str, str]]) -> URL:
    path = fuzz.template.replace("{provider}", quote(fuzz.provider, safe=""))
    path = path.replace("{number}", quote(fuzz.number, safe="", errors="surrogatepass") or "x")
    text = "&".join(
        f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
        for k, v in query
    )
    return base.join(URL(path + ("?" + text if text else ""), encoded=True))


# -- the test ---------------------------------------------------------------------------------


class Apps:
    """The two apps on loopback and one client session, driven from a private loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.servers = {
            signed: TestServer(create_app(fuzz_settings(tmp_path / str(signed), signed)))
            for signed in (False, True)
        }
        for server in self.servers.values():
            self.loop.run_until_complete(server.start_server())
        self.session = self.loop.run_until_complete(self._session())
        self.routes = router_routes(self.servers[True].app)
        self.sent = 0

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))

    def status(self, fuzz: Fuzz) -> int:
        return self.loop.run_until_complete(asyncio.wait_for(self._send(fuzz), REQUEST_TIMEOUT + 1))

    async def _send(self, fuzz: Fuzz) -> int:
        query, headers, body = signed(fuzz)
        base = self.servers[fuzz.signed_app].make_url("/")
        async with self.session.request(
            fuzz.method, url_of(base, fuzz, query), headers=headers, data=body,
            skip_auto_headers=("Content-Type",),
        ) as response:  # fmt: skip
            await response.read()
            self.sent += 1
            return response.status

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        for server in self.servers.values():
            self.loop.run_until_complete(server.close())
        self.loop.close()


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    apps = Apps(tmp_path)
    yield apps
    apps.close()


def test_no_request_gets_a_500_or_hangs(apps: Apps) -> None:
    templates = {template for _, template in apps.routes}
    assert {"/webhooks/{provider}/inbound", "/webhooks/{provider}/voice/input",
            "/api/messages", "/sandbox/messages"} <= templates  # fmt: skip

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(apps.routes))
    def answers_below_500(fuzz: Fuzz) -> None:
        status = apps.status(fuzz)
        assert status < 500, repr(fuzz)[:600]

    started = time.monotonic()
    answers_below_500()
    elapsed = time.monotonic() - started
    print(f"fuzz: {apps.sent} requests in {elapsed:.1f} s")
    assert apps.sent >= 2000
