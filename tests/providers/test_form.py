"""convo.providers.form: the same fields as the standard library, for any body."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import given
from hypothesis import strategies as st

from convo.providers import form

# Bodies made of what makes form parsing interesting: separators, escapes (valid, invalid,
# invalid UTF-8), pluses, blanks, and any other text.
PIECES = st.sampled_from(["&", "=", "+", "%", "%2", "%20", "%2B", "%26", "%C3%A9", "%FF", " ", "a"])
BODIES = st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=20).map("".join)


@given(BODIES)
def test_decode_reads_a_body_as_parse_qsl_does(body: str) -> None:
    assert form.decode(body) == dict(parse_qsl(body, keep_blank_values=True))


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=8))
def test_encode_writes_fields_as_urlencode_does_and_decode_reads_them_back(
    fields: dict[str, str],
) -> None:
    body = form.encode(fields)
    assert body == urlencode(fields)
    assert form.decode(body) == fields


def test_a_vonage_webhook_and_a_send() -> None:
    body = "msisdn=32470123456&to=3225550120&text=Hallo+daar%21+%C3%A9%C3%A9n&keyword=&concat"
    assert form.decode(body) == {
        "msisdn": "32470123456", "to": "3225550120", "text": "Hallo daar! één",
        "keyword": "", "concat": "",
    }  # fmt: skip
    send = {"from": "3225550120", "text": "Tot morgen, An & Bo = 2?", "client-ref": "m-1_x.y~z"}
    assert form.encode(send) == (
        "from=3225550120&text=Tot+morgen%2C+An+%26+Bo+%3D+2%3F&client-ref=m-1_x.y~z"
    )
