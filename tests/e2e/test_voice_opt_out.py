"""A caller who says STOP on a call is opted out of the line's texts too.

Real parts end to end: convo's server (``create_app`` on a SQLite file, signed webhooks) and
the Telefoon Voice simulator over loopback. The line carries texts through the sandbox and
calls through Telefoon; the call's STOP goes through ``/voice/answer`` and ``/voice/input``
and the turn pipeline, and an outbound SMS start on the same line then sends nothing.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.config import load_settings
from convo.models import ConversationKey, ConversationStatus, Direction
from convo.runtime import TurnEngine
from convo.simulators.telefoon_voice import TelefoonVoiceSimulator
from convo.store.base import MessageQuery, Store
from convo.web.app import create_app
from convo.web.state import RUNTIME

DATA = Path(__file__).parent / "data"
KEY, SECRET = "sim-key", "sim-secret"
LINE = "+3225550121"
CALLER, OTHER = "+32470123451", "+32470123452"

CONFIG = """
[server]
public_url = "{public_url}"
api_token = "admin-token"
shutdown_timeout = 5

[store]
url = "sqlite:///{db}"

[flows]
paths = ["{data}/voice_opt_out.yaml"]

[[lines]]
number = "{line}"
provider = "sandbox"
voice_provider = "telefoon_voice"
flow = "voice_opt_out"
channels = ["sms", "voice"]

[providers.telefoon_voice]
api_key = "{key}"
webhook_secret = "{secret}"
base_url = "{sim_url}"
"""


@dataclass
class World:
    sim: TelefoonVoiceSimulator
    store: Store
    engine: TurnEngine


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    sim = TelefoonVoiceSimulator(api_key=KEY, webhook_secret=SECRET)
    sim_server = TestServer(sim.app, host="127.0.0.1")
    await sim_server.start_server()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = tmp_path / "convo.toml"
    config.write_text(
        CONFIG.format(
            public_url=url,
            db=tmp_path / "convo.db",
            data=DATA,
            line=LINE,
            key=KEY,
            secret=SECRET,
            sim_url=str(sim_server.make_url("")).rstrip("/"),
        )
    )
    app = create_app(load_settings(config, env={}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    sim.webhook_base = url
    try:
        yield World(sim, app[RUNTIME].store, app[RUNTIME].engine)
    finally:
        await runner.cleanup()
        await sim_server.close()


async def texts_to(store: Store, number: str) -> list[str]:
    page, _ = await store.list_messages(MessageQuery(direction=Direction.OUTBOUND, number=number))
    return [record.text for record in page if record.channel == "sms"]  # not the call's log


async def test_a_caller_who_says_stop_gets_no_texts_afterwards(world: World) -> None:
    transcript = await world.sim.place_call(CALLER, LINE, ["say:stop"])
    assert transcript.error == "" and transcript.hangup
    said = [text for text, _ in transcript.says]
    assert said[-1] == "You will get no more messages from us."
    call = await world.store.get_session(ConversationKey(LINE, "voice", CALLER))
    assert call is not None and call.status is ConversationStatus.ENDED

    assert await world.store.is_suppressed(LINE, CALLER)
    sms = ConversationKey(LINE, "sms", CALLER)
    assert await world.engine.start(sms, "voice_opt_out") == []
    assert await texts_to(world.store, CALLER) == []
    assert await world.store.get_session(sms) is None


async def test_a_caller_who_answers_still_gets_texts(world: World) -> None:
    """The same path without STOP: the start does send, so the test above is not vacuous."""
    transcript = await world.sim.place_call(OTHER, LINE, ["say:yes"])
    assert transcript.error == "" and [text for text, _ in transcript.says][-1] == "Thanks."
    assert not await world.store.is_suppressed(LINE, OTHER)
    replies = await world.engine.start(ConversationKey(LINE, "sms", OTHER), "voice_opt_out")
    assert [m.text for m in replies] == ["Reply YES to hear our news, or STOP."]
    assert await texts_to(world.store, OTHER) == ["Reply YES to hear our news, or STOP."]
