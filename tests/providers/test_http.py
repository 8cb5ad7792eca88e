"""convo.providers.http.call: how HTTP failures reach the outbox, against real sockets."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ProviderRejected, ProviderUnavailable, RateLimited
from convo.providers.http import ProviderAnswer, ProviderClient, call, provider_client


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


async def test_retry_after_is_read_as_seconds_or_an_http_date_capped_or_ignored(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    async def answer(request: web.Request) -> web.Response:
        headers = {"Retry-After": request.query["after"]} if "after" in request.query else {}
        return web.Response(status=int(request.match_info["status"]), headers=headers)

    app = web.Application()
    app.router.add_get("/status/{status}", answer)
    server = await aiohttp_server(app)
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    an_hour_ago = email.utils.formatdate(time.time() - 3600, usegmt=True)
    cases: list[tuple[str | None, Callable[[float | None], bool]]] = [
        ("7", lambda s: s == 7.0),
        (" 12 ", lambda s: s == 12.0),
        ("3600", lambda s: s == 300.0),  # capped
        (in_a_minute, lambda s: s is not None and 50 <= s <= 60),
        (an_hour_ago, lambda s: s == 0.0),  # a date already past: at once
        ("Wed, 21 Oct 2999 07:28:00 GMT", lambda s: s == 300.0),  # capped
        ("soon", lambda s: s is None),
        ("-5", lambda s: s is None),
        ("inf", lambda s: s is None),
        ("nan", lambda s: s is None),
        ("1e3", lambda s: s is None),
        ("", lambda s: s is None),
        (None, lambda s: s is None),
    ]
    async with provider_client() as client:
        for status, error in ((429, RateLimited), (503, ProviderUnavailable)):
            for after, expected in cases:
                query = "" if after is None else f"?{urllib.parse.urlencode({'after': after})}"
                url = str(server.make_url(f"/status/{status}")) + query
                with pytest.raises(error) as caught:
                    await call(client, "GET", url, provider="p")
                seconds = caught.value.retry_after  # type: ignore[attr-defined]
                assert expected(seconds), (status, after, seconds)


async def test_answers_are_read_whole_decompressed_and_decoded_in_their_charset(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    async def gzipped(_request: web.Request) -> web.Response:
        body = gzip.compress('{"messages": [{"status": "0", "to": "été"}]}'.encode())
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    async def latin(_request: web.Request) -> web.Response:
        headers = {"Content-Type": 'text/plain; charset="latin-1"', "X-Seen": "yes"}
        return web.Response(body="déjà".encode("latin-1"), headers=headers, reason="")

    async def unknown_charset(_request: web.Request) -> web.Response:
        return web.Response(
            body="ok ✓".encode(), headers={"Content-Type": "text/plain; charset=nope"}
        )

    app = web.Application()
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/latin", latin)
    app.router.add_get("/unknown", unknown_charset)
    server = await aiohttp_server(app)
    base = str(server.make_url(""))
    async with provider_client() as client:
        answer = await call(client, "GET", f"{base}/gzipped", provider="p")
        assert answer.json() == {"messages": [{"status": "0", "to": "été"}]}
        assert answer.is_success and answer.reason_phrase == "OK"
        answer = await call(client, "GET", f"{base}/latin", provider="p")
        assert answer.text == "déjà" and answer.headers["x-seen"] == "yes"
        with pytest.raises(ValueError):
            answer.json()
        answer = await call(client, "GET", f"{base}/unknown", provider="p")
        assert answer.text == "ok ✓"


async def test_an_answer_through_httpx_reads_as_one_from_the_direct_path() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "application/json; charset=utf-8", "Retry-After": "3"}
        return httpx.Response(200, content=b'{"id": "x1"}', headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        answer = await call(client, "POST", "https://api.example.com/m", provider="p")
    assert answer.json() == {"id": "x1"} and answer.headers["retry-after"] == "3"
    assert answer.status_code == 200 and answer.text == '{"id": "x1"}'


@pytest.mark.parametrize(
    "content",
    [
        '{"messages": [{"status": "0", "to": "été"}]}'.encode(),
        b'["a", 1]',
        b"{",  # not JSON: ValueError either way
        b"{\x00",
        '{"a": "é"}'.encode("utf-16-le"),  # "{" then a zero byte: not UTF-8 to json
        '{"a": "é"}'.encode("utf-16"),  # with a byte order mark
        '{"a": "é"}'.encode("utf-8-sig"),
        b'{"lone": "\xed\xa0\x80"}',  # a surrogate in UTF-8: json.loads lets it through
        b' {"a": 1}',
    ],
)
def test_a_json_answer_reads_as_json_loads_reads_its_bytes(content: bytes) -> None:
    answer = ProviderAnswer(200, "OK", {}, content)
    try:
        expected = json.loads(content)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            answer.json()
    else:
        assert answer.json() == expected


def test_requests_take_the_direct_path_only_with_string_fields() -> None:
    client = provider_client()
    assert isinstance(client, ProviderClient)
    assert client.takes_directly({"data": {"to": "1", "text": "hi"}, "headers": None})
    assert client.takes_directly({"json": {"n": 1}, "params": {"a": "b"}})
    assert not client.takes_directly({"data": {"to": "1", "n": 1}})
    assert not client.takes_directly({"data": [("a", "b")]})
    assert not client.takes_directly({"auth": ("u", "p")})
