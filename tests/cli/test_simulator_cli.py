"""``convo simulator vonage --config convo.toml`` run as a user runs it (a subprocess): it
takes the credentials and secrets from the config, never prints a secret in full, and its
control API makes signed webhooks reach a small aiohttp server standing in for convo."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import SignatureError
from convo.providers.vonage_webhooks import check_signature

API_SECRET = "vs-api-secret-0001"
SIG_SECRET = "vsig-signing-secret-42"
METHOD = "sha256"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Convo:
    """Stands in for convo's webhook routes: keeps each request's Vonage fields."""

    def __init__(self) -> None:
        self.hooks: list[tuple[str, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = {k: str(v) for k, v in (await request.json()).items()}
        else:
            fields = {k: str(v) for k, v in (await request.post()).items()}
        self.hooks.append((request.match_info["kind"], fields))
        return web.Response(text="ok")


@pytest.fixture
async def convo_stand_in() -> AsyncIterator[tuple[Convo, str]]:
    convo = Convo()
    app = web.Application()
    app.router.add_post("/webhooks/vonage/{kind}", convo.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield convo, str(server.make_url("")).rstrip("/")


@pytest.fixture
def sim_port() -> int:
    return free_port()


@pytest.fixture
def simulator(
    tmp_path: Path, convo_stand_in: tuple[Convo, str], sim_port: int
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    _, convo_url = convo_stand_in
    config = tmp_path / "convo.toml"
    config.write_text(
        f"""\
[server]
public_url = "{convo_url}"

[flows]
paths = []

[[lines]]
number = "+32470000100"
provider = "vonage"
flow = "hello"

[providers.vonage]
api_key = "vk-local"
api_secret = "{API_SECRET}"
signature_secret = "{SIG_SECRET}"
signature_method = "{METHOD}"
base_url = "http://127.0.0.1:{sim_port}"
"""
    )
    log = tmp_path / "simulator.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "convo", "simulator", "vonage", "--port", str(sim_port),
             "--config", str(config)],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        yield proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def output(log: Path) -> str:
    return log.read_text()


async def wait_listening(client: httpx.AsyncClient, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"simulator exited {proc.returncode}: {output(log)}")
        try:
            if (await client.get("/_simulator/sent")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"simulator never listened: {output(log)}")


def signed(fields: dict[str, str]) -> None:
    check_signature(fields, SIG_SECRET, METHOD, window=300, now=time.time())


async def test_simulator_uses_the_config_and_signs_its_webhooks(
    simulator: tuple[subprocess.Popen[str], Path],
    convo_stand_in: tuple[Convo, str],
    sim_port: int,
) -> None:
    proc, log = simulator
    convo, convo_url = convo_stand_in
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=10) as client:
        await wait_listening(client, proc, log)

        # A phone texts convo: the webhook arrives signed with the config's secret.
        answer = await client.post(
            "/_simulator/inbound", json={"from": "+32470123456", "to": "+32470000100",
                                         "text": "hello"},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": 200, "url": f"{convo_url}/webhooks/vonage/inbound"}
        [(kind, fields)] = convo.hooks
        assert kind == "inbound"
        assert fields["msisdn"] == "32470123456" and fields["text"] == "hello"
        signed(fields)
        with pytest.raises(SignatureError):  # signed with that secret, not any other
            check_signature(fields, "another-secret", METHOD, window=300, now=time.time())

        # convo sends with the config's credentials; a receipt for it arrives signed.
        send = await client.post(
            "/sms/json",
            data={"api_key": "vk-local", "api_secret": API_SECRET, "from": "32470000100",
                  "to": "32470123456", "text": "Hi!", "client-ref": "m-1"},
        )  # fmt: skip
        [part] = send.json()["messages"]
        assert part["status"] == "0", part
        [listed] = (await client.get("/_simulator/sent")).json()["messages"]
        assert listed["message_id"] == part["message-id"] and listed["text"] == "Hi!"
        assert API_SECRET not in str(listed)
        answer = await client.post(
            "/_simulator/status", json={"message_id": part["message-id"], "status": "delivered"}
        )
        assert answer.status_code == 200 and answer.json()["status"] == 200, answer.text
        kind, receipt = convo.hooks[-1]
        assert kind == "status"
        assert receipt["messageId"] == part["message-id"] and receipt["status"] == "delivered"
        assert receipt["client-ref"] == "m-1"
        signed(receipt)

        wrong = await client.post(
            "/sms/json", data={"api_key": "test-key", "api_secret": "test-secret",
                               "from": "32470000100", "to": "32470123456", "text": "x"},
        )  # fmt: skip
        assert wrong.json()["messages"][0]["status"] == "4"  # not the built-in defaults

    proc.terminate()
    proc.wait(timeout=10)
    banner = output(log)
    assert f"vonage simulator on http://127.0.0.1:{sim_port}" in banner
    assert f"webhooks to: {convo_url}/webhooks/vonage/" in banner
    assert "[providers.vonage]" in banner and "signature_method=sha256" in banner
    assert API_SECRET not in banner and SIG_SECRET not in banner
    assert "vs******" in banner and "vk-local" not in banner


def test_an_unknown_provider_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convo", "simulator", "nosuch", "--port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no simulator for 'nosuch'" in result.stderr and "vonage" in result.stderr
