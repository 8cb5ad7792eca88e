"""Several real ``convo serve`` processes on one PostgreSQL schema, and a Vonage simulator.

Each test gets a schema of its own in the test database (``tests.conftest.postgres_schema``:
``CONVO_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``), dropped
after. The simulator runs
in the test's event loop and keeps every send it accepted (``sim.sent``): that is what a
person's phone got. Texts go in as Vonage posts them (signed form fields), to whichever
process the test picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from convo.providers.vonage_webhooks import signature
from convo.simulators.vonage import VonageSimulator
from tests.conftest import postgres_schema

CONVO = Path(sys.executable).parent / "convo"
LINE = "+3225550120"
KEY, SECRET, SIG = "wk", "ws", "wsig"


def inbound_body(sender: str, text: str) -> bytes:
    """One inbound SMS webhook, as Vonage posts it (form fields, signed with sha256)."""
    fields = {
        "api-key": KEY,
        "msisdn": sender.lstrip("+"),
        "to": LINE.lstrip("+"),
        "messageId": uuid.uuid4().hex[:16].upper(),
        "text": text,
        "type": "text",
        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "timestamp": str(int(time.time())),
        "nonce": uuid.uuid4().hex,
    }
    fields["sig"] = signature(fields, SIG, "sha256")
    return urlencode(fields).encode()


def contact(index: int) -> str:
    return f"+3247{index:07d}"


@dataclass
class Server:
    """One ``convo serve`` process (or a ``--workers`` parent) and what it said."""

    process: asyncio.subprocess.Process
    url: str = ""
    err: bytearray = field(default_factory=bytearray)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


@dataclass
class Cluster:
    """The simulator and the ``convo serve`` processes of one test, on one schema."""

    tmp: Path
    store_url: str
    sim: VonageSimulator
    sim_url: str
    servers: list[Server] = field(default_factory=list)

    def config(self, flow: str, *, metrics_port: int = 0, **outbox: float) -> Path:
        path = self.tmp / "convo.toml"
        box = "".join(f"{k} = {v}\n" for k, v in outbox.items())
        path.write_text(
            f"""
[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 3

[store]
url = "{self.store_url}"

[flows]
paths = ["{self.tmp / "flow.yaml"}"]

[[lines]]
number = "{LINE}"
provider = "vonage"
flow = "{flow}"

[providers.vonage]
api_key = "{KEY}"
api_secret = "{SECRET}"
signature_secret = "{SIG}"
signature_method = "sha256"
base_url = "{self.sim_url}"
rate_limit = 10000

[logging]
level = "warning"
access_log = false

[webhooks]
rejected_dir = "{self.tmp / "rejected"}"

[metrics]
port = {metrics_port}

[outbox]
sweep_interval = 0.2
base_delay = 0.05
max_delay = 0.5
{box}""",
            encoding="utf-8",
        )
        return path

    async def start(self, config: Path, *args: str, timeout: float = 60) -> Server:
        """``convo serve --config CONFIG ARGS`` until it says where it serves."""
        process = await asyncio.create_subprocess_exec(
            str(CONVO),
            *("serve", "--config", str(config), *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.tmp,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        server = Server(process)
        self.servers.append(server)
        assert process.stdout is not None and process.stderr is not None
        asyncio.get_running_loop().create_task(_collect(process.stderr, server.err))
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        assert line.startswith(b"convo: serving on "), (line, bytes(server.err).decode())
        server.url = line.decode().split()[3]
        return server

    def replies(self) -> dict[str, list[str]]:
        """What each contact's phone got, in the order the provider took it."""
        got: dict[str, list[str]] = defaultdict(list)
        for send in self.sim.sent:
            got["+" + str(send["to"]).lstrip("+")].append(str(send["text"]))
        return got

    async def pending(self) -> tuple[int, int, int]:
        """(outbound messages queued or being sent, inbound messages not yet turned,
        timers not yet fired)."""
        cx = await asyncpg.connect(self.store_url, timeout=5)
        try:
            queued = await cx.fetchval(
                "SELECT count(*) FROM messages WHERE direction = 'outbound' "
                "AND status IN ('queued', 'sending')"
            )
            unturned = await cx.fetchval(
                "SELECT count(*) FROM messages WHERE direction = 'inbound' AND processed = 0"
            )
            timers = await cx.fetchval("SELECT count(*) FROM sessions WHERE timer_due IS NOT NULL")
        finally:
            await cx.close()
        return int(queued), int(unturned), int(timers)


async def _collect(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(4096):
        into += chunk


@contextlib.asynccontextmanager
async def cluster(tmp: Path, flow_text: str) -> AsyncIterator[Cluster]:
    """A schema, the simulator and (as the test starts them) ``convo serve`` processes;
    every process is stopped (killed if it must) and the schema dropped afterwards."""
    (tmp / "flow.yaml").write_text(flow_text, encoding="utf-8")
    sim = VonageSimulator(
        api_key=KEY, api_secret=SECRET, signature_secret=SIG, signature_method="sha256"
    )
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    try:
        async with postgres_schema() as url:
            world = Cluster(tmp, url, sim, str(server.make_url("")).rstrip("/"))
            try:
                yield world
            finally:
                for proc in world.servers:
                    await proc.stop(signal.SIGKILL)
    finally:
        await server.close()


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with http.post(
        f"{url}/webhooks/vonage/inbound",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        await response.read()
        return response.status


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=30)
    )
