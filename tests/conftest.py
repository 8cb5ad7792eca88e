"""Shared fixtures: stores under test (memory, a real SQLite file, a real PostgreSQL schema),
and :func:`until`, the one way tests wait for something to happen.

PostgreSQL is the server at ``CONVO_TEST_POSTGRES_URL`` (default
:data:`DEFAULT_POSTGRES_URL`); each test gets a schema of its own, dropped after it. A
server that does not answer fails those tests with a message saying how to start one:
they never skip, so a run without PostgreSQL cannot pass for a run with it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from convo.store.base import Store
from convo.store.memory import MemoryStore
from convo.store.sqlite import SqliteStore

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["memory", "sqlite", "sqlite-on-loop", "postgres"]


async def until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Wait until ``condition()`` is true, asking every 5 ms; fail after ``timeout``
    seconds (long enough for a slow machine: it only delays a failure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition never became true in {timeout}s"
        await asyncio.sleep(0.005)


def admin_postgres_url() -> str:
    """The test server's URL (``CONVO_TEST_POSTGRES_URL``, else the default)."""
    return os.environ.get("CONVO_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (a server setting in the URL's options)."""
    parts = urllib.parse.urlsplit(url)
    query = [*urllib.parse.parse_qsl(parts.query), ("search_path", schema)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A PostgreSQL URL whose connections land in a fresh, empty schema of their own."""
    async with postgres_schema() as url:
        yield url


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema on the test server, dropped on exit: the URL that lands in it."""
    import asyncpg

    admin = admin_postgres_url()
    try:
        connection = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at CONVO_TEST_POSTGRES_URL={admin!r} ({exc}); "
            "start it (.ci/run does: service postgresql start) or point the variable at one",
            pytrace=False,
        )
    schema = f"convo_test_{secrets.token_hex(6)}"
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(admin, schema)
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


@asynccontextmanager
async def open_backend(name: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A new, opened store of backend ``name`` (PostgreSQL in a schema of its own), closed
    (and its schema dropped) on exit."""
    async with AsyncExitStack() as stack:
        store: Store
        if name == "memory":
            store = MemoryStore()
        elif name == "sqlite":
            store = SqliteStore(tmp_path / "c.db")
        elif name == "sqlite-on-loop":  # every batch of brief jobs on the event loop
            store = SqliteStore(tmp_path / "c.db", brief_batch=1)
        else:
            from convo.store.postgres import PostgresStore

            store = PostgresStore(await stack.enter_async_context(postgres_schema()))
        await store.open()
        stack.push_async_callback(store.close)
        yield store


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each test using it runs once per store backend."""
    async with open_backend(request.param, tmp_path) as store:
        yield store
