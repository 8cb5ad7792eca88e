"""Fixtures for the web tests: settings over a real SQLite file and the greet flow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

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
