"""The composition root: what a Runtime builds for each command, in which order, and that a
failed start closes what had started. Real SQLite files, the real Enco simulator."""

from __future__ import annotations

import dataclasses
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from convo.config import Settings, StoreSettings, parse_settings
from convo.exceptions import ConfigError, FlowError
from convo.models import ConversationKey
from convo.providers.enco import EncoSms
from convo.providers.http import DEFAULT_CONNECTIONS, ProviderClient
from convo.providers.sandbox import SandboxSms
from convo.providers.telefoon_voice import TelefoonVoice
from convo.runtime import DIALER, ERASER, SERVER, Runtime
from convo.simulators.enco import EncoSimulator
from convo.store.sqlite import SqliteStore

DATA = Path(__file__).parent / "web" / "data"
LINE, VOICE_LINE, ALICE = "+32460000101", "+3225550111", "+32470000001"


def settings(tmp_path: Path, **tables: Any) -> Settings:
    doc: dict[str, Any] = {
        "server": {"public_url": "http://127.0.0.1:9", "shutdown_timeout": 2},
        "store": {"url": f"sqlite:///{tmp_path / 'db' / 'convo.db'}"},
        "flows": {"paths": [str(DATA)]},
        "lines": [{"number": LINE, "provider": "sandbox", "flow": "greet"}],
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
    } | tables
    return parse_settings(doc, source="test.toml", env={})


def with_voice(tmp_path: Path) -> Settings:
    lines = [
        {"number": LINE, "provider": "sandbox", "flow": "greet"},
        {"number": VOICE_LINE, "provider": "sandbox", "voice_provider": "phone",
         "channels": ["sms", "voice"], "flow": "greet"},
    ]  # fmt: skip
    phone = {"type": "telefoon_voice", "api_key": "k", "webhook_secret": "w"}
    return settings(tmp_path, lines=lines, providers={"phone": phone})


async def test_each_provider_gets_its_own_client_with_a_pool_of_the_outbox_concurrency(
    tmp_path: Path,
) -> None:
    lines = [
        {"number": LINE, "provider": "vonage", "flow": "greet"},
        {"number": VOICE_LINE, "provider": "sandbox", "voice_provider": "phone",
         "channels": ["sms", "voice"], "flow": "greet"},
    ]  # fmt: skip
    providers = {
        "phone": {"type": "telefoon_voice", "api_key": "k", "webhook_secret": "w"},
        "vonage": {"api_key": "k", "api_secret": "s", "allow_unsigned": True},
    }
    given = settings(tmp_path, lines=lines, providers=providers, outbox={"concurrency": 7})
    async with Runtime(given, parts=SERVER) as runtime:
        texts = runtime.providers["vonage"]._client  # type: ignore[attr-defined]
        calls = runtime.voice_providers["phone"]._client  # type: ignore[attr-defined]
        assert isinstance(texts, ProviderClient) and isinstance(calls, ProviderClient)
        assert texts is not calls
        assert texts.connections == 7  # the outbox's send slots
        assert calls.connections == DEFAULT_CONNECTIONS  # calls are not the outbox's


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


def non_daemon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive() and not t.daemon}


async def test_a_server_runtime_builds_every_part(tmp_path: Path) -> None:
    async with Runtime(with_voice(tmp_path), parts=SERVER) as runtime:
        assert set(runtime.flows) == {"greet"}
        assert isinstance(runtime.providers["sandbox"], SandboxSms)
        assert isinstance(runtime.voice_providers["phone"], TelefoonVoice)
        assert "phone" not in runtime.providers  # a voice provider never sends texts
        assert [loop.name for loop in runtime.loops] == [
            *("timers", "long texts", "backpressure", "prune seen")
        ]
        key = ConversationKey(LINE, "sms", ALICE)
        replies = await runtime.engine.start(key, "greet")
        assert [r.text for r in replies] == ["What is your name?"]
        assert await runtime.outbox.drain(2)  # the sandbox "delivered" it
        assert runtime.status() == dict.fromkeys(
            [
                *("outbox", "inbound recovery", "timers", "long texts", "backpressure"),
                *("prune seen", "flow versions", "campaigns"),
            ],
            True,
        )
        sent = runtime.providers["sandbox"]
        assert isinstance(sent, SandboxSms)
        assert [m["text"] for m in sent.messages_for(ALICE)] == ["What is your name?"]
        assert runtime.calls.engine is runtime.engine
        assert await runtime.store.ping()
    with pytest.raises(RuntimeError, match="has no store"):
        runtime.store  # noqa: B018  # closed: its parts are gone with it


async def test_each_command_gets_only_its_parts(tmp_path: Path) -> None:
    async with Runtime(with_voice(tmp_path), parts=DIALER) as dialer:
        assert dialer.providers == {} and set(dialer.voice_providers) == {"phone"}
        assert dialer.calls is not None and dialer.loops == []
        with pytest.raises(RuntimeError, match="has no outbox"):
            dialer.outbox  # noqa: B018
    async with Runtime(with_voice(tmp_path), parts=ERASER) as eraser:
        assert set(eraser.providers) == {"sandbox"} and eraser.voice_providers == {}
        with pytest.raises(RuntimeError, match="has no engine"):
            eraser.engine  # noqa: B018


