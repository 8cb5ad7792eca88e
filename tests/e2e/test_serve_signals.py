"""`convo serve` as a real process: SIGTERM or SIGINT with a backlog of replies to a
provider that answers slowly stops taking webhooks, lets the sends in flight run for the
grace period (``[server] shutdown_grace``), exits 0, and leaves what was not sent queued
in the SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.models import MessageRecord, OutboundMessage
from convo.store.sqlite import SqliteStore
from tests.e2e.sms_world import DATA, LINE, eventually

CONVO = Path(sys.executable).parent / "convo"
BACKLOG = 30
GRACE = 2.0
MARGIN = 8.0  # closing the store and the interpreter's exit are not part of the grace


class SlowProvider:
    """A Vonage-shaped API on loopback that takes a minute to answer each send."""

    def __init__(self) -> None:
        self.requests = 0
        self.app = web.Application()
        self.app.router.add_post("/sms/json", self._send)

    async def _send(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(60)
        return web.json_response({"message-count": "1", "messages": [{"status": "0"}]})


def write_config(tmp_path: Path, provider_url: str) -> Path:
    config = tmp_path / "convo.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = {GRACE}

[store]
url = "sqlite:///{tmp_path / "convo.db"}"

[flows]
paths = ["{DATA / "sms_two_questions.yaml"}"]

[[lines]]
number = "{LINE}"
provider = "vonage"
flow = "sms_two_questions"

[providers.vonage]
api_key = "vk"
api_secret = "vs"
signature_secret = "vsig"
signature_method = "sha256"
base_url = "{provider_url}"

[webhooks]
rejected_dir = "{tmp_path / "rejected"}"
""",
        encoding="utf-8",
    )
    return config


async def queue_backlog(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        replies = [
            OutboundMessage(line=LINE, to=f"+3247000{i:04d}", text=f"reply {i}")
            for i in range(BACKLOG)
        ]
        await store.add_outbound([MessageRecord.outbound(r) for r in replies])
    finally:
        await store.close()


def unsent(db: Path) -> int:
    """Replies still to send: queued, or claimed by a send the stop cancelled (the next
    start releases those claims and sends them)."""
    with contextlib.closing(sqlite3.connect(db)) as cx, cx:
        (count,) = cx.execute(
            "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')"
        ).fetchone()
    return int(count)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_with_a_backlog_exits_0_within_the_grace_period(
    tmp_path: Path, sig: signal.Signals
) -> None:
    provider = SlowProvider()
    server = TestServer(provider.app, host="127.0.0.1")
    await server.start_server()
    try:
        config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
        await queue_backlog(tmp_path / "convo.db")
        process = await asyncio.create_subprocess_exec(
            str(CONVO),
            *("serve", "--config", str(config)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:

            async def sending() -> bool:
                assert process.returncode is None, await process.communicate()
                return provider.requests > 0

            await eventually(sending, "the first sends to reach the slow provider", 30)
            process.send_signal(sig)
            began = time.monotonic()
            with pytest.raises(TimeoutError):  # it does not stop at once: sends are in flight
                await asyncio.wait_for(asyncio.shield(process.wait()), GRACE / 2)
            code = await asyncio.wait_for(process.wait(), GRACE + MARGIN)
            took = time.monotonic() - began
        finally:
            if process.returncode is None:
                process.kill()
            _, err = await process.communicate()
        assert code == 0, err.decode()[-3000:]
        assert took < GRACE + MARGIN
        # The provider never answered: every reply is still to be sent, at the next start.
        assert unsent(tmp_path / "convo.db") == BACKLOG
    finally:
        await server.close()
