"""convo.media against real loopback servers: the allow-list, redirects, the size cap
enforced while the body streams, probing type and size, and the time bound."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from convo.exceptions import ConfigError
from convo.media import (
    Media,
    MediaError,
    MediaInspector,
    MediaPolicy,
    MediaRefused,
    MediaTooLarge,
    describe,
)
from convo.models import InboundMessage
from convo.providers._options import ProviderOptions
from convo.providers.telefonie_sms import TelefonieSms
from convo.providers.twilio_sms import TwilioSms

CHUNK = 64 * 1024
ENDLESS = 32 * 1024 * 1024  # what the streaming server would send if nobody stopped it


class MediaServer:
    """Serves /big (chunked, no Content-Length), /declared (Content-Length over any small
    cap), /drip (a byte at a time, forever), /nohead (HEAD refused, ranges honoured),
    /to/{target} (redirects to the URL in the query) and counts requests and bytes sent."""

    def __init__(self) -> None:
        self.requests = 0
        self.sent = 0
        self.finished = asyncio.Event()  # the /big handler stopped writing
        app = self.app = web.Application()
        app.router.add_get("/big", self._big, allow_head=False)
        app.router.add_get("/declared", self._declared)
        app.router.add_get("/drip", self._drip, allow_head=False)
        app.router.add_route("HEAD", "/nohead", self._refuse)
        app.router.add_get("/nohead", self._ranged, allow_head=False)
        app.router.add_get("/to", self._redirect)

    async def _big(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"x" * CHUNK
        try:
            while self.sent < ENDLESS:
                await response.write(block)
                self.sent += CHUNK
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up: what we wanted
        finally:
            self.finished.set()
        return response

    async def _declared(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(body=b"y" * 5000, content_type="image/gif")

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                await response.write(b"z")
                await asyncio.sleep(0.05)
        return response

    async def _refuse(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=405)

    async def _ranged(self, request: web.Request) -> web.Response:
        self.requests += 1
        assert request.headers.get("Range") == "bytes=0-0"
        return web.Response(
            status=206,
            body=b"\x89",
            headers={"Content-Type": "image/png; charset=binary", "Content-Range": "bytes 0-0/777"},
        )

    async def _redirect(self, request: web.Request) -> web.Response:
        self.requests += 1
        raise web.HTTPFound(request.query["url"])


@contextlib.asynccontextmanager
async def serving(server: MediaServer) -> AsyncIterator[str]:
    test_server = TestServer(server.app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


def host_of(url: str) -> str:
    return url.removeprefix("http://")


@pytest.fixture
async def media_server() -> AsyncIterator[tuple[MediaServer, str]]:
    server = MediaServer()
    async with serving(server) as url:
        yield server, url


def policy_for(url: str, **kw: Any) -> MediaPolicy:
    return MediaPolicy((host_of(url),), **kw)


# -- the allow-list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.telefonie.com/media/1", True),
        ("https://API.Telefonie.com/media/1", True),
        ("http://api.telefonie.com/media/1", True),  # the scheme's own port
        ("https://api.telefonie.com:8443/media/1", False),  # another port
        ("https://api.telefonie.com.evil.net/media/1", False),
        ("https://evil.net/api.telefonie.com/1", False),
        ("https://api.telefonie.com@evil.net/media/1", False),  # user info is not the host
        ("ftp://api.telefonie.com/media/1", False),
        ("file:///etc/passwd", False),
        ("https://media.example.com:8443/a.jpg", True),
        ("https://media.example.com/a.jpg", False),
        ("https://[::1/", False),
    ],
)
def test_the_allow_list_is_exact_about_hosts_and_ports(url: str, allowed: bool) -> None:
    policy = MediaPolicy(("api.telefonie.com", "media.example.com:8443"))
    assert policy.allows(url) is allowed


def test_policies_from_provider_config() -> None:
    def policy(**options: Any) -> MediaPolicy:
        opts = ProviderOptions("telefonie_sms", options, TelefonieSms.config_options)
        return MediaPolicy.from_options(opts, "https://api.telefonie.com/v1/sms")

    default = policy()
    assert default == MediaPolicy(("api.telefonie.com",), 5 * 1024 * 1024, 30.0)
    assert policy(media_hosts=["a.example", "b.example:81"], media_max_bytes=10).hosts == (
        "a.example",
        "b.example:81",
    )
    for bad, needle in [
        ({"media_hosts": "a.example"}, "media_hosts: expected a non-empty list"),
        ({"media_hosts": []}, "media_hosts: expected a non-empty list"),
        ({"media_hosts": ["https://a.example/x"]}, "media_hosts: expected a non-empty list"),
        ({"media_max_bytes": 0}, "media_max_bytes: must be at least 1"),
        ({"media_timeout": -1}, "media_timeout: must be greater than 0"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            policy(**bad)


async def test_adapters_carry_their_policy() -> None:
    async with httpx.AsyncClient() as client:
        telefonie = TelefonieSms.from_config(
            "telefonie_sms", {"api_key": "k", "allow_unsigned": True}, client
        )
        twilio = TwilioSms.from_config(
            "twilio",
            {
                "account_sid": "AC" + "1" * 32,
                "auth_token": "t",
                "media_max_bytes": 1024,
                "media_hosts": ["api.twilio.com", "media.twiliocdn.com"],
            },
            client,
        )
    assert telefonie.media_policy.hosts == ("api.telefonie.com",)
    assert twilio.media_policy.hosts == ("api.twilio.com", "media.twiliocdn.com")
    assert twilio.media_policy.max_bytes == 1024
    inspector = MediaInspector.for_providers([telefonie, twilio])
    assert set(inspector.policies) == {"telefonie_sms", "twilio"}


# -- fetching ------------------------------------------------------------------------------


async def test_over_the_cap_the_stream_is_cut_near_the_cap(
    media_server: tuple[MediaServer, str], tmp_path: Path
) -> None:
    server, url = media_server
    cap = 256 * 1024
    media = await describe(f"{url}/big", policy_for(url, max_bytes=cap))
    with pytest.raises(MediaTooLarge) as refused:
        await media.save(tmp_path / "big.jpg")
    # Read at most one chunk past the cap, and the server was cut off long before the end.
    assert cap < refused.value.read <= cap + CHUNK
    await asyncio.wait_for(server.finished.wait(), 30)
    assert server.sent < ENDLESS
    assert os.listdir(tmp_path) == []  # no partial file left


async def test_a_declared_length_over_the_cap_reads_nothing(
    media_server: tuple[MediaServer, str],
) -> None:
    _, url = media_server
    media = await describe(f"{url}/declared", policy_for(url, max_bytes=4999))
    assert (media.content_type, media.size, media.downloadable) == ("image/gif", 5000, True)
    with pytest.raises(MediaTooLarge) as refused:
        await media.read()
    assert refused.value.read == 0
    fits = await describe(f"{url}/declared", policy_for(url, max_bytes=5000))
    assert await fits.read() == b"y" * 5000


async def test_head_refused_uses_a_one_byte_range(media_server: tuple[MediaServer, str]) -> None:
    _, url = media_server
    media = await describe(f"{url}/nohead", policy_for(url))
    assert (media.content_type, media.size) == ("image/png", 777)
    assert media.is_a(["image/*"]) and not media.is_a(["image/jpeg", "video/*"])


async def test_a_dripping_host_is_cut_off_in_bounded_time(
    media_server: tuple[MediaServer, str],
) -> None:
    _, url = media_server
    media = Media(f"{url}/drip", downloadable=True, policy=policy_for(url, timeout=0.5))
    with pytest.raises(MediaError, match=r"not fetched within 0\.5s"):
        await asyncio.wait_for(media.read(), 60)  # the outer bound only guards the test


async def test_redirects_are_checked_before_they_are_followed(
    media_server: tuple[MediaServer, str],
) -> None:
    server, url = media_server
    elsewhere = MediaServer()
    async with serving(elsewhere) as other:
        # Within the list: followed.
        inside = await describe(f"{url}/to?url={url}/declared", policy_for(url))
        assert (inside.content_type, inside.downloadable) == ("image/gif", True)
        assert await inside.read() == b"y" * 5000
        # Off the list: refused before any request to it.
        off = await describe(f"{url}/to?url={other}/declared", policy_for(url))
        assert not off.downloadable and off.content_type is None
        sneaky = Media(f"{url}/to?url={other}/declared", downloadable=True, policy=policy_for(url))
        with pytest.raises(MediaRefused):
            await sneaky.read()
        assert elsewhere.requests == 0
        assert server.requests >= 4


async def test_media_off_the_list_or_without_policy_is_never_fetched() -> None:
    elsewhere = MediaServer()
    async with serving(elsewhere) as other:
        message = InboundMessage(
            "+3225550120", "+32470123456", "", provider="nobody", media_urls=(f"{other}/declared",)
        )
        [media] = await MediaInspector({})(message)
        assert not media.downloadable
        with pytest.raises(MediaRefused):
            await media.read()
        inspector = MediaInspector({"nobody": MediaPolicy(("api.telefonie.com",))})
        [media] = await inspector(message)
        assert not media.downloadable
        assert elsewhere.requests == 0


async def test_a_slow_file_holds_the_save_not_the_event_loop(
    media_server: tuple[MediaServer, str], tmp_path: Path
) -> None:
    _, url = media_server
    media = await describe(f"{url}/declared", policy_for(url))
    target = tmp_path / "photo.gif"
    slow = tmp_path / "photo.gif.part"  # where save writes first: a pipe, read late
    os.mkfifo(slow)
    received: list[bytes] = []

    def late_reader() -> None:
        time.sleep(0.5)  # until then, opening the pipe to write waits
        with slow.open("rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=late_reader)
    reader.start()
    try:
        loop = asyncio.get_running_loop()
        saving = asyncio.create_task(media.save(target))
        before = loop.time()
        await asyncio.sleep(0.05)
        # Before: the file was opened on the event loop, which stood still until the reader.
        assert loop.time() - before < 0.4
        assert await asyncio.wait_for(saving, 30) == 5000
    finally:
        reader.join(10)
    assert received == [b"y" * 5000]
