"""Malformed webhooks kept for the operator without filling the disk (``convo.web.rejected``),
through a real server over a real SQLite file and its ``rejected_dir``."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from convo.exceptions import ConfigError
from convo.models import WebhookRequest
from convo.providers.sandbox import sign
from convo.web.app import create_app
from convo.web.rejected import UNSIGNED_PREFIX, RejectedWebhooks
from convo.web.state import REJECTED
from tests.web.conftest import make_settings

SECRET = "s3cret"
JSON = {"Content-Type": "application/json"}


def json_files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*.json"))


def kept(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "rejected").glob("*.json"))


async def signed_client(aiohttp_client: Any, tmp_path: Path, **webhooks: Any) -> Any:
    settings = make_settings(
        tmp_path, providers={"sandbox": {"webhook_secret": SECRET}}, webhooks=webhooks
    )
    return await aiohttp_client(create_app(settings))


async def post_signed(client: Any, body: bytes) -> Any:
    headers = JSON | {"X-Signature": sign(SECRET, body)}
    return await client.post("/webhooks/sandbox/inbound", data=body, headers=headers)


async def test_a_signed_malformed_body_is_kept_whole_as_text(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await signed_client(aiohttp_client, tmp_path)
    body = json.dumps({"id": "m1", "text": "héllo " * 20_000}, ensure_ascii=False).encode()
    response = await post_signed(client, body)
    assert response.status == 400
    [path] = kept(tmp_path)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["body"]["text"].encode() == body  # whole, and as text: not hex
    assert (record["signed"], record["truncated"], record["body_size"]) == (True, False, len(body))
    assert path.stat().st_size < len(body) * 1.1


async def test_an_unsigned_1mb_body_keeps_at_most_a_kib(client: Any, tmp_path: Path) -> None:
    body = b'{"id": "m1", "text": "' + b"x" * 1_000_000 + b'"'  # unsigned, and not JSON
    response = await client.post("/webhooks/sandbox/inbound", data=body, headers=JSON)
    assert response.status == 400
    [path] = kept(tmp_path)
    record = json.loads(path.read_text())
    assert record["signed"] is False and record["truncated"] is True
    assert record["body"]["text"].encode() == body[:UNSIGNED_PREFIX]
    assert record["body_size"] == len(body)
    assert path.stat().st_size < UNSIGNED_PREFIX + 2048  # the body's KiB and the metadata


async def test_a_binary_body_is_kept_as_base64(client: Any, tmp_path: Path) -> None:
    body = bytes(range(256))
    assert (await client.post("/webhooks/sandbox/inbound", data=body, headers=JSON)).status == 400
    [path] = kept(tmp_path)
    assert base64.b64decode(json.loads(path.read_text())["body"]["base64"]) == body


async def test_the_quota_holds_under_five_times_its_size(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    quota = 64 * 1024
    client = await signed_client(aiohttp_client, tmp_path, rejected_quota=quota)
    bodies = [f'{{"id": "m{i}", "text": "{i:04d}{"y" * 4000}"}}'.encode() for i in range(90)]
    assert sum(map(len, bodies)) > 5 * quota
    for body in bodies:
        assert (await post_signed(client, body)).status == 400
    files = kept(tmp_path)
    assert sum(p.stat().st_size for p in files) <= quota
    texts = [json.loads(p.read_text())["body"]["text"] for p in files]
    # the newest are kept, in order; the oldest were evicted
    assert texts == [b.decode() for b in bodies[-len(files) :]]
    assert len(files) >= quota // 5000 - 1


async def test_the_quota_counts_files_already_there(tmp_path: Path) -> None:
    directory = tmp_path / "rejected"
    directory.mkdir()
    old = directory / "20000101T000000.000000000Z-sandbox-old.json"
    old.write_text("x" * 3000)
    other = directory / "notes.txt"  # not the keeper's: never counted, never deleted
    other.write_text("y" * 10_000)
    keeper = RejectedWebhooks(directory, quota=4000, body_cap=4000)
    request = WebhookRequest("POST", "/", "http://x/", {}, {}, b"z" * 1500, "text/plain")
    assert await keeper.keep("sandbox", request, "bad", signed=True) is not None
    assert not old.exists() and other.exists()


async def test_a_path_outside_the_directory_is_refused(tmp_path: Path) -> None:
    keeper = RejectedWebhooks(tmp_path / "rejected")
    request = WebhookRequest("POST", "/", "http://x/", {}, {}, b"{}", "application/json")
    assert await keeper.keep("x/../../etc", request, "bad", signed=True) is None
    assert json_files_under(tmp_path) == []
    assert keeper.summary() == [
        "kept 0 malformed webhooks (0 bytes) from x/../../etc; 1 not kept (over the quota "
        "or an unsafe name)"
    ]


def test_rejected_quota_is_read_from_webhooks(tmp_path: Path) -> None:
    assert make_settings(tmp_path).webhooks.rejected_quota == 100 * 1024 * 1024
    settings = make_settings(tmp_path, webhooks={"rejected_quota": 2048})
    assert settings.webhooks.rejected_quota == 2048
    with pytest.raises(ConfigError, match=r"\[webhooks\] rejected_quota: expected an integer"):
        make_settings(tmp_path, webhooks={"rejected_quota": "lots"})


async def test_the_log_counts_instead_of_a_line_per_request(
    client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="convo.web")
    for i in range(5):
        await client.post("/webhooks/sandbox/inbound", data=b"{bad %d" % i, headers=JSON)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    sizes = sum(p.stat().st_size for p in kept(tmp_path))
    assert client.app[REJECTED].summary() == [
        f"kept 5 malformed webhooks ({sizes} bytes) from sandbox"
    ]
    assert client.app[REJECTED].summary() == []  # counted once
