"""Shared fixtures: stores under test (memory and a real SQLite file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convo.store.base import Store
from convo.store.memory import MemoryStore
from convo.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each test using it runs once per built-in store."""
    store: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "c.db")
    await store.open()
    yield store
    await store.close()
