"""Fixtures for the web tests: settings over a real SQLite file and the greet flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from convo.bot import Bot
from convo.config import Settings, parse_settings
from convo.web.app import create_app

DATA = Path(__file__).parent / "data"
LINE = "+32460000101"
ALICE = "+32470000001"
BOB = "+32470000002"
TOKEN = "admin-token-123"

ClientMaker = Callable[..., Any]


def make_settings(tmp_path: Path, **tables: Any) -> Settings:
    """Settings for a test server: greet flow on one sandbox line, SQLite in tmp_path."""
    doc: dict[str, Any] = {
        "server": {"api_token": TOKEN, "shutdown_timeout": 5},
        "store": {"url": f"sqlite:///{tmp_path / 'convo.db'}"},
        "flows": {"paths": [str(DATA)]},
        "lines": [{"number": LINE, "provider": "sandbox", "flow": "greet"}],
        "webhooks": {"rejected_dir": str(tmp_path / "rejected")},
        "outbox": {"sweep_interval": 0.2, "base_delay": 0.01, "max_delay": 0.05},
    }
    for table, values in tables.items():
        if isinstance(values, dict) and isinstance(doc.get(table), dict):
            doc[table] = {**doc[table], **values}
        else:
            doc[table] = values
    return parse_settings(doc, source="test.toml", env={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[Application], Any], settings: Settings
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]


@dataclass
class WaitingFlow:
    """A one-step flow (``slow``, on LINE) whose turn waits in a hook until ``gate`` is set:
    ``started`` is set when a turn reaches the hook. Give ``bot`` to ``create_app`` and
    ``tables`` to :func:`make_settings`."""

    bot: Bot
    tables: dict[str, Any]
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)


def waiting_flow(tmp_path: Path) -> WaitingFlow:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "slow.yaml").write_text(
        "flow: slow\nlanguages: [en]\nstart: hello\nsteps:\n"
        "  hello:\n    say: {en: 'Done waiting.'}\n    do: [slow.wait]\n    end: true\n"
    )
    tables = {
        "flows": {"paths": [str(flows)]},
        "lines": [{"number": LINE, "provider": "sandbox", "flow": "slow"}],
    }
    waiting = WaitingFlow(Bot("slow"), tables)

    @waiting.bot.action("slow.wait")
    async def wait(conv: Any) -> None:
        waiting.started.set()
        await waiting.gate.wait()

    return waiting