async def test_erasing_needs_no_flows(tmp_path: Path) -> None:
    broken = tmp_path / "flows"
    broken.mkdir()
    (broken / "bad.yaml").write_text("flow: bad\nsteps: {}\n")
    config = settings(tmp_path, flows={"paths": [str(broken)]})
    with pytest.raises(FlowError):
        await Runtime(config, parts=SERVER).start()
    async with Runtime(config, parts=ERASER) as runtime:
        assert await runtime.store.ping()


async def test_what_needs_no_io_fails_before_anything_is_opened(tmp_path: Path) -> None:
    config = settings(tmp_path, lines=[{"number": LINE, "provider": "sandbox", "flow": "nope"}])
    runtime = Runtime(config)
    with pytest.raises(ConfigError, match=r"test.toml: line \+32460000101: flow 'nope' is not"):
        await runtime.start()
    bad_section = {"vonage": {"api_key": "k", "api_secret": "s", "signature_method": "sha3"}}
    with pytest.raises(ConfigError, match=r"\[providers.vonage\] signature_method"):
        await Runtime(settings(tmp_path, providers=bad_section)).start()
    assert not (tmp_path / "db").exists()  # the store was never opened


async def test_an_unsupported_store_url_names_the_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^test.toml: \[store\] url: redis:// is not supported"):
        settings(tmp_path, store={"url": "redis://localhost/0"})  # refused at load
    config = dataclasses.replace(settings(tmp_path), store=StoreSettings("redis://localhost/0"))
    with pytest.raises(ConfigError, match=r"^test.toml: \[store\] url: redis:// is not supported"):
        await Runtime(config).start()  # settings built by hand meet the same rule


async def test_a_failed_start_closes_what_had_started(tmp_path: Path) -> None:
    sim = EncoSimulator(client_id="ec", client_secret="es", dedicated_addresses=["8888"])
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    before = non_daemon_threads()
    try:
        url = str(server.make_url("")).rstrip("/")
        enco = {"client_id": "ec", "client_secret": "es", "token_url": f"{url}/token",
                "base_url": url, "address": "7777"}  # fmt: skip
        config = settings(
            tmp_path,
            lines=[{"number": "7777", "provider": "enco", "flow": "greet"}],
            providers={"enco": enco},
        )
        runtime = Runtime(config)
        with pytest.raises(ConfigError, match=r"\[providers.enco\] address: '7777' is not one"):
            await runtime.start()
    finally:
        await server.close()
    left = non_daemon_threads() - before
    for thread in left:  # a closed store's thread may still be on its way out: let it end
        thread.join(timeout=5)
    assert {t for t in left if t.is_alive()} == set()  # the store's worker thread is gone
    with pytest.raises(RuntimeError, match="has no store"):
        runtime.store  # noqa: B018
    await runtime.aclose()  # nothing left to close: a no-op
    store = SqliteStore(tmp_path / "db" / "convo.db")  # opened and closed cleanly before
    await store.open()
    assert await store.ping()
    await store.close()


async def test_a_runtime_starts_once(tmp_path: Path) -> None:
    async with Runtime(settings(tmp_path), parts=ERASER) as runtime:
        with pytest.raises(RuntimeError, match="already started"):
            await runtime.start()


async def test_polling_providers_get_a_poll_loop(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{closed_port()}"  # polls fail quietly; nothing leaves the box
    enco = {"client_id": "ec", "client_secret": "es", "shared": True, "base_url": down,
            "token_url": f"{down}/token"}  # fmt: skip
    config = settings(
        tmp_path,
        lines=[{"number": "8937", "provider": "enco", "flow": "greet"}],
        providers={"enco": enco},
    )
    runtime = Runtime(config, parts=SERVER)
    await runtime.start()
    try:
        assert isinstance(runtime.providers["enco"], EncoSms)
        names = [loop.name for loop in runtime.loops]
        # Enco can be asked about delivery (/deliveryinfos, /logs): it is reconciled too.
        names_expected = ["timers", "long texts", "backpressure", "reconcile", "poll enco"]
        assert names == [*names_expected, "prune seen"]
    finally:
        await runtime.aclose()


async def test_the_outbox_retries_as_outbox_settings_say(tmp_path: Path) -> None:
    outbox = {"max_age": "2h", "base_delay": 0.5, "max_delay": 30, "concurrency": 3}
    async with Runtime(settings(tmp_path, outbox=outbox), parts=SERVER) as runtime:
        policy = runtime.outbox.policy
        assert (policy.max_age, policy.base_delay, policy.max_delay) == (7200, 0.5, 30)
        assert runtime.outbox.concurrency == 3
