"""Each SMS simulator's ``/_simulator/`` control API, driven over HTTP against convo's real
server (harness: ``tests/e2e/sms_world``), the way a ``convo simulator`` user drives it:
the phone texts convo (``POST /_simulator/inbound``; Enco: queued for convo's poll), convo's
reply shows in ``GET /_simulator/sent``, ``POST /_simulator/status`` reports it delivered
(signed like the provider signs) and convo's admin API shows ``delivered``. Plus how
``convo simulator`` builds a simulator from a convo.toml (``simulators._launch``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from convo.config import parse_settings
from convo.simulators._launch import DEFAULT_PORT, mask, plan
from tests.e2e.sms_world import PHONE, PROVIDERS, World, eventually, running_world


def sim_url(world: World) -> str:
    return str(world.settings.providers[world.provider.name]["base_url"]).rstrip("/")


async def sent(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        response = await client.get("/_simulator/sent")
        assert response.status_code == 200
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages if len(messages) >= count else None

    return await eventually(probe, f"{count} message(s) in /_simulator/sent")


async def text_in(client: httpx.AsyncClient, name: str, line: str, text: str) -> None:
    answer = await client.post(
        "/_simulator/inbound", json={"from": PHONE, "to": line, "text": text}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if name == "enco":  # no inbound webhook: queued where convo's poll finds it
        assert body["queued"] is True and body["status"] is None
    else:  # delivered to convo's webhook and accepted: the signature was right
        assert body["status"] == 200, body
        assert body["url"].endswith(f"/webhooks/{name}/inbound")


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_a_conversation_driven_through_the_control_api(tmp_path: Path, name: str) -> None:
    async with (
        running_world(tmp_path, PROVIDERS[name]()) as world,
        httpx.AsyncClient(base_url=sim_url(world)) as client,
    ):
        line = world.provider.line
        await text_in(client, name, line, "hello")
        [first] = await sent(client, 1)
        assert first["text"] == "Hi! What is your name?"
        assert first["to"].lstrip("+") == PHONE.lstrip("+")
        assert "api_secret" not in first and "api_key" not in first

        answer = await client.post(
            "/_simulator/status", json={"message_id": first["message_id"], "status": "delivered"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == 200  # convo accepted the (signed) receipt
        record = await world.outbound_with_status(first["message_id"], "delivered")
        assert record["provider"] == name and record["to"] == PHONE

        await text_in(client, name, line, "Ann")
        second = (await sent(client, 2))[1]
        assert second["text"] == "Thanks Ann. What is your favourite colour?"
        await world.outbound_with_status(second["message_id"], "sent")

        unknown = await client.post("/_simulator/status", json={"message_id": "nope"})
        assert unknown.status_code == 404
        bad = await client.post(
            "/_simulator/status", json={"message_id": second["message_id"], "status": "lost"}
        )
        assert bad.status_code == 400 and "unknown status" in bad.json()["error"]
        assert (await client.post("/_simulator/inbound", json={"from": PHONE})).status_code == 400


@pytest.mark.parametrize("name", sorted(PROVIDERS))
async def test_auto_status_delivers_every_send(tmp_path: Path, name: str) -> None:
    provider = PROVIDERS[name]()
    provider.sim.auto_status = True
    provider.sim.status_delay = 0.05
    async with (
        running_world(tmp_path, provider) as world,
        httpx.AsyncClient(base_url=sim_url(world)) as client,
    ):
        await text_in(client, name, provider.line, "hello")
        [first] = await sent(client, 1)
        await world.outbound_with_status(first["message_id"], "delivered")


CONFIG: dict[str, dict[str, Any]] = {
    "vonage": {"api_key": "vk-1234", "api_secret": "vs-secret-1", "signature_secret": "sig-9876",
               "signature_method": "sha256", "base_url": "http://127.0.0.1:9101"},
    "telefoon_sms": {"api_key": "tk-abcdef", "webhook_secret": "wh-secret",
                     "base_url": "http://localhost:9102/"},
    "telefonie_sms": {"api_key": "tk-abcdef", "webhook_secret": "wh-secret",
                      "base_url": "https://api.telefonie.example"},
    "enco": {"client_id": "ec-id", "client_secret": "ec-secret-77", "address": "8123",
             "base_url": "http://127.0.0.1:9104", "token_url": "http://127.0.0.1:9104/token"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CONFIG))
def test_launch_takes_credentials_and_webhook_url_from_the_config(name: str) -> None:
    settings = parse_settings(
        {"server": {"public_url": "http://127.0.0.1:8181"}, "lines": [],
         "providers": {name: CONFIG[name]}},
        source="convo.toml", env={},
    )  # fmt: skip
    launch = plan(name, settings)
    sim = launch.simulator
    assert launch.webhook_url == "http://127.0.0.1:8181"
    assert sim.webhook_base == "http://127.0.0.1:8181"
    creds = sim.credentials()
    for key, value in CONFIG[name].items():
        if key in creds and key != "address":
            assert creds[key] == value, key
    banner = "\n".join(launch.describe())
    assert "convo.toml [providers." in banner
    for key, value in CONFIG[name].items():
        if "secret" in key or key == "api_key":
            assert value not in banner, f"{key} printed in full"
    base = CONFIG[name]["base_url"]
    expected_port = DEFAULT_PORT if base.startswith("https") else int(base.split(":")[2][:4])
    assert launch.port == expected_port
    assert ("set it to" in banner) == (base.rstrip("/") != launch.url)
    if name == "enco":
        assert sim.dedicated_addresses == ["8123"]


def test_launch_without_a_section_keeps_the_defaults_and_overrides_apply() -> None:
    defaults = parse_settings({}, source="<defaults>", env={})
    launch = plan("vonage", defaults)
    assert (launch.port, launch.webhook_url) == (DEFAULT_PORT, "http://127.0.0.1:8080")
    assert launch.simulator.credentials()["api_key"] == "test-key"
    assert "development defaults" in "\n".join(launch.describe())
    named = parse_settings(
        {"lines": [], "providers": {"vonage_be": {"type": "vonage", "api_key": "k2",
                                                  "allow_unsigned": True}}},
        source="convo.toml", env={},
    )  # fmt: skip
    launch = plan("vonage", named, port=9200, webhook_url="http://10.0.0.5:8000/")
    assert launch.name == "vonage_be" and launch.simulator.provider_name == "vonage_be"
    assert (launch.port, launch.webhook_url) == (9200, "http://10.0.0.5:8000")
    assert "webhooks go unsigned" in "\n".join(launch.describe())
    assert mask("") == "(none)" and mask("abc") == "**** (3 chars)"
    assert mask("supersecret").startswith("su******") and "persecret" not in mask("supersecret")
