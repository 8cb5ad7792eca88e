"""Wrong admin tokens are throttled per client address, over HTTP: the console's sign-in
and the admin API's bearer token share one budget (five, then 429 with Retry-After, the
right token refused too), given back with time."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from convo.web.app import create_app
from convo.web.throttle import FREE_TRIES, REFILL, TOKEN_THROTTLE

from ..conftest import TOKEN, make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def sign_in(client: TestClient[Any, Any], token: str) -> Any:
    form = await client.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await form.text())
    assert csrf is not None
    return await client.post(
        "/console/signin", data={"csrf": csrf[1], "token": token}, allow_redirects=False
    )


async def api(client: TestClient[Any, Any], token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return await client.get("/api/messages", headers=headers)


async def test_wrong_tokens_are_throttled_then_forgiven(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path))
    clock = app[TOKEN_THROTTLE].clock = Clock()
    client: TestClient[Any, Any] = await aiohttp_client(app)

    for n in range(FREE_TRIES):  # console and API draw on one budget
        answer = await (sign_in(client, "guess") if n % 2 else api(client, "guess"))
        assert answer.status == 401
    refused = await sign_in(client, TOKEN)  # even the right one: it is not compared
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(int(REFILL))
    assert "Too many wrong tokens" in await refused.text()
    refused = await api(client, TOKEN)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) == int(REFILL)
    assert (await api(client, None)).status == 401  # no token given: nothing to throttle

    clock.now += REFILL / 2
    assert int((await api(client, "guess")).headers["Retry-After"]) == int(REFILL / 2)
    clock.now += REFILL / 2  # one try is back
    assert (await api(client, "guess")).status == 401
    assert (await api(client, TOKEN)).status == 429  # and spent on that guess
    clock.now += REFILL
    assert (await api(client, TOKEN)).status == 200
    for _ in range(FREE_TRIES + 1):  # right tokens take nothing
        assert (await api(client, TOKEN)).status == 200
    assert (await sign_in(client, TOKEN)).status == 303


async def api_from(client: TestClient[Any, Any], token: str, forwarded: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded}
    return await client.get("/api/messages", headers=headers)


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    # The test client connects from 127.0.0.1: here, the proxy in front of convo.
    app = create_app(make_settings(tmp_path, server={"trusted_proxies": ["127.0.0.0/8"]}))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    guesser, other = "203.0.113.7", "198.51.100.9"
    for _ in range(FREE_TRIES):
        assert (await api_from(client, "guess", guesser)).status == 401
    assert (await api_from(client, TOKEN, guesser)).status == 429
    # Before: every client shared the proxy's address, and the guesser locked them out.
    assert (await api_from(client, TOKEN, other)).status == 200
    # What the guesser writes into the header itself comes before what the proxy appends:
    # the entry the proxy vouches for (its right end) is still the guesser.
    assert (await api_from(client, TOKEN, f"{other}, {guesser}")).status == 429


async def test_a_peer_that_is_not_a_trusted_proxy_cannot_pick_its_address(
    aiohttp_client: Callable[[Application], Any], tmp_path: Path
) -> None:
    app = create_app(make_settings(tmp_path, server={"trusted_proxies": ["10.0.0.0/8"]}))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    for n in range(FREE_TRIES):  # a new made-up address each time: all counted as the peer's
        assert (await api_from(client, "guess", f"192.0.2.{n}")).status == 401
    assert (await api_from(client, TOKEN, "192.0.2.200")).status == 429
