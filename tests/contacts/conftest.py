"""Fixtures for the contacts tests: a server over a sandbox line, on SQLite or memory."""

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
LINE = "+32460000101"  # greet: a stranger's text starts it
VISIT_LINE = "+32460000102"  # visit: templates use contact.name and contact.fields
AN = "+32470000001"
BO = "+32470000002"
TOKEN = "admin-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[Any, Any]


def make_settings(tmp_path: Path, store: str = "sqlite", **tables: Any) -> Settings:
    url = f"sqlite:///{tmp_path / 'convo.db'}" if store == "sqlite" else "memory://"
    doc: dict[str, Any] = {
        "server": {"api_token": TOKEN},
        "store": {"url": url},
        "flows": {"paths": [str(DATA)]},
        "lines": [
            {"number": LINE, "provider": "sandbox", "flow": "greet"},
            {"number": VISIT_LINE, "provider": "sandbox", "flow": "visit"},
        ],
        "outbox": {"sweep_interval": 0.2, "base_delay": 0.01, "max_delay": 0.05},
    }
    doc.update(tables)
    return parse_settings(doc, source="test.toml", env={})


@pytest.fixture(params=["sqlite", "memory"])
async def client(
    request: pytest.FixtureRequest, aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> Client:
    settings = make_settings(tmp_path, request.param)
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]
