"""SIGKILL between acknowledgement and send: after a restart every reply goes out once.

The server runs as a real ``python -m convo serve`` process over a SQLite file, sending
through the Telefoon SMS adapter to a Telefoon-shaped provider running in this test process.
While the provider hangs, three people text in: their messages are acknowledged and their
replies queued (and left ``sending``). The server is killed with SIGKILL and restarted with
the provider answering again: each person gets their reply exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.providers._telefoon_common import sign
from tests.conftest import until

DATA = Path(__file__).parent / "data"
LINE = "+32460000101"
PEOPLE = ["+32470000001", "+32470000002", "+32470000003"]
SECRET = "hook-secret"
TOKEN = "admin-token"


class HangingTelefoon:
    """``POST /messages``: hangs while ``blocked`` (never accepting), else answers 201."""

    def __init__(self) -> None:
        self.blocked = True
        self.attempts: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self._never = asyncio.Event()
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/messages", self.send)

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.attempts.append(body)
        if self.blocked:
            await self._never.wait()  # the request never gets an answer: nothing was sent
        self.accepted.append(body)
        return web.json_response(
            {
                "id": f"tf-{next(self._ids)}",
                "status": "queued",
                "direction": "outbound",
                "from": body["from"],
                "to": body["to"],
            },
            status=201,
        )


async def start_server(config: Path, cwd: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONVO_CONFIG"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "convo",
        "--config",
        str(config),
        "serve",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    if "serving on" not in line:
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        raise AssertionError(f"server did not start: {line!r}\n{err}")
    return proc, line.rsplit(" ", 1)[1].strip()


async def test_sigkill_between_ack_and_send_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    provider = HangingTelefoon()
    fake = TestServer(provider.app, host="127.0.0.1")
    await fake.start_server()
    config = tmp_path / "convo.toml"
    config.write_text(
        f"""
[server]
port = 0
api_token = "{TOKEN}"
shutdown_timeout = 2
[store]
url = "sqlite:///{tmp_path / "convo.db"}"
[flows]
paths = ["{DATA}"]
[[lines]]
number = "{LINE}"
provider = "telefoon_sms"
flow = "greet"
[providers.telefoon_sms]
api_key = "key"
webhook_secret = "{SECRET}"
base_url = "{str(fake.make_url("")).rstrip("/")}"
[outbox]
sweep_interval = 0.2
base_delay = 0.05
"""
    )
    proc, url = await start_server(config, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for n, person in enumerate(PEOPLE):
                body = json.dumps(
                    {
                        "id": f"in-{n}",
                        "status": "received",
                        "direction": "inbound",
                        "from": person,
                        "to": LINE,
                        "body": "hello",
                    }
                ).encode()
                resp = await http.post(
                    "/webhooks/telefoon_sms/inbound",
                    content=body,
                    headers={"Content-Type": "application/json", "X-Signature": sign(SECRET, body)},
                )
                assert resp.status_code == 200, resp.text
            await until(lambda: len(provider.attempts) == len(PEOPLE))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert provider.accepted == []

        provider.blocked = False
        proc, url = await start_server(config, tmp_path)
        await until(lambda: len(provider.accepted) >= len(PEOPLE))
        async with httpx.AsyncClient(base_url=url) as http:

            async def all_sent() -> bool:
                resp = await http.get(
                    "/api/messages",
                    params={"direction": "outbound"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                return all(m["status"] == "sent" for m in resp.json()["messages"])

            for _ in range(100):
                if await all_sent():
                    break
                await asyncio.sleep(0.05)
            assert await all_sent()
        await asyncio.sleep(0.3)  # room for a duplicate to show up, if there were one
        assert sorted(m["to"] for m in provider.accepted) == PEOPLE
        assert {m["body"] for m in provider.accepted} == {"What is your name?"}

        proc.send_signal(signal.SIGTERM)  # graceful this time
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fake.close()
