"""`convo outbox list [--dead]` and `convo outbox retry ID...|--all` on a real SQLite file,
and a dead letter retried from the command line is sent by the running server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from convo.cli import main
from convo.models import Direction, MessageRecord, MessageStatus
from convo.store.sqlite import SqliteStore
from convo.web.app import create_app
from tests.web.conftest import ALICE, BOB, LINE, make_settings

CONFIG = """
[store]
url = "sqlite:///{db}"

[flows]
paths = ["{flows}"]

[[lines]]
number = "{line}"
provider = "sandbox"
flow = "greet"
"""


def reply(message_id: str, to: str, status: MessageStatus, created_at: float) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        direction=Direction.OUTBOUND,
        line=LINE,
        contact=to,
        text=f"text of {message_id}",
        status=status,
        error="503 Service Unavailable" if status is MessageStatus.DEAD else None,
        created_at=created_at,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A convo.toml over tmp_path/convo.db holding two pending replies, two dead letters
    and one sent reply."""
    db = tmp_path / "convo.db"
    flows = Path(__file__).parents[1] / "web" / "data"
    path = tmp_path / "convo.toml"
    path.write_text(CONFIG.format(db=db, flows=flows, line=LINE))

    async def fill() -> None:
        store = SqliteStore(db)
        await store.open()
        now = time.time()
        await store.add_outbound(
            [
                reply("q-2", BOB, MessageStatus.QUEUED, now - 10),
                reply("q-1", ALICE, MessageStatus.QUEUED, now - 20),
                reply("d-1", ALICE, MessageStatus.DEAD, now - 90_000),
                reply("d-2", BOB, MessageStatus.DEAD, now - 80_000),
                reply("s-1", BOB, MessageStatus.SENT, now - 5),
            ]
        )
        await store.close()

    asyncio.run(fill())
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_pending_replies_oldest_first(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--config", str(config), "outbox", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["q-1", "q-2"]
    assert "2 pending" in err


def test_list_dead_shows_dead_letters_with_their_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "outbox", "list", "--dead", "--json", "--config", str(config))
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [m["id"] for m in listed] == ["d-2", "d-1"]  # newest first
    assert {m["status"] for m in listed} == {"dead"}
    assert listed[0]["error"] == "503 Service Unavailable"


def test_retry_queues_a_dead_letter_again_and_refuses_what_is_not_one(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--config", str(config), "outbox", "retry", "d-1", "s-1")
    assert code == 1  # s-1 was sent, not dead: said, and nothing done to it
    assert out.split() == ["d-1"]
    assert "s-1 is not a dead letter" in err
    _, out, _ = run(capsys, "--config", str(config), "outbox", "list", "--dead")
    assert [line.split()[0] for line in out.splitlines()] == ["d-2"]
    _, out, _ = run(capsys, "--config", str(config), "outbox", "list")
    assert [line.split()[0] for line in out.splitlines()] == ["d-1", "q-1", "q-2"]


def test_retry_all_and_usage(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--config", str(config), "outbox", "retry")[0] == 2
    assert run(capsys, "--config", str(config), "outbox", "retry", "d-1", "--all")[0] == 2
    code, out, _ = run(capsys, "--config", str(config), "outbox", "retry", "--all")
    assert code == 0 and out.split() == ["d-1", "d-2"]  # oldest first
    _, out, _ = run(capsys, "--config", str(config), "outbox", "list", "--dead")
    assert out == ""


async def test_a_dead_letter_retried_from_the_command_line_is_sent_by_the_server(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    settings = make_settings(tmp_path)
    client = await aiohttp_client(create_app(settings))
    store = SqliteStore(tmp_path / "convo.db")  # a second connection, as the CLI's would be
    await store.open()
    try:
        await store.add_outbound([reply("d-9", ALICE, MessageStatus.DEAD, time.time() - 90_000)])
        config = tmp_path / "convo.toml"
        config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "convo.db"}"\n')
        code = await asyncio.to_thread(main, ["--config", str(config), "outbox", "retry", "d-9"])
        assert code == 0
        deadline = time.monotonic() + 10
        while True:  # the server's next sweep (every 0.2 s here) sends it
            resp = await client.get("/sandbox/messages", params={"number": ALICE})
            texts = [m["text"] for m in (await resp.json())["messages"]]
            if "text of d-9" in texts or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert texts == ["text of d-9"]
        record = await store.get_message("d-9")
        assert record is not None and record.status is not MessageStatus.DEAD
    finally:
        await store.close()
