"""The provider contract: what every provider kind of the registry promises, whatever its
wire format, in one class parametrised over :func:`convo.providers.registry.kinds`.

Each kind (``tests/providers/kinds.py`` says how to configure and sign for it):

* declares the kind, channel, options and webhook routes of its registry entry and builds
  an adapter of its channel's protocol from its smallest section;
* names the section and key of an option it does not know;
* keeps its secrets out of its ``repr``;
* follows the one signature rule (``convo.providers.signing``) on every webhook route it
  declares, on a real server over a real SQLite file: with a secret configured an unsigned
  webhook is refused (401, nothing stored or kept) even with ``allow_unsigned``, and a
  signed one passes the check; without a secret ``allow_unsigned`` lets webhooks in;
* has a simulator (``convo simulator KIND``) built from the same section convo uses, so
  each accepts the other (the sandbox is its own simulator, inside convo).

Conversations over each simulator are the end-to-end suites, parametrised over every
provider of their channel: ``tests/e2e/test_sms_providers.py`` (a two-way text
conversation, delivery receipts) and ``tests/e2e/test_voice_providers.py`` (the example
IVR flows, unchanged, on every voice provider).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from convo.config import ProviderSection, parse_settings
from convo.exceptions import ConfigError
from convo.models import CHANNELS
from convo.providers.base import Provider, SmsProvider, VoiceProvider
from convo.providers.callbacks import SMS_ROUTES, VOICE_ROUTES
from convo.providers.registry import adapter_class, create_provider, kinds, lookup
from convo.simulators import SIMULATORS
from convo.simulators._launch import plan
from convo.store.base import MessageQuery
from convo.web.app import create_app
from convo.web.state import RUNTIME
from tests.providers.kinds import KINDS, MINIMAL, SECRET, request_for
from tests.web.conftest import make_settings

PUBLIC = "https://bot.example.com/"


def test_every_registered_kind_is_in_the_suite() -> None:
    assert sorted(MINIMAL) == sorted(KINDS) == kinds()


async def client_for(
    aiohttp_client: Any, tmp_path: Path, kind: str, options: dict[str, Any]
) -> Any:
    settings = make_settings(tmp_path, providers={kind: {**options, "allow_unsigned": True}})
    return await aiohttp_client(create_app(settings))


@pytest.mark.parametrize("kind", kinds())
class TestProviderContract:
    async def test_it_declares_what_its_registry_entry_says(self, kind: str) -> None:
        cls = adapter_class(kind)
        entry = lookup(kind)
        assert (cls.kind, cls.channel) == (entry.kind, entry.channel)
        assert cls.channel in CHANNELS
        assert "type" not in cls.config_options and set(MINIMAL[kind]) <= cls.config_options
        assert set(cls.routes) <= set(SMS_ROUTES if cls.channel == "sms" else VOICE_ROUTES)
        async with httpx.AsyncClient() as client:
            adapter = create_provider(kind, MINIMAL[kind], client, public_url=PUBLIC)
            assert isinstance(adapter, Provider)
            protocol = SmsProvider if cls.channel == "sms" else VoiceProvider
            assert isinstance(adapter, protocol)
            assert adapter.name == kind

    def test_an_unknown_option_names_the_section_and_key(self, kind: str) -> None:
        section = ProviderSection(MINIMAL[kind] | {"colour": "blue"}, "convo.toml")
        with pytest.raises(ConfigError, match=r"\[providers\.\w+\].*colour"):
            create_provider(kind, section, httpx.AsyncClient())

    async def test_its_repr_holds_no_secret(self, kind: str) -> None:
        async with httpx.AsyncClient() as client:
            adapter = create_provider(kind, KINDS[kind].with_secret, client, public_url=PUBLIC)
        assert kind in repr(adapter) or type(adapter).__name__ in repr(adapter)
        assert SECRET not in repr(adapter) and "PRIVATE KEY" not in repr(adapter)

    async def test_with_a_secret_unsigned_webhooks_are_refused_despite_allow_unsigned(
        self, aiohttp_client: Any, tmp_path: Path, kind: str
    ) -> None:
        client = await client_for(aiohttp_client, tmp_path, kind, KINDS[kind].with_secret)
        routes = adapter_class(kind).routes
        assert routes
        for route in routes:
            path, kwargs = request_for(kind, route, signed=False)
            response = await client.post(path, **kwargs)
            assert response.status == 401, (kind, route, await response.text())
            assert (await response.json())["error"].startswith(f"{kind}: ")
        # the unsigned ones changed nothing and were not kept
        found, _ = await client.app[RUNTIME].store.list_messages(MessageQuery(page_size=10))
        assert found == []
        assert list((tmp_path / "rejected").glob("*")) == []
        for route in routes:  # signed, they pass the check (and are then read: 200 or 400)
            path, kwargs = request_for(kind, route, signed=True)
            response = await client.post(path, **kwargs)
            assert response.status in (200, 400), (kind, route, await response.text())

    async def test_without_a_secret_allow_unsigned_lets_webhooks_in(
        self, aiohttp_client: Any, tmp_path: Path, kind: str
    ) -> None:
        options = KINDS[kind].without_secret
        if options is None:
            pytest.skip(f"{kind} always has a key to check webhooks with")
        client = await client_for(aiohttp_client, tmp_path, kind, options)
        for route in adapter_class(kind).routes:
            path, kwargs = request_for(kind, route, signed=False)
            response = await client.post(path, **kwargs)
            assert response.status in (200, 400), (kind, route, await response.text())

    def test_its_simulator_is_built_from_its_section(self, kind: str) -> None:
        if kind in ("sandbox", "sandbox_voice"):
            assert kind not in SIMULATORS  # the sandbox simulates phones inside convo
            return
        section = KINDS[kind].with_secret | {"base_url": "http://127.0.0.1:9137"}
        settings = parse_settings(
            {"server": {"public_url": "http://127.0.0.1:8099"}, "providers": {kind: section}},
            source="sim.toml",
            env={},
        )
        launch = plan(kind, settings)
        assert (launch.kind, launch.name, launch.port) == (kind, kind, 9137)
        assert launch.webhook_url == "http://127.0.0.1:8099"
        credentials = launch.simulator.credentials()
        shared = {k: v for k, v in section.items() if k in credentials}
        assert shared and all(credentials[k] == v for k, v in shared.items())
        banner = "\n".join(launch.describe())
        assert SECRET not in banner
