"""The provider registry, kind resolution, callback URLs and the adapters' start hook."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer

from convo.config import ProviderSection
from convo.exceptions import ConfigError
from convo.providers.callbacks import callback_url, webhook_path
from convo.providers.registry import (
    create_provider,
    kinds,
    lookup,
    provider_kind,
)
from convo.simulators.enco import EncoSimulator
from tests.providers.kinds import MINIMAL

PUBLIC = "https://bot.example.com/"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


def test_every_kind_is_known_and_the_table_is_complete() -> None:
    assert kinds() == sorted(MINIMAL)
    assert kinds("voice") == ["sandbox_voice", "telefoon_voice", "twilio_voice", "vonage_voice"]
    assert set(kinds("sms")) | set(kinds("voice")) == set(kinds())


def test_the_kind_is_the_type_option_else_the_section_name() -> None:
    assert provider_kind("backup", {"type": "vonage", "api_key": "k"}) == "vonage"
    assert provider_kind("vonage", {"api_key": "k"}) == "vonage"
    assert provider_kind("sandbox", None) == "sandbox"
    with pytest.raises(ConfigError, match=r"unknown provider 'vonnage' \(did you mean 'vonage'"):
        lookup(provider_kind("vonnage", {}))


def test_a_second_account_of_a_kind_gets_its_own_section_name() -> None:
    options = {"type": "telefoon_sms", **MINIMAL["telefoon_sms"]}
    adapter = create_provider("backup", options, httpx.AsyncClient(), public_url=PUBLIC)
    assert (adapter.kind, adapter.name) == ("telefoon_sms", "backup")


def test_callback_urls_come_from_the_public_url() -> None:
    assert webhook_path("{provider}", "voice/input") == "/webhooks/{provider}/voice/input"
    assert (
        callback_url(PUBLIC, "vonage", "status") == "https://bot.example.com/webhooks/vonage/status"
    )
    assert (
        callback_url("http://h:1", "enco", "status", {"ref": "a b/c", "token": "f00"})
        == "http://h:1/webhooks/enco/status?ref=a%20b/c&token=f00"
    )


async def test_adapters_hand_out_the_callback_urls_of_the_one_builder() -> None:
    async with httpx.AsyncClient() as client:
        vonage = create_provider("vonage", MINIMAL["vonage"], client, public_url=PUBLIC)
        voice = create_provider(
            "telefoon_voice", MINIMAL["telefoon_voice"], client, public_url=PUBLIC
        )
        enco = create_provider("enco", MINIMAL["enco"], client, public_url=PUBLIC)
    assert vonage.status_url == callback_url(PUBLIC, "vonage", "status")
    assert voice.webhook_url("input") == callback_url(PUBLIC, "telefoon_voice", "voice/input")
    assert enco.callback_url("m1").startswith(callback_url(PUBLIC, "enco", "status") + "?ref=m1&")


# -- start-up work: Enco's dedicated address -----------------------------------------------


@pytest.fixture
async def enco_sim() -> AsyncIterator[str]:
    sim = EncoSimulator(client_id="ec", client_secret="es", dedicated_addresses=["8888"])
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def enco_section(base_url: str, **options: Any) -> ProviderSection:
    values = {"client_id": "ec", "client_secret": "es", "token_url": f"{base_url}/token",
              "base_url": base_url, "address": "8888"} | options  # fmt: skip
    return ProviderSection(values, "convo.toml")


async def test_enco_start_accepts_an_address_of_the_account(enco_sim: str) -> None:
    async with httpx.AsyncClient() as client:
        await create_provider("enco", enco_section(enco_sim), client).start()


async def test_enco_start_refuses_an_address_of_another_account(enco_sim: str) -> None:
    async with httpx.AsyncClient() as client:
        adapter = create_provider(
            "sms2", enco_section(enco_sim, type="enco", address="7777"), client
        )
        with pytest.raises(ConfigError, match=r"^convo.toml: \[providers.sms2\] address: '7777'"):
            await adapter.start()


async def test_enco_start_refused_credentials_name_the_section(enco_sim: str) -> None:
    async with httpx.AsyncClient() as client:
        adapter = create_provider("enco", enco_section(enco_sim, client_secret="nope"), client)
        with pytest.raises(ConfigError, match=r"^convo.toml: \[providers.enco\]: ") as caught:
            await adapter.start()
    assert "nope" not in str(caught.value)


async def test_enco_start_only_warns_when_enco_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    async with httpx.AsyncClient() as client:
        adapter = create_provider("enco", enco_section(down), client)
        with caplog.at_level(logging.WARNING):
            await adapter.start()
    assert "enco: dedicated address not checked" in caplog.text
