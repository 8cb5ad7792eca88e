"""Slow and idle clients on a real `serve()` over loopback sockets: connections that send
a request head or body a little at a time are closed after ``[server] keepalive_timeout``
or ``body_timeout``, quietly, while a normal request is still served at once; connections
beyond ``max_connections`` are closed as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from convo.web.server import serve
from tests.web.conftest import make_settings

SLOW = 300
TIMEOUT = 1.0  # the test's keepalive_timeout and body_timeout
PARTIAL_HEAD = b"POST /webhooks/sandbox/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **server: float) -> AsyncIterator[str]:
    """A real ``serve()`` on a free loopback port with these ``[server]`` settings."""
    settings = make_settings(tmp_path, server={"port": 0, **server})
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop, on_ready=ready.set_result))
    try:
        yield await asyncio.wait_for(ready, 30)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    limits = {"keepalive_timeout": TIMEOUT, "body_timeout": TIMEOUT, "max_connections": 1000}
    async with serving(tmp_path, **limits) as url:
        yield url


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_slow_heads_are_closed_and_a_normal_request_is_still_served(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slow = []
    for _ in range(SLOW):
        reader, writer = await connect(server)
        writer.write(PARTIAL_HEAD)  # and never the blank line that ends the head
        slow.append((reader, writer))
    await asyncio.gather(*(w.drain() for _, w in slow))
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=server, timeout=5) as client:
        answer = await client.get("/livez")
    assert answer.status_code == 200
    assert time.monotonic() - began < 1.0
    try:
        closed = await asyncio.gather(*(closed_by_server(r, TIMEOUT + 10) for r, _ in slow))
        assert all(closed)
    finally:
        for _, writer in slow:
            writer.close()
    noise = [r for r in caplog.records if r.name.startswith(("aiohttp", "convo.web"))]
    assert noise == []  # no line per slow client


async def test_a_body_that_does_not_arrive_in_time_closes_the_connection(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await connect(server)
    writer.write(PARTIAL_HEAD + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    try:
        assert await closed_by_server(reader, TIMEOUT + 10)
    finally:
        writer.close()
    noise = [r for r in caplog.records if r.name.startswith(("aiohttp", "convo.web"))]
    assert noise == []


async def test_connections_beyond_the_cap_are_closed_at_once(tmp_path: Path) -> None:
    # Timeouts far away, so no held connection can expire and free its place meanwhile
    # (under load, opening them all can take longer than a short keep-alive timeout).
    cap = 50
    async with serving(tmp_path, keepalive_timeout=60, max_connections=cap) as url:
        held = [await connect(url) for _ in range(cap)]
        try:
            for reader, _ in held[-3:]:  # the last ones in are served: not closed
                assert not await closed_by_server(reader, 0.2)
            reader, writer = await connect(url)  # one more than max_connections
            assert await closed_by_server(reader, 10)  # long before the keep-alive timeout
            writer.close()
        finally:
            for _, w in held:
                w.close()
