"""Log lines: numbers masked, JSON lines with the request id and conversation key, texts at
DEBUG only, and an access log without query strings (a real app on loopback, SQLite)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from convo import logs
from convo.logs import LogSettings, mask_numbers, new_request_id
from convo.web.access import AccessLog
from convo.web.app import create_app
from tests.web.conftest import ALICE, LINE, make_settings


def test_numbers_are_masked_wherever_they_appear() -> None:
    assert mask_numbers("from +32470123400 to +3225550120") == "from +32470****00 to +32255****20"
    assert mask_numbers("GET /api/conversations/%2B32470123400") == (
        "GET /api/conversations/%2B32470****00"
    )
    # ids, times and short codes are not numbers of people
    assert mask_numbers("message 1733325600 to 8888, +3212") == "message 1733325600 to 8888, +3212"


def test_the_businesss_own_numbers_are_not_masked() -> None:
    own = {"+3225550120"}
    assert mask_numbers("from +32470123400 to +3225550120", own) == (
        "from +32470****00 to +3225550120"
    )
    assert mask_numbers("GET /x/%2B3225550120?c=%2B32470123400", own) == (
        "GET /x/%2B3225550120?c=%2B32470****00"
    )
    # only the whole number: a longer one that starts like it is a contact's
    assert mask_numbers("+32255501209", own) == "+32255****09"


@pytest.fixture
def log_lines() -> Iterator[Any]:
    """configure() onto a buffer; the root logger is put back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffers: list[io.StringIO] = []

    def install(own_numbers: tuple[str, ...] = (), **settings: Any) -> io.StringIO:
        buffer = io.StringIO()
        logs.configure(LogSettings(**settings), buffer, own_numbers=own_numbers)
        buffers.append(buffer)
        return buffer

    yield install
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("convo.access").disabled = False


async def _converse(aiohttp_client: Any, tmp_path: Path, *, text: str) -> TestClient[Any, Any]:
    """A real server with convo serve's access log, and one text to it."""
    server = TestServer(create_app(make_settings(tmp_path)))
    await server.start_server(
        access_log_class=AccessLog, access_log=logging.getLogger("convo.access")
    )
    client: TestClient[Any, Any] = await aiohttp_client(server)
    resp = await client.post(
        "/sandbox/messages",
        json={"from": ALICE, "to": LINE, "text": text},
        headers={"X-Request-Id": "req-42"},
    )
    assert resp.status == 200
    assert resp.headers["X-Request-Id"] == "req-42"
    return client


async def test_json_lines_carry_the_request_id_and_the_masked_conversation(
    log_lines: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    buffer = log_lines(level="debug", format="json", own_numbers=(LINE,))
    await _converse(aiohttp_client, tmp_path, text="My name is Zoë")

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    turn = [line for line in lines if line["logger"] == "convo.engine"]
    assert turn, lines
    assert {line["request_id"] for line in turn} == {"req-42"}
    masked_alice = mask_numbers(ALICE)
    assert {line["conversation"] for line in turn} == {f"{LINE}/sms/{masked_alice}"}
    assert all(line["level"] == "debug" for line in lines if "Zoë" in line["message"])
    assert any("Zoë" in line["message"] for line in turn)  # at DEBUG the text is there
    assert ALICE not in buffer.getvalue()
    assert all(line["time"].endswith("Z") for line in lines)


async def test_at_info_no_text_and_no_number_is_logged(
    log_lines: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    buffer = log_lines(level="info", format="text")
    client = await _converse(aiohttp_client, tmp_path, text="Zoë from Gent")
    # A Vonage-style webhook carries the text in its query string: the access log drops it.
    await client.get("/webhooks/sandbox/inbound", params={"text": "secret Zoë", "msisdn": ALICE})

    out = buffer.getvalue()
    assert "Zoë" not in out
    access = [line for line in out.splitlines() if " convo.access " in line]
    assert any("POST /sandbox/messages 200" in line and "req=req-42" in line for line in access), (
        out
    )
    assert any("GET /webhooks/sandbox/inbound " in line for line in access), out
    assert ALICE not in out


async def test_numbers_can_be_shown_and_the_access_log_turned_off(
    log_lines: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    buffer = log_lines(level="debug", format="text", mask_numbers=False, access_log=False)
    await _converse(aiohttp_client, tmp_path, text="hello")
    out = buffer.getvalue()
    assert f"conv={LINE}/sms/{ALICE}" in out
    assert " convo.access " not in out


def test_a_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        logs.configure(LogSettings(level="loud"))
    with pytest.raises(ValueError, match="log format"):
        logs.configure(LogSettings(format="xml"))  # type: ignore[arg-type]


def test_new_request_ids_are_sixteen_hex_digits_each_its_own() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", request_id) for request_id in ids)
    assert new_request_id("lb-7f3a.2") == "lb-7f3a.2"  # a client's well-formed id is kept
    assert re.fullmatch(r"[0-9a-f]{16}", new_request_id("not an id!"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_makes_other_request_ids_than_its_parent() -> None:
    # Request ids come from the random module, which a forked child seeds again: workers
    # forked from one parent must not repeat each other's ids.
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(writer, " ".join(new_request_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    with os.fdopen(reader) as pipe:
        theirs = set(pipe.read().split())
    ours = {new_request_id() for _ in range(5)}
    assert len(theirs) == 5
    assert not ours & theirs
