"""Vonage adapter, pure parts: config, signatures, inbound and receipt parsing.

Payloads are the Vonage document's examples. Signature test vectors come from
the official SDKs' own tests (vonage-python-sdk tests/test_signature.py and
http_client/tests/test_auth.py), so our signing is checked against Vonage, not itself.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from convo.exceptions import ConfigError, MalformedWebhook, SignatureError
from convo.models import MessagePart, MessageStatus, WebhookRequest
from convo.providers.vonage import SEND_STATUS, VonageSms
from convo.providers.vonage_webhooks import signature, signature_matches

SECRET = "sig-secret"
# The pure parts never send: one client for every adapter built here (building one costs).
CLIENT = httpx.AsyncClient()
DOC_TIME = 1578787200  # the document's inbound `timestamp` example

INBOUND = {  # the document's InboundMessage example
    "api-key": "abcd1234",
    "msisdn": "447700900001",
    "to": "447700900000",
    "messageId": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "text": "Hello world",
    "type": "text",
    "keyword": "HELLO",
    "message-timestamp": "2020-01-01 12:00:00",
    "timestamp": str(DOC_TIME),
    "nonce": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
}
RECEIPT = {  # the document's DeliveryReceipt example
    "msisdn": "447700900000",
    "to": "AcmeInc",
    "network-code": "12345",
    "messageId": "0A0000001234567B",
    "price": "0.03330000",
    "status": "delivered",
    "scts": "2001011400",
    "err-code": "0",
    "api-key": "abcd1234",
    "message-timestamp": "2020-01-01 12:00:00",
    "client-ref": "our-message-id",
}


def md5hash_sig(fields: dict[str, str], secret: str) -> str:
    """The documented md5hash algorithm, written out independently of the adapter."""
    base = "".join(
        f"&{k}={v.replace('&', '_').replace('=', '_')}" for k, v in sorted(fields.items())
    )
    return hashlib.md5((base + secret).encode()).hexdigest()


def adapter(**options: Any) -> VonageSms:
    opts: dict[str, Any] = {
        "api_key": "abcd1234",
        "api_secret": "api-secret",
        "signature_secret": SECRET,
    }
    opts.update(options)
    sms = VonageSms.from_config("vonage", opts, CLIENT)
    sms.clock = lambda: DOC_TIME + 10.0
    return sms


def get(fields: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("GET", "/webhooks/vonage/inbound", "https://bot/x", {}, fields)


def form(fields: dict[str, str]) -> WebhookRequest:
    body = urlencode(fields).encode()
    ctype = "application/x-www-form-urlencoded"
    return WebhookRequest("POST", "/w", "https://bot/x", {}, {}, body, ctype)


def json_post(payload: object, ctype: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "/w", "https://bot/x", {}, {}, json.dumps(payload).encode(), ctype
    )


def signed(fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "sig": md5hash_sig(fields, SECRET)}


# -- signatures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "secret", "method", "expected"),
    [
        ({"a": "1", "b": "2", "timestamp": "1461605396"}, "secret", "md5hash",
         "6af838ef94998832dbfc29020b564830"),
        ({"param1": "value1", "param2": "value2", "timestamp": 1234567890}, "signature_secret",
         "sha256", "280c4320703dbc98bfa22db676655ed2acfbfe8792b062ff7622e67f1183c287"),
        ({"param1": "value1", "param2": "value2", "timestamp": 1234567890}, "signature_secret",
         "md5", "724c2bf6ca423c36e20631b11d1c5753"),
        ({"param1": "value&1", "param2": "value=2", "timestamp": 1234567890}, "signature_secret",
         "md5", "2bbf0abafb2c55e5af6231513896a2ac"),
    ],
)  # fmt: skip
def test_signature_matches_the_sdk_vectors(
    params: dict[str, object], secret: str, method: str, expected: str
) -> None:
    assert signature(params, secret, method).lower() == expected
    assert signature_matches({**params, "sig": expected.upper()}, secret, method)
    wrong = expected[:-1] + ("1" if expected.endswith("0") else "0")
    assert not signature_matches({**params, "sig": wrong}, secret, method)


def test_hmac_signatures_are_upper_case_md5hash_lower() -> None:
    assert signature({"a": "1"}, "s", "sha512").isupper()
    assert signature({"a": "1"}, "s", "md5hash").islower()
    with pytest.raises(ValueError, match="sha3"):
        signature({"a": "1"}, "s", "sha3")


# -- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_key": None}, r"\[providers.vonage\] api_key: missing"),
        ({"colour": "blue"}, r"\[providers.vonage\] colour: unknown option"),
        ({"signature_method": "sha3"}, r"signature_method: expected one of md5hash"),
        ({"rate_limit": "fast"}, r"rate_limit: expected a number"),
        ({"allow_unsigned": "yes"}, r"allow_unsigned: expected true or false"),
        ({"signature_secret": None}, r"signature_secret: missing; webhooks are authenticated"),
        ({"api_secret": None, "signature_secret": None, "allow_unsigned": True},
         r"signature_secret: missing; needed to sign"),
        ({"base_url": "ftp://x"}, r"base_url: expected an http"),
    ],
)  # fmt: skip
def test_bad_config_names_section_and_key(options: dict[str, Any], message: str) -> None:
    opts = {"api_key": "abcd1234", "api_secret": "s3cr3t-value", "signature_secret": SECRET}
    opts.update(options)
    opts = {k: v for k, v in opts.items() if v is not None}
    with pytest.raises(ConfigError, match=message) as info:
        VonageSms.from_config("vonage", opts, CLIENT)
    assert "s3cr3t-value" not in str(info.value)


def test_config_defaults_and_callback_url() -> None:
    sms = VonageSms.from_config(
        "vonage",
        {"api_key": "k", "api_secret": "s", "signature_secret": "t"},
        CLIENT,
        public_url="https://bot.example.com/",
    )
    assert sms.rate_limit == 30.0
    assert sms.base_url == "https://rest.nexmo.com"
    assert sms.signature_method == "md5hash"
    assert sms.status_url == "https://bot.example.com/webhooks/vonage/status"
    assert not sms.sign_requests
    assert repr(sms) == "VonageSms(name='vonage', base_url='https://rest.nexmo.com')"


def test_callback_longer_than_100_chars_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="100 characters"):
        VonageSms.from_config(
            "vonage",
            {"api_key": "k", "api_secret": "s", "allow_unsigned": True},
            CLIENT,
            public_url="https://" + "x" * 90 + ".example.com",
        )


# -- verify ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [get, form, json_post])
def test_signed_document_example_verifies_in_every_transport(build: Any) -> None:
    adapter().verify(build(signed(INBOUND)))


def test_upper_case_sig_is_accepted() -> None:
    fields = signed(INBOUND)
    adapter().verify(get({**fields, "sig": fields["sig"].upper()}))


def test_hmac_sha256_webhook() -> None:
    sms = adapter(signature_method="sha256")
    sms.verify(get({**INBOUND, "sig": signature(INBOUND, SECRET, "sha256")}))
    with pytest.raises(SignatureError):
        sms.verify(get(signed(INBOUND)))  # an md5hash sig is not a sha256 one


def test_tampered_body_is_refused() -> None:
    fields = {**signed(INBOUND), "text": "Hello world!"}
    with pytest.raises(SignatureError, match="does not match"):
        adapter().verify(form(fields))


def test_wrong_secret_is_refused() -> None:
    fields = {**INBOUND, "sig": md5hash_sig(INBOUND, "other-secret")}
    with pytest.raises(SignatureError, match="does not match"):
        adapter().verify(get(fields))


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_timestamp_is_refused(offset: int) -> None:
    fields = {**INBOUND, "timestamp": str(DOC_TIME + 10 + offset)}
    with pytest.raises(SignatureError, match="window"):
        adapter().verify(get(signed(fields)))


def test_unsigned_webhook_is_refused_unless_allowed_without_a_secret() -> None:
    with pytest.raises(SignatureError, match="not signed"):
        adapter().verify(get(INBOUND))
    # with a signature secret the signature is required, whatever allow_unsigned says
    with pytest.raises(SignatureError, match="not signed"):
        adapter(allow_unsigned=True).verify(get(INBOUND))
    assert adapter(allow_unsigned=True).verify(get(signed(INBOUND))) is True
    # no secret: allow_unsigned lets it in, unchecked
    open_ = adapter(allow_unsigned=True, signature_secret=None, sign_requests=False)
    assert open_.verify(get(INBOUND)) is False
    assert open_.verify(get({**INBOUND, "sig": "0" * 32})) is False  # nothing to check with
    with pytest.raises(SignatureError):  # allowing unsigned never accepts a wrong sig
        adapter(allow_unsigned=True).verify(get({**INBOUND, "sig": "0" * 32}))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (json_post(signed(INBOUND), "text/plain"), "unsupported content type"),
        (WebhookRequest("POST", "/", "u", {}, {}, b"{oops", "application/json"), "not valid JSON"),
        (json_post(["not", "an", "object"]), "must be an object"),
        (json_post({**signed(INBOUND), "text": None}), "'text' must be a string"),
    ],
)  # fmt: skip
def test_unreadable_fields_are_malformed_not_a_wrong_signature(
    request_: WebhookRequest, message: str
) -> None:
    """No fields, no signature to check: verify leaves it to parse_*, whose MalformedWebhook
    the web layer answers with 400 and keeps; never a SignatureError (401)."""
    adapter().verify(request_)
    with pytest.raises(MalformedWebhook, match=message):
        adapter().parse_inbound(request_)
    with pytest.raises(MalformedWebhook, match=message):
        adapter().parse_status(request_)


def test_readable_fields_with_a_missing_or_wrong_sig_are_still_refused() -> None:
    missing = {k: v for k, v in INBOUND.items() if k != "text"}
    adapter().verify(json_post(signed(missing)))  # signed, but malformed: parse says so
    with pytest.raises(MalformedWebhook, match="missing field 'text'"):
        adapter().parse_inbound(json_post(signed(missing)))
    with pytest.raises(SignatureError, match="not signed"):
        adapter().verify(json_post(missing))
    with pytest.raises(SignatureError, match="does not match"):
        adapter().verify(json_post({**signed(INBOUND), "to": "447700900002"}))


# -- inbound ---------------------------------------------------------------------------


@pytest.mark.parametrize("build", [get, form, json_post])
def test_inbound_document_example(build: Any) -> None:
    [msg] = adapter().parse_inbound(build(INBOUND))
    assert msg.sender == "+447700900001"
    assert msg.line == "+447700900000"
    assert msg.text == "Hello world"
    assert msg.provider == "vonage"
    assert msg.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    assert msg.received_at == 1577880000.0  # 2020-01-01 12:00:00 UTC
    assert msg.part is None


def test_inbound_belgian_number_is_normalised() -> None:
    [msg] = adapter().parse_inbound(get({**INBOUND, "msisdn": "32470123456"}))
    assert msg.sender == "+32470123456"
    [msg] = adapter().parse_inbound(get({**INBOUND, "msisdn": "+32470123456"}))
    assert msg.sender == "+32470123456"


def test_possible_number_outside_the_metadata_is_kept() -> None:
    """The document's 4477009000xx are possible UK numbers (right length, known country
    code) in a range libphonenumber does not list as allocated: kept, not refused."""
    [msg] = adapter().parse_inbound(get({**INBOUND, "msisdn": "447700900123"}))
    assert msg.sender == "+447700900123"


def test_concatenated_part() -> None:
    fields = {**INBOUND, "concat": "true", "concat-ref": "1", "concat-total": "3",
              "concat-part": "2"}  # fmt: skip
    [msg] = adapter().parse_inbound(get(fields))
    assert msg.part == MessagePart("1", 2, 3)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (json_post({"msisdn": "1"}, "text/plain"), "unsupported content type"),
        (WebhookRequest("POST", "/", "u", {}, {}, b"{oops", "application/json"), "not valid JSON"),
        (json_post([INBOUND]), "must be an object"),
        (json_post({**INBOUND, "text": None}), "'text' must be a string"),
        (get({k: v for k, v in INBOUND.items() if k != "msisdn"}), "missing field 'msisdn'"),
        (get({k: v for k, v in INBOUND.items() if k != "text"}), "missing field 'text'"),
        (get({**INBOUND, "msisdn": "hello"}), "field 'msisdn': 'hello' is not a phone number"),
        (get({**INBOUND, "msisdn": "99912345678"}),
         r"field 'msisdn': '\+99912345678' cannot be a phone number: unknown country"),
        (get({**INBOUND, "msisdn": "3212345"}),
         r"field 'msisdn': '\+3212345' cannot be a phone number: too short for BE"),
        (get({**INBOUND, "msisdn": "324701234567890"}), "'msisdn'.*too long for BE"),
        (get({**INBOUND, "to": "3212345"}), "field 'to': .* too short"),
        (get({**INBOUND, "msisdn": "٣٢٤٧٠١٢٣٤٥٦"}), "'msisdn'.* is not a phone number"),
        (get({**INBOUND, "message-timestamp": "yesterday"}), "message-timestamp"),
        (get({**INBOUND, "type": "binary"}), "binary"),
        (get({**INBOUND, "concat": "true", "concat-ref": "1", "concat-total": "3",
              "concat-part": "4"}), "outside 1..3"),
        (get({**INBOUND, "concat": "true", "concat-total": "3", "concat-part": "1"}),
         "missing field 'concat-ref'"),
        (get({**INBOUND, "concat": "true", "concat-ref": "1", "concat-total": "x",
              "concat-part": "1"}), "'concat-total' must be a whole number"),
    ],
)  # fmt: skip
def test_malformed_inbound(request_: WebhookRequest, message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        adapter().parse_inbound(request_)


# -- delivery receipts -----------------------------------------------------------------


def test_receipt_document_example() -> None:
    [report] = adapter().parse_status(json_post(RECEIPT))
    assert report.per_part  # Vonage sends one receipt per part of a long text
    assert report.provider_message_id == "0A0000001234567B"
    assert report.status is MessageStatus.DELIVERED
    assert report.client_ref == "our-message-id"
    assert report.error_code is None
    assert report.price == pytest.approx(0.0333)
    assert report.currency == "EUR"
    assert report.at == 1577880000.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [("delivered", MessageStatus.DELIVERED), ("expired", MessageStatus.UNDELIVERED),
     ("failed", MessageStatus.FAILED), ("rejected", MessageStatus.FAILED),
     ("accepted", MessageStatus.SENT), ("buffered", MessageStatus.SENT),
     ("unknown", MessageStatus.SENT)],
)  # fmt: skip
def test_receipt_status_mapping(status: str, expected: MessageStatus) -> None:
    [report] = adapter().parse_status(form({**RECEIPT, "status": status, "err-code": "6"}))
    assert report.status is expected
    assert report.error_code == "6"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({**RECEIPT, "status": "lost"}, "unknown status 'lost'"),
        ({k: v for k, v in RECEIPT.items() if k != "messageId"}, "missing field 'messageId'"),
        ({k: v for k, v in RECEIPT.items() if k != "status"}, "missing field 'status'"),
        ({**RECEIPT, "price": "cheap"}, "price 'cheap' is not a number"),
    ],
)
def test_malformed_receipt(fields: dict[str, str], message: str) -> None:
    with pytest.raises(MalformedWebhook, match=message):
        adapter().parse_status(get(fields))


def test_every_documented_error_status_is_mapped() -> None:
    documented = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "14", "15",
                  "17", "22", "23", "29", "32", "33"}  # fmt: skip
    assert set(SEND_STATUS) == documented
