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
