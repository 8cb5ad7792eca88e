"""convo.providers.http.call: how HTTP failures reach the outbox, against real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.providers.http import call, provider_client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once the socket closes


async def test_refused_connection_is_unreachable_not_a_timeout() -> None:
    url = f"http://127.0.0.1:{closed_port()}/sms/json"
    async with provider_client() as client:
        with pytest.raises(ProviderUnavailable) as caught:
            await call(client, "POST", url, provider="vonage", data={"a": "b"})
    assert caught.value.retryable
    assert str(caught.value).startswith(f"vonage: cannot reach {url}: ")
    assert "timed out" not in str(caught.value)


async def test_status_codes_map_onto_the_error_tree(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.Response(status=status, text="nope", headers={"Retry-After": "7"})

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/status/{status}", answer)
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    base = str(server.make_url(""))
    async with provider_client() as client:
        with pytest.raises(RateLimited) as limited:
            await call(client, "GET", f"{base}/status/429", provider="p")
        assert limited.value.retry_after == 7.0
        with pytest.raises(ProviderUnavailable) as unavailable:
            await call(client, "GET", f"{base}/status/503", provider="p")
        assert unavailable.value.code == "503"
        with pytest.raises(ProviderRejected) as rejected:
            await call(client, "GET", f"{base}/status/403", provider="p")
        assert not rejected.value.retryable

    async with provider_client(httpx.Timeout(0.2)) as client:
        with pytest.raises(ProviderUnavailable, match="timed out calling"):
            await call(client, "GET", f"{base}/slow", provider="p")
