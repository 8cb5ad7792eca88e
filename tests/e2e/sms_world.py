"""The SMS end-to-end harness: a provider's simulator and convo's real server on loopback.

:func:`running_world` starts two real aiohttp servers: the simulator (the provider's API,
which also calls convo's webhooks, signed like the real provider) and convo (``create_app``
on a SQLite file, one line on that provider, signed webhooks, ``public_url`` = its own
loopback URL, an admin token). :class:`Provider` subclasses know each simulator's knobs and
record shapes; :class:`World` reads convo's admin API. :func:`eventually` is the only way the
tests wait: a bounded poll, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.config import Settings, parse_settings
from convo.simulators._telefoon_common import TelefoonFamilySimulator
from convo.simulators.enco import EncoSimulator
from convo.simulators.telefonie_sms import TelefonieSmsSimulator
from convo.simulators.telefoon_sms import TelefoonSmsSimulator
from convo.simulators.twilio_sms import TwilioSmsSimulator
from convo.simulators.vonage import VonageSimulator
from convo.web.app import create_app

DATA = Path(__file__).parent / "data"
TOKEN = "e2e-admin-token"
PHONE = "+32470123456"
LINE = "+3225550120"
ENCO_ADDRESS = "8888"
TWILIO_ACCOUNT = "AC" + "1" * 32
T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 5.0
) -> T:
    """``probe()``'s first truthy result, asked every 20 ms for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class Provider:
    """One provider's simulator, config and the way its records look, for the tests."""

    name: ClassVar[str]
    default_line: ClassVar[str] = LINE
    flow: ClassVar[str] = "sms_two_questions"

    def __init__(self, *, line: str | None = None, **options: Any) -> None:
        """``line`` replaces the class's line; ``options`` add to (or replace) the
        provider's config options."""
        self.sim: Any = self.simulator()
        self.line = line or self.default_line
        self.extra_options = options

    def simulator(self) -> Any:
        raise NotImplementedError

    def base_options(self, sim_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def options(self, sim_url: str) -> dict[str, Any]:
        return self.base_options(sim_url) | self.extra_options

    def text(self, index: int) -> str:
        """The text of the ``index``-th message convo sent (0-based)."""
        raise NotImplementedError

    def message_id(self, index: int) -> str:
        """The provider's id of the ``index``-th message convo sent."""
        raise NotImplementedError

    async def text_in(self, text: str) -> None:
        status = await self.sim.deliver_inbound(PHONE, self.line, text)
        assert status == 200

    async def delivered(self, index: int) -> None:
        assert await self.sim.deliver_status(self.message_id(index)) == 200


class Vonage(Provider):
    name = "vonage"

    def simulator(self) -> VonageSimulator:
        return VonageSimulator(
            api_key="vk", api_secret="vs", signature_secret="vsig", signature_method="sha256"
        )

    def base_options(self, sim_url: str) -> dict[str, Any]:
        return {"api_key": "vk", "api_secret": "vs", "signature_secret": "vsig",
                "signature_method": "sha256", "base_url": sim_url}  # fmt: skip

    def text(self, index: int) -> str:
        return str(self.sim.sent[index]["text"])

    def message_id(self, index: int) -> str:
        return str(self.sim.sent[index]["message-ids"][0])

    async def delivered(self, index: int) -> None:
        # A long reply goes out in parts, each with its own receipt: delivered means all.
        for part in self.sim.sent[index]["message-ids"]:
            assert await self.sim.deliver_status(part) == 200


class TelefoonSms(Provider):
    name = "telefoon_sms"

    def simulator(self) -> TelefoonFamilySimulator:
        return TelefoonSmsSimulator(api_key="tk", webhook_secret="tsig")

    def base_options(self, sim_url: str) -> dict[str, Any]:
        return {"api_key": "tk", "webhook_secret": "tsig", "base_url": sim_url}

    def outbound(self, index: int) -> dict[str, Any]:
        sent = [m for m in self.sim.messages.values() if m["direction"] == "outbound"]
        return dict(sent[index])

    def text(self, index: int) -> str:
        return str(self.sim.sent[index]["body"])

    def message_id(self, index: int) -> str:
        return str(self.outbound(index)["id"])


class TelefonieSms(TelefoonSms):
    name = "telefonie_sms"
    flow = "mms_two_questions"

    def simulator(self) -> TelefoonFamilySimulator:
        return TelefonieSmsSimulator(api_key="tk", webhook_secret="tsig")


class Enco(Provider):
    name = "enco"
    default_line = ENCO_ADDRESS

    def simulator(self) -> EncoSimulator:
        return EncoSimulator(client_id="ec", client_secret="es", dedicated_addresses=["8888"])

    def base_options(self, sim_url: str) -> dict[str, Any]:
        return {"client_id": "ec", "client_secret": "es", "token_url": f"{sim_url}/token",
                "base_url": sim_url, "address": ENCO_ADDRESS, "poll_interval": 0.05,
                "callback_secret": "ecb"}  # fmt: skip

    def text(self, index: int) -> str:
        return str(self.sim.sent[index]["message"])

    def message_id(self, index: int) -> str:
        return str(self.sim.sent[index]["id"])

    async def text_in(self, text: str) -> None:
        self.sim.queue_inbound(PHONE, self.line, text)  # convo's poll loop fetches it


class Twilio(Provider):
    name = "twilio"

    def simulator(self) -> TwilioSmsSimulator:
        return TwilioSmsSimulator(account_sid=TWILIO_ACCOUNT, auth_token="twt")

    def base_options(self, sim_url: str) -> dict[str, Any]:
        return {"account_sid": TWILIO_ACCOUNT, "auth_token": "twt", "base_url": sim_url}

    def text(self, index: int) -> str:
        return str(self.sim.sent[index]["body"])

    def message_id(self, index: int) -> str:
        return str(self.sim.sent[index]["sid"])


PROVIDERS: dict[str, type[Provider]] = {
    p.name: p for p in (Vonage, TelefoonSms, TelefonieSms, Enco, Twilio)
}


def settings_for(
    tmp_path: Path,
    provider: Provider,
    public_url: str,
    sim_url: str,
    store_url: str | None = None,
    **outbox: Any,
) -> Settings:
    doc = {
        "server": {"public_url": public_url, "api_token": TOKEN, "shutdown_timeout": 5},
        "store": {"url": store_url or f"sqlite:///{tmp_path / 'convo.db'}"},
        "flows": {"paths": [str(DATA / f"{provider.flow}.yaml")]},
        "lines": [{"number": provider.line, "provider": provider.name, "flow": provider.flow}],
        "providers": {provider.name: provider.options(sim_url)},
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        "outbox": {"sweep_interval": 0.2, "base_delay": 0.01, "max_delay": 0.05, **outbox},
    }
    return parse_settings(doc, source="e2e.toml", env={})


@dataclass
class World:
    provider: Provider
    url: str  # convo's base URL (= public_url)
    settings: Settings
    runner: web.AppRunner | None = None

    @property
    def sim(self) -> Any:
        return self.provider.sim

    async def start(self, sock: socket.socket) -> None:
        self.runner = web.AppRunner(create_app(self.settings), access_log=None)
        try:
            await self.runner.setup()
        except BaseException:
            sock.close()
            raise
        await web.SockSite(self.runner, sock).start()

    async def restart(self) -> None:
        """Stop convo and start it again over the same database, on a new port."""
        await self.stop()
        sock, self.url = bound_socket()
        await self.start(sock)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def api(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers) as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def messages(self) -> list[dict[str, Any]]:
        body = await self.api(f"/api/messages?number=%2B{PHONE[1:]}&page_size=100")
        return list(reversed(body["messages"]))  # oldest first

    async def sent_count(self, count: int) -> bool:
        return len(self.sim.sent) >= count

    async def reply(self, index: int) -> str:
        await eventually(lambda: self.sent_count(index + 1), f"reply {index + 1}")
        return self.provider.text(index)

    async def outbound_with_status(self, provider_id: str, status: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            for m in await self.messages():
                if m["provider_message_id"] == provider_id and m["status"] == status:
                    return m
            return None

        return await eventually(probe, f"message {provider_id} {status} in the admin API")


def bound_socket() -> tuple[socket.socket, str]:
    """convo's socket, bound first so its URL (public_url) is known before it starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def running_world(
    tmp_path: Path, provider: Provider, store_url: str | None = None, **outbox: Any
) -> AsyncIterator[World]:
    """The provider's simulator and convo, both serving on loopback, until the block ends.
    ``store_url`` replaces the SQLite file; ``outbox`` adds ``[outbox]`` settings (e.g.
    ``reconcile_after``)."""
    sim_server = TestServer(provider.sim.app, host="127.0.0.1")
    await sim_server.start_server()
    world: World | None = None
    try:
        sock, url = bound_socket()
        sim_url = str(sim_server.make_url("")).rstrip("/")
        settings = settings_for(tmp_path, provider, url, sim_url, store_url, **outbox)
        world = World(provider, url, settings)
        provider.sim.webhook_base = url
        await world.start(sock)
        yield world
    finally:
        if world is not None:
            await world.stop()
        await sim_server.close()
