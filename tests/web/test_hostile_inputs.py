"""Inputs that used to make routes answer 500, on a real server over a real SQLite file.

Each is malformed input, answered 4xx with a JSON error that says what is wrong, and never
reaches the store as an out-of-range value; a signed text holding what UTF-8 cannot encode
(a lone surrogate, which JSON can spell) is stored with U+FFFD instead of being lost.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from convo.models import Direction
from convo.providers._telefoon_common import sign as telefoon_sign
from convo.providers.vonage_webhooks import signature
from convo.store.base import MessageQuery
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.web.conftest import ALICE, LINE, TOKEN, make_settings

Client = TestClient[Any, Any]
VONAGE_LINE, TELEFOON_LINE = "+3225550121", "+3225550120"
VONAGE_SECRET, TELEFOON_SECRET = "vsig", "tsig"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Client:
    settings = make_settings(
        tmp_path,
        providers={
            "vonage": {
                "api_key": "k",
                "api_secret": "s",
                "signature_secret": VONAGE_SECRET,
                "signature_method": "sha256",
                "sign_requests": False,
            },
            "telefoon_sms": {"api_key": "k", "webhook_secret": TELEFOON_SECRET},
        },
        lines=[
            {"number": LINE, "provider": "sandbox", "flow": "greet"},
            {"number": VONAGE_LINE, "provider": "vonage", "flow": "greet"},
            {"number": TELEFOON_LINE, "provider": "telefoon_sms", "flow": "greet"},
        ],
    )
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]


def vonage_signed(fields: dict[str, str], timestamp: str | None = None) -> dict[str, str]:
    fields = {**fields, "timestamp": timestamp or str(int(time.time()))}
    return {**fields, "sig": signature(fields, VONAGE_SECRET, "sha256")}


def vonage_inbound(**extra: str) -> dict[str, str]:
    return {"msisdn": ALICE[1:], "to": VONAGE_LINE[1:], "text": "hi", "type": "text",
            "messageId": uuid.uuid4().hex[:16]} | extra  # fmt: skip


async def telefoon_post(client: Client, route: str, message: dict[str, Any]) -> Any:
    body = json.dumps(message).encode()  # ASCII: "\ud800" travels as the JSON escape
    headers = {"Content-Type": "application/json", "X-Signature": telefoon_sign("tsig", body)}
    return await client.post(f"/webhooks/telefoon_sms/{route}", data=body, headers=headers)


async def error_of(response: Any, status: int = 400) -> str:
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert isinstance(error, str) and error
    return error


async def stored(client: Client) -> list[Any]:
    found, _ = await client.app[RUNTIME].store.list_messages(MessageQuery(page_size=100))
    return found


async def test_vonage_timestamp_in_unicode_digits_is_a_bad_signature(client: Client) -> None:
    # "²".isdigit() is True, int("²") raises: the timestamp check must read ASCII digits
    fields = vonage_signed(vonage_inbound(), timestamp="²")
    response = await client.get("/webhooks/vonage/inbound?" + urlencode(fields))
    assert "timestamp" in await error_of(response, 401)
    assert await stored(client) == []


async def test_json_with_a_lone_surrogate_is_stored_with_a_replacement(client: Client) -> None:
    body = json.dumps({"id": "s1", "from": ALICE, "to": LINE, "text": "hi \ud800!"})
    response = await client.post(
        "/webhooks/sandbox/inbound", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200, await response.text()
    [message] = [m for m in await stored(client) if m.direction == Direction.INBOUND]
    assert message.text == "hi \ufffd!"


async def test_deeply_nested_json_on_a_status_route_is_malformed(client: Client) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = await client.post(
        "/webhooks/sandbox/status", data=body, headers={"Content-Type": "application/json"}
    )
    assert "nested deeper" in await error_of(response)


async def test_signed_telefoon_text_with_a_lone_surrogate_is_stored(client: Client) -> None:
    message = {"id": "t-1", "status": "received", "direction": "inbound", "from": ALICE,
               "to": TELEFOON_LINE, "body": "caf\ud800 ok"}  # fmt: skip
    response = await telefoon_post(client, "inbound", message)
    assert response.status == 200, await response.text()
    [kept] = [m for m in await stored(client) if m.direction == Direction.INBOUND]
    assert (kept.text, kept.provider_message_id) == ("caf\ufffd ok", "t-1")


@pytest.mark.parametrize("price", [10**400, "1e999", "nan", "-1"])
async def test_delivery_receipt_with_an_impossible_price_is_malformed(
    client: Client, price: object
) -> None:
    report = {"id": "t-2", "status": "delivered", "direction": "outbound", "from": TELEFOON_LINE,
              "to": ALICE, "price": price}  # fmt: skip
    response = await telefoon_post(client, "status", report)
    assert "'price'" in await error_of(response)


async def test_vonage_receipt_with_an_infinite_price_is_malformed(client: Client) -> None:
    fields = vonage_signed({"messageId": "p1", "status": "delivered", "price": "9" * 400})
    response = await client.get("/webhooks/vonage/status?" + urlencode(fields))
    assert "price" in await error_of(response)


@pytest.mark.parametrize(
    ("part", "total", "expected"),
    [
        ("1", "9" * 30, "'concat-total' must be"),  # would overflow a SQLite integer
        ("1", "256", "'concat-total' must be 0..255"),  # a UDH counts parts in one byte
        ("²", "3", "'concat-part' must be a whole number"),
    ],
)
async def test_vonage_concat_numbers_out_of_range_are_malformed(
    client: Client, part: str, total: str, expected: str
) -> None:
    fields = vonage_signed(
        vonage_inbound(concat="true", **{"concat-ref": "7", "concat-part": part,
                                         "concat-total": total})
    )  # fmt: skip
    response = await client.get("/webhooks/vonage/inbound?" + urlencode(fields))
    assert expected in await error_of(response)
    assert await stored(client) == []


@pytest.mark.parametrize("page", [str(10**20), "\u0661", "1_0", "9" * 5000])
async def test_admin_page_out_of_range_is_a_400_naming_it(client: Client, page: str) -> None:
    response = await client.get(
        "/api/messages", params={"page": page}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert (await error_of(response)).startswith("page: expected")


async def test_the_largest_page_is_answered(client: Client) -> None:
    response = await client.get(
        "/api/messages", params={"page": "1000000"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 200
    assert (await response.json())["messages"] == []
